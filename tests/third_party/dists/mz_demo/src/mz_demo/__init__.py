"""Example third-party modelyzer plugins, one module per plugin kind (see docs/plugins.md)."""
