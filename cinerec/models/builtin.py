"""Imports the built-in models so that they register themselves."""
