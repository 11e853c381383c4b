"""The eo-edge home (cache) folder: prepared datasets, runs, calibration caches.

Resolution order: explicit ``--home`` option, then ``$EO_EDGE_HOME``, then
``~/.cache/eo-edge``.
"""

from __future__ import annotations

import os
from pathlib import Path


def home_dir(override: str | os.PathLike | None = None) -> Path:
    """Return the eo-edge home folder (created if missing).

    Args:
        override: a path given by ``--home``; wins over ``$EO_EDGE_HOME``.

    Returns:
        The absolute :class:`~pathlib.Path` of the home folder.
    """
    if override:
        p = Path(override)
    elif os.environ.get("EO_EDGE_HOME"):
        p = Path(os.environ["EO_EDGE_HOME"])
    else:
        p = Path.home() / ".cache" / "eo-edge"
    p = p.expanduser().resolve()
    p.mkdir(parents=True, exist_ok=True)
    return p
