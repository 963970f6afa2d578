"""Date formats of the citizen pages per language (settings.FORMAT_MODULE_PATH); everything
else (numbers, first day of the week, ...) comes from Django's own locale formats."""
