"""The ``eo-edge`` command line (typer): parse, validate the command line, call a use case in
:mod:`eo_edge.app` (or a library step), print the result.

One module per command group: :mod:`.data`, :mod:`.train`, :mod:`.evaluate` (eval, calibrate,
predict), :mod:`.deploy` (export, compile, check), :mod:`.bench` (bench, report, faults), :mod:`.scene`, :mod:`.models`;
:mod:`.root` holds the typer app, the consoles and :func:`main` (errors as one line);
:mod:`.options` the options several commands share.
"""

# importing a group registers its commands, in this order in `eo-edge --help`
from . import data, train  # noqa: F401  isort: skip
from . import evaluate, deploy, bench, scene, models  # noqa: F401  isort: skip
from .root import app, main

__all__ = ["app", "main"]
