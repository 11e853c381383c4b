"""Small real subsets shipped inside the project (credited to EuroSAT, MIT licence).

* ``calibration/``: 512 training images (stratified, seeded; see
  :func:`eo_edge.data.split.calibration_indices`) for INT8 calibration.
* ``samples/eurosat-test-1000/``: 100 test images per class, the out-of-the-box data of
  ``eo-edge bench`` when the full dataset has not been prepared.

Both are flat folders of the original JPEG bytes named ``<Class>_<n>.jpg``.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from ..assets import CALIBRATION_DIR, TEST_SUBSET_DIR  # noqa: F401  (re-exported; located in one place)
from ..errors import EOEdgeError
from .dataset import natural_key
from .decode import IMAGE_EXTS, decode_image


def copy_from_archive(archive: Path, names: list[str], dest: Path) -> int:
    """Copy members ``<Class>/<file>`` of a EuroSAT zip, byte for byte, to ``dest/<file>``.

    Returns the number of files written.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        index = {"/".join(i.filename.split("/")[-2:]): i for i in zf.infolist() if not i.is_dir()}
        for n in names:
            (dest / n.split("/")[-1]).write_bytes(zf.read(index[n]))
    return len(names)


def load_flat_images(folder: Path, limit: int | None = None) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """Decode up to ``limit`` images of a folder (recursively, natural order; with class
    sub-folders, one image of each sub-folder in turn, so a limit is stratified).

    Returns:
        ``(images uint8 (N,S,S,3) at the first image's size, names, sha256s, skipped)``.

    Raises:
        EOEdgeError: folder missing or no readable image in it.
    """
    if not folder.is_dir():
        raise EOEdgeError(f"image folder not found: {folder}")
    files = sorted((f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTS),
                   key=lambda f: natural_key(str(f.relative_to(folder))))
    groups: dict[str, list[Path]] = {}
    for f in files:  # class sub-folders: take them in turn, so a limit samples every class
        rel = f.relative_to(folder).parts
        groups.setdefault(rel[0] if len(rel) > 1 else "", []).append(f)
    if len(groups) > 1:
        order, queues = [], [list(g) for _, g in sorted(groups.items())]
        while any(queues):
            for q in queues:
                if q:
                    order.append(q.pop(0))
        files = order
    imgs, names, hashes, skipped = [], [], [], []
    size = None  # the first image's size; others are resized to it (and never to a fixed 64)
    for f in files:
        if limit is not None and len(imgs) >= limit:
            break
        b = f.read_bytes()
        try:
            arr, _ = decode_image(b, size)
            size = size or arr.shape[0]
        except ValueError as e:
            skipped.append(f"{f.name}: {e}")
            continue
        imgs.append(arr)
        names.append(str(f.relative_to(folder)))
        hashes.append(hashlib.sha256(b).hexdigest())
    if not imgs:
        raise EOEdgeError(f"no readable image in {folder}")
    return np.stack(imgs), names, hashes, skipped
