"""The service's own error kinds, each answered with its HTTP status by the app.

Raised by the request paths (:mod:`cinerec.serving.answers`, :mod:`~cinerec.serving.feedback`,
:mod:`~cinerec.serving.lookups`, :mod:`~cinerec.serving.admin`) and mapped in
:data:`cinerec.serving.app.STATUS`; kept apart so none of those modules imports another
for an exception class.
"""

from __future__ import annotations

from cinerec.errors import CinerecError


class NotFoundError(CinerecError):
    """A user or item the service does not know (HTTP 404)."""


class UnavailableError(CinerecError):
    """A dependency the request cannot do without is down (HTTP 503)."""
