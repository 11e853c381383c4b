"""Rebuild the shipped real subsets (``calibration/`` and ``samples/eurosat-test-1000/``).

Usage: ``python -m eo_edge.data.make_subsets --archive ../shared/data/EuroSAT.zip``
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from ..assets import CALIBRATION_DIR, TEST_SUBSET_DIR
from ..defaults import CALIB_SIZE
from .dataset import load_prepared
from .prepare import prepare
from .split import calibration_indices, split_indices
from .subsets import copy_from_archive


def test_subset_names(data, per_class: int = 100, seed: int = 0) -> list[str]:
    """``per_class`` test-split names per class, drawn with ``default_rng(seed)``, class by class."""
    te = split_indices(data, "test")
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for c in range(len(data.class_names)):
        idx = te[data.labels[te] == c]
        out += [data.names[i] for i in np.sort(rng.choice(idx, min(per_class, len(idx)), replace=False))]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--archive", type=Path, required=True)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as td:
        prepare(a.archive, td, progress=False)
        d = load_prepared(td)
        copy_from_archive(a.archive, [d.names[i] for i in calibration_indices(d, CALIB_SIZE)], CALIBRATION_DIR)
        copy_from_archive(a.archive, test_subset_names(d), TEST_SUBSET_DIR)


if __name__ == "__main__":
    main()
