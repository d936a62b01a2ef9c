"""Built-in search plugins."""
