"""Built-in importers plugins."""
