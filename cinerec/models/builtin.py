"""Imports the built-in models so that they register themselves."""

from cinerec.models import ease, itemknn, popularity

__all__ = ["ease", "itemknn", "popularity"]
