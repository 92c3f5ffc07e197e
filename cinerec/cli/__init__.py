"""The ``cinerec`` command line: the top of the stack, over serving, training and data.

:mod:`cinerec.cli.app` holds the offline commands (data, train, recommend, similar,
evaluate, demo) and mounts :mod:`cinerec.cli.service`'s (serve, batch-score, events,
registry, stream); :mod:`cinerec.cli.common` holds what both share.
"""

from cinerec.cli.app import app, main

__all__ = ["app", "main"]
