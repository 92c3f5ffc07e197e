"""cinerec: a hybrid recommender for a movie & TV-series web application."""

__version__ = "0.1.0"
