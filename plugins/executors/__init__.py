"""Built-in executors plugins."""
