"""Imports the built-in models so that they register themselves."""

from cinerec.models import als, content, ease, itemknn, neumf, popularity, sasrec

__all__ = ["als", "content", "ease", "itemknn", "neumf", "popularity", "sasrec"]
