"""Built-in collectors plugins."""
