"""What people and programs reach over HTTP: the JSON API, the citizen's tracker and the board,
the staff inbox, health. Views parse, call the runtime or a query, and render; no state
changes happen here."""
