"""Built-in agents plugins."""
