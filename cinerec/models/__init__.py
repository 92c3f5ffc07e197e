"""Recommendation models; each follows the small protocol in :mod:`cinerec.models.base`."""

from cinerec.models.base import Model, get_model_class, load_model, model_names, register

__all__ = ["Model", "get_model_class", "load_model", "model_names", "register"]
