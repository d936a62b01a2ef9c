"""Helpers run or imported by the tests (stand-in servers, wrappers)."""
