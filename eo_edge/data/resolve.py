"""The one data resolver: which images a command reads.

``--data`` may be a prepared cache folder, or a source (EuroSAT.zip or a folder of class
sub-folders) that is prepared into the home folder once; without ``--data`` the default
cache ``HOME/datasets/eurosat`` is used. Commands that only *measure* (bench, export's parity
check) fall back to the shipped 1,000-image test subset when nothing is prepared, and say so.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import EOEdgeError
from .prepare import EUROSAT_CLASSES, PreparedData, load_prepared, prepare
from .split import split_indices


def _log_stderr(msg: str) -> None:
    print(msg, flush=True)


def resolve_data(data: Path | None, home: Path | None, progress: bool = True,
                 log: Callable[[str], None] = _log_stderr) -> PreparedData:
    """Load the dataset a command was given.

    Args:
        data: ``--data``: a prepared cache folder (has ``manifest.json``), or a source that is
            prepared into ``HOME/datasets/`` first (EuroSAT.zip -> ``eurosat``, any other
            source -> ``<stem>-<hash of its path>``); None: the default cache.
        home: ``--home`` (see :func:`eo_edge.home.home_dir`).

    Returns:
        every image of the dataset (apply a split with :func:`eo_edge.data.split.split_indices`).

    Raises:
        EOEdgeError: no dataset given and none prepared, ``data`` missing, or preparing it failed.
    """
    from ..home import home_dir

    h = home_dir(home)
    if data is None:
        default = h / "datasets" / "eurosat"
        if (default / "manifest.json").is_file():
            return load_prepared(default)
        raise EOEdgeError("no dataset: pass --data EuroSAT.zip (or a prepared folder), "
                          "or run `eo-edge data prepare --source EuroSAT.zip` once")
    if not data.exists():
        raise EOEdgeError(f"data not found: {data}")
    if data.is_dir() and (data / "manifest.json").is_file():
        return load_prepared(data)
    key = hashlib.sha1(str(data.resolve()).encode()).hexdigest()[:10]
    keyed = h / "datasets" / f"{data.stem}-{key}"
    # EuroSAT.zip goes to the default name unless that holds another source's cache; then to one keyed by path
    cache = h / "datasets" / "eurosat" if data.name == "EuroSAT.zip" else keyed
    def same_source(c: Path) -> bool:
        return json.loads((c / "manifest.json").read_text()).get("source") == str(data.resolve())

    if (cache / "manifest.json").is_file():
        if same_source(cache):
            return load_prepared(cache)
        cache = keyed
        if (cache / "manifest.json").is_file() and same_source(cache):
            return load_prepared(cache)
    log(f"preparing {data} -> {cache}")
    m = prepare(data, cache, progress=progress)
    report_issues(m, log)
    return load_prepared(cache)


def report_issues(manifest: dict, log: Callable[[str], None], most: int = 5) -> None:
    """Log what a prepare skipped, refused or converted (shown whether ``data prepare`` ran it or
    ``--data`` prepared implicitly): up to ``most`` lines of each kind, then a count."""
    for key, label in (("warnings", "warning"), ("skipped", "skipped")):
        items = manifest.get(key) or []
        for item in items[:most]:
            log(f"[yellow]{label}:[/] {item}")
        if len(items) > most:
            log(f"[yellow]{label}:[/] ... and {len(items) - most} more (manifest.json lists all)")
    if manifest.get("converted"):
        log(f"converted {len(manifest['converted'])} images to 64x64 RGB (e.g. {manifest['converted'][0]})")


def shipped_test_subset(limit: int | None = None) -> PreparedData:
    """The shipped ``samples/eurosat-test-1000`` (100 test-split images per class), decoded.

    Raises:
        EOEdgeError: the shipped assets are not found (see :mod:`eo_edge.assets`).
    """
    from ..assets import TEST_SUBSET, require_asset
    from .subsets import load_flat_images

    imgs, names, _, _ = load_flat_images(require_asset(TEST_SUBSET, "shipped test subset"), limit)
    cls = list(EUROSAT_CLASSES)
    labels = np.array([cls.index(n.split("_")[0]) for n in names], dtype=np.int64)
    return PreparedData(imgs, labels, [f"{n.split('_')[0]}/{n}" for n in names], cls)


def measurement_data(data: Path | None, home: Path | None, progress: bool = True, n: int | None = None,
              log: Callable[[str], None] = _log_stderr) -> tuple[PreparedData, dict]:
    """Test images for measuring: the prepared test split (``--data`` or the default cache),
    else - only when ``--data`` was not given - the shipped test subset.

    Args:
        n: at most this many images (a seeded random choice of the test split, or the first
            ``n`` of the subset); None or <= 0: all.

    Returns:
        ``(data, {"kind": "test split" | "shipped test subset", "n_images", "source"})``.

    Raises:
        EOEdgeError: ``data`` was given but cannot be loaded.
    """
    n = None if n is None or n <= 0 else n
    try:
        ds = resolve_data(data, home, progress, log)
    except EOEdgeError:
        if data is not None:
            raise
        sub = shipped_test_subset(n)
        return sub, {"kind": "shipped test subset", "n_images": len(sub),
                     "source": "samples/eurosat-test-1000 (100 test-split images per class)"}
    te = split_indices(ds, "test")
    if n is not None and n < len(te):
        te = np.sort(np.random.default_rng(0).choice(te, n, replace=False))
    sub = ds.subset(te)
    return sub, {"kind": "test split", "n_images": len(sub), "source": str(ds.root or data)}
