"""``python -m cinerec.cli``: the same entry point as the ``cinerec`` script."""

from cinerec.cli.app import main

main()
