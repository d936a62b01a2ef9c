"""Built-in loadgen plugins."""
