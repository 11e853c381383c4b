"""A prepared dataset: the decoded uint8 image cache, its labels, class names and manifest."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EOEdgeError

IMAGE_SIZE = 64


#: sha256 of the official EuroSAT RGB archive (EuroSAT.zip, 2750/<Class>/*.jpg).
EUROSAT_SHA256 = "be037fefc54d0eeefb5079788835202f4031a612d2caa23224142455931ba40a"

EUROSAT_CLASSES = (
    "AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
    "Pasture", "PermanentCrop", "Residential", "River", "SeaLake",
)


@dataclass
class PreparedData:
    """A decoded dataset held in memory.

    Attributes:
        images: uint8 array (N, H, W, 3), RGB, HWC (EuroSAT: 64 x 64).
        labels: int64 array (N,), index into ``class_names``.
        names: relative paths ``<Class>/<file>`` (N,), the keys of the committed split.
        class_names: class names in label order (alphabetical, as torchvision ImageFolder).
        root: the cache folder the arrays came from (None for in-memory data).
    """

    images: np.ndarray
    labels: np.ndarray
    names: list[str]
    class_names: list[str]
    root: Path | None = None
    manifest: dict = field(default_factory=dict)

    def subset(self, idx: np.ndarray) -> "PreparedData":
        """Return the rows ``idx`` (int array) as a new :class:`PreparedData`."""
        idx = np.asarray(idx, dtype=np.int64)
        return PreparedData(self.images[idx], self.labels[idx], [self.names[i] for i in idx],
                            self.class_names, self.root, self.manifest)

    def __len__(self) -> int:
        return len(self.labels)


def natural_key(s: str) -> list:
    """Sort key that orders ``Forest_2.jpg`` before ``Forest_10.jpg``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def load_prepared(cache_dir: str | os.PathLike, mmap: bool = False) -> PreparedData:
    """Load a cache written by :func:`prepare`.

    Raises:
        EOEdgeError: the folder holds no complete prepared cache.
    """
    d = Path(cache_dir)
    mf = d / "manifest.json"
    if not mf.is_file():
        raise EOEdgeError(f"no prepared dataset in {d}: run `eo-edge data prepare --source EuroSAT.zip` first")
    manifest = json.loads(mf.read_text())
    images = np.load(d / "images.npy", mmap_mode="r" if mmap else None)
    labels = np.load(d / "labels.npy")
    return PreparedData(images, labels, list(manifest["names"]), list(manifest["class_names"]), d, manifest)
