"""``python -m eo_edge.cli``: the ``eo-edge`` console script."""

from . import main

main()
