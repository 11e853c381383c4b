"""Where the shipped assets are: ``models/``, ``calibration/`` and ``samples/``.

Looked up in this order, first hit wins:

1. ``$EO_EDGE_ASSETS`` (a folder holding ``models/``, ``calibration/``, ``samples/``);
2. the source checkout the package runs from (``pip install -e .``, or ``python -m eo_edge``
   in a clone): the folder above ``eo_edge/``;
3. ``<sys.prefix>/share/eo-edge`` where a regular ``pip install .`` puts them (pyproject's
   ``data-files``).

Every module that needs a shipped file asks here; nothing else walks up from ``__file__``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import EOEdgeError

ASSETS_ENV = "EO_EDGE_ASSETS"
#: Asset folders, relative to the assets root.
MODELS = "models"
CALIBRATION = "calibration"
TEST_SUBSET = "samples/eurosat-test-1000"


def candidate_roots() -> list[Path]:
    """Folders searched for shipped assets, in order (see the module docstring)."""
    roots = [Path(os.environ[ASSETS_ENV])] if os.environ.get(ASSETS_ENV) else []
    roots.append(Path(__file__).resolve().parents[1])
    roots.append(Path(sys.prefix) / "share" / "eo-edge")
    return roots


def asset_path(rel: str) -> Path:
    """The first existing ``<root>/<rel>`` among :func:`candidate_roots`, else the path under
    the first root (which does not exist; :func:`require_asset` turns that into an error)."""
    roots = candidate_roots()
    for r in roots:
        if (r / rel).exists():
            return r / rel
    return roots[0] / rel


def require_asset(rel: str, what: str) -> Path:
    """Like :func:`asset_path`, but raises when the asset is nowhere.

    Raises:
        EOEdgeError: one line naming the folders searched and ``$EO_EDGE_ASSETS``.
    """
    p = asset_path(rel)
    if not p.exists():
        raise EOEdgeError(f"{what} not found ({rel} under {', '.join(str(r) for r in candidate_roots())}); "
                          f"set {ASSETS_ENV} to a folder that holds it, e.g. a clone of eo-edge")
    return p


MODELS_DIR = asset_path(MODELS)
CALIBRATION_DIR = asset_path(CALIBRATION)
TEST_SUBSET_DIR = asset_path(TEST_SUBSET)


def default_inputs() -> list[Path]:
    """The built-in default: every eo-edge ONNX shipped in ``models/`` (students and the
    MobileViTV2 baseline, in FP32, FP16 and INT8; located by :mod:`eo_edge.assets`).

    Raises:
        EOEdgeError: the shipped models are not found.
    """
    return sorted(require_asset(MODELS, "shipped models/").glob("*.onnx"))
