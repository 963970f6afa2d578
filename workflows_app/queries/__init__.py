"""Reads: what is published and registered (catalog, cached), how instances stand (progress),
the staff's work lists (worklists), and the board's aggregates (stats). No writes to
instances or runs happen here."""
