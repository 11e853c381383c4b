"""One fixed train/val/test split for everyone, and the INT8 calibration subset.

The split is stratified per class (70/15/15, seeded) and committed in the package as
``eo_edge/resources/eurosat_split.json`` so that every number eo-edge reports on EuroSAT
uses the same 4,050 test images. For other datasets the same seeded procedure is applied
to the dataset's own file names (deterministic, so it needs no file).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

import numpy as np

from ..defaults import CALIB_SIZE
from ..errors import EOEdgeError
from ..schemas import SPLIT
from .dataset import PreparedData, natural_key

SPLITS = ("train", "val", "test")
RATIOS = (0.70, 0.15, 0.15)
SEED = 0
SPLIT_FILE = "eurosat_split.json"


def make_split(names: list[str], seed: int = SEED, ratios: tuple[float, float, float] = RATIOS) -> dict[str, list[str]]:
    """Stratified split of ``<Class>/<file>`` names.

    Per class: names in natural order, permuted with ``numpy.random.default_rng(seed + k)``
    (k = the class's index in sorted order), then the first round(0.70 n) go to train,
    the next round(0.15 n) to val, the rest to test.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}`` (names, each list sorted naturally).
    """
    by_class: dict[str, list[str]] = {}
    for n in names:
        by_class.setdefault(n.split("/")[0], []).append(n)
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for k, cls in enumerate(sorted(by_class)):
        items = sorted(by_class[cls], key=natural_key)
        perm = np.random.default_rng(seed + k).permutation(len(items))
        n_tr = int(round(ratios[0] * len(items)))
        n_va = int(round(ratios[1] * len(items)))
        parts = (perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:])
        for s, idx in zip(SPLITS, parts):
            out[s].extend(items[i] for i in idx)
    return {s: sorted(v, key=natural_key) for s, v in out.items()}


def encode_split(split: dict[str, list[str]]) -> dict:
    """Compact JSON form of a EuroSAT split: per class, the image numbers of each split."""
    body: dict[str, dict[str, list[int]]] = {}
    for s, names in split.items():
        for n in names:
            cls, fname = n.split("/")
            m = re.fullmatch(rf"{re.escape(cls)}_(\d+)\.jpg", fname)
            if not m:
                raise ValueError(f"not a EuroSAT file name: {n}")
            body.setdefault(cls, {t: [] for t in SPLITS})[s].append(int(m.group(1)))
    for cls in body:
        for s in SPLITS:
            body[cls][s].sort()
    return {"format": SPLIT, "dataset": "EuroSAT RGB", "seed": SEED, "ratios": list(RATIOS),
            "method": "eo_edge.data.split.make_split", "classes": body}


@lru_cache(maxsize=1)
def committed_split() -> dict[str, frozenset[str]]:
    """The committed EuroSAT split: ``{"train"|"val"|"test": frozenset of <Class>/<file> names}``."""
    raw = json.loads(resources.files("eo_edge.resources").joinpath(SPLIT_FILE).read_text())
    out: dict[str, set[str]] = {s: set() for s in SPLITS}
    for cls, parts in raw["classes"].items():
        for s in SPLITS:
            out[s].update(f"{cls}/{cls}_{i}.jpg" for i in parts[s])
    return {s: frozenset(v) for s, v in out.items()}


def split_source(data: PreparedData) -> str:
    """Which split :func:`split_indices` applies to ``data``, in words (recorded with every number)."""
    own = (data.manifest or {}).get("split")
    if own:
        return own.get("method", "the dataset's own split")
    committed = committed_split()
    everything = committed["train"] | committed["val"] | committed["test"]
    if all(n in everything for n in data.names):
        return f"the committed EuroSAT split (eo_edge/resources/{SPLIT_FILE})"
    return "a seeded, stratified 70/15/15 split of this dataset's own file names (eo_edge.data.split.make_split)"


def split_indices(data: PreparedData, split: str) -> np.ndarray:
    """Indices (int64 array) of ``data`` rows in ``split`` ("train", "val", "test" or "all").

    A dataset prepared with its own split (``train/``, ``test/`` folders) uses it; EuroSAT data
    uses the committed split; other data uses :func:`make_split` on its own names.

    Raises:
        EOEdgeError: unknown split name, or the split is empty.
    """
    if split == "all":
        return np.arange(len(data), dtype=np.int64)
    if split not in SPLITS:
        raise EOEdgeError(f"unknown split {split!r}; choose train, val, test or all")
    own = (data.manifest or {}).get("split")
    if own:
        members = frozenset(own[split])
    else:
        committed = committed_split()
        everything = committed["train"] | committed["val"] | committed["test"]
        if all(n in everything for n in data.names):
            members = committed[split]
        else:
            members = frozenset(make_split(list(data.names))[split])
    idx = np.array([i for i, n in enumerate(data.names) if n in members], dtype=np.int64)
    if idx.size == 0:
        raise EOEdgeError(f"split {split!r} is empty for this dataset")
    return idx


def train_rows(data: PreparedData, limit: int | None = None, seed: int = 0) -> np.ndarray:
    """The training rows a run uses: the train split, or (``--limit-train N``) a seeded random
    choice of N of them, sorted. Training and the teacher-logit cache both call this, so the
    cached rows are exactly the trained ones.

    Raises:
        EOEdgeError: ``limit`` < 1.
    """
    rows = split_indices(data, "train")
    if limit is None:
        return rows
    if limit < 1:
        raise EOEdgeError(f"--limit-train must be at least 1, got {limit}")
    return np.sort(np.random.default_rng(seed).permutation(rows)[:limit])


def calibration_indices(data: PreparedData, n: int = CALIB_SIZE, seed: int = SEED) -> np.ndarray:
    """A stratified, seeded subset of ``n`` training images for INT8 calibration.

    Each class gets a share proportional to its size in the train split (largest
    remainders); images drawn with ``numpy.random.default_rng(seed)``.

    Returns:
        int64 indices into ``data`` (sorted).
    """
    train = split_indices(data, "train")
    labels = data.labels[train]
    classes, counts = np.unique(labels, return_counts=True)
    share = counts / counts.sum() * n
    take = np.floor(share).astype(int)
    for j in np.argsort(-(share - take))[: n - take.sum()]:
        take[j] += 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(train[labels == c], size=min(t, int((labels == c).sum())), replace=False)
              for c, t in zip(classes, take)]
    return np.sort(np.concatenate(picked))
