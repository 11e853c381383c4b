"""Where images come from: a zip archive or a folder (class folders, optional train/val/test layout), and users' split files."""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import EOEdgeError
from .dataset import natural_key
from .decode import IMAGE_EXTS


def safe_member_path(name: str, root: Path) -> Path | None:
    """Where archive member ``name`` would be extracted under ``root``, or None if unsafe.

    An entry that is absolute, has a drive, or climbs out with ``..`` (zip-slip) would land
    outside ``root`` and is refused (returns None).
    """
    norm = posixpath.normpath(name.replace("\\", "/"))
    if norm.startswith("/") or norm.startswith("..") or re.match(r"^[A-Za-z]:", norm):
        return None
    target = (root / norm).resolve()
    try:
        target.relative_to(root.resolve())
    except ValueError:
        return None
    return target


def class_depth(depths: list[int]) -> int:
    """The path depth (``<root>/<class>/<image>`` = 3) most images sit at: the class-folder level.

    Images at any other depth (stray files at the root, nested sub-folders) are reported, never
    turned into extra classes (a stray ``2750/x.jpg`` would otherwise become class "2750")."""
    from collections import Counter

    return Counter(depths).most_common(1)[0][0] if depths else 0


def _iter_archive(path: Path, issues: list[str]) -> Iterator[tuple[str, str, bytes]]:
    """Yield ``(class_name, rel_name, bytes)`` from a zip archive, refusing unsafe entries."""
    root = Path("/__eo_edge_extract_root__")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise EOEdgeError(f"cannot read archive {path}: {e}") from None
    with zf:
        infos = []
        for info in zf.infolist():
            if info.is_dir():
                continue
            if safe_member_path(info.filename, root) is None:
                issues.append(f"refused archive entry outside the target folder: {info.filename}")
                continue
            parts = posixpath.normpath(info.filename).split("/")
            if Path(parts[-1]).suffix.lower() in IMAGE_EXTS:
                infos.append((info, parts))
        depth = class_depth([len(parts) for _, parts in infos])
        for info, parts in infos:
            if len(parts) != depth or depth < 2:
                issues.append(f"skipped {info.filename}: not in a class folder (images of this archive sit at "
                              f"<class>/<image> depth {depth})")
                continue
            cls, fname = parts[-2], parts[-1]
            try:
                data = zf.read(info)
            except Exception as e:  # CRC errors, truncated archive
                issues.append(f"unreadable archive entry {info.filename}: {e}")
                continue
            yield cls, f"{cls}/{fname}", data


def _iter_folder(path: Path, issues: list[str]) -> Iterator[tuple[str, str, bytes]]:
    """Yield ``(class_name, rel_name, bytes)`` from a folder of class sub-folders.

    Accepts ``path/<Class>/*.jpg``, the archive's ``path/2750/<Class>/*.jpg``, or a flat
    folder of ``<Class>_<n>.jpg`` files (the class is the name before the last underscore).
    """
    if (path / "2750").is_dir():
        path = path / "2750"
    subdirs = [d for d in path.iterdir() if d.is_dir()]
    if not subdirs:  # a flat folder of <Class>_<n>.jpg files (like calibration/ and samples/)
        for f in sorted((f for f in path.iterdir() if f.suffix.lower() in IMAGE_EXTS), key=lambda f: natural_key(f.name)):
            cls = f.name.rsplit("_", 1)[0] if "_" in f.name else None
            if cls is None:
                issues.append(f"no class in file name (expected <Class>_<n>.jpg): {f.name}")
                continue
            try:
                yield cls, f"{cls}/{f.name}", f.read_bytes()
            except OSError as e:
                issues.append(f"unreadable file {f.name}: {e}")
        return
    for f in sorted(path.iterdir()):
        if f.is_file() and f.suffix.lower() in IMAGE_EXTS:
            issues.append(f"skipped {f.name}: an image beside the class folders, not in one")
    for cdir in sorted(subdirs, key=lambda d: d.name):
        for sub in sorted(d for d in cdir.iterdir() if d.is_dir()):
            issues.append(f"skipped folder {cdir.name}/{sub.name}: nested folders are not read (one level of class "
                          "folders)")
        files = sorted((f for f in cdir.iterdir() if f.suffix.lower() in IMAGE_EXTS), key=lambda f: natural_key(f.name))
        if not files:
            issues.append(f"empty class folder skipped: {cdir.name}")
            continue
        for f in files:
            try:
                data = f.read_bytes()
            except OSError as e:
                issues.append(f"unreadable file {cdir.name}/{f.name}: {e}")
                continue
            yield cdir.name, f"{cdir.name}/{f.name}", data


SPLIT_DIRS = ("train", "val", "test")


VAL_FRACTION = 0.15  # of each class's train images, when a split layout has no val/ folder


def split_layout(src: Path) -> list[str] | None:
    """The split folders of a ``train/ [val/] test/`` dataset root (each holding class folders),
    or None for a plain folder of class folders."""
    if src.is_dir() and (src / "train").is_dir() and (src / "test").is_dir():
        return [s for s in SPLIT_DIRS if (src / s).is_dir()]
    return None


def carve_val(train: list[str], classes: dict[str, str], fraction: float = VAL_FRACTION,
              seed: int = 0) -> tuple[list[str], list[str]]:
    """Split ``train`` names into (train, val): per class, ``round(fraction x n)`` images chosen
    with ``numpy.random.default_rng(seed + k)`` (k = the class's index in sorted order) go to val."""
    by: dict[str, list[str]] = {}
    for n in train:
        by.setdefault(classes[n], []).append(n)
    tr, va = [], []
    for k, cls in enumerate(sorted(by)):
        items = sorted(by[cls], key=natural_key)
        perm = np.random.default_rng(seed + k).permutation(len(items))
        n_va = int(round(fraction * len(items)))
        va += [items[i] for i in perm[:n_va]]
        tr += [items[i] for i in perm[n_va:]]
    return sorted(tr, key=natural_key), sorted(va, key=natural_key)


def read_split_files(paths: list[Path]) -> tuple[dict[str, str], str]:
    """Read a user's split: a CSV with a ``split`` column and a ``path`` (or ``file``/``filename``)
    column, or torchgeo-style lists (one relative path or file name per line, one file per split,
    the split named in the file name: ``eurosat-train.txt``, ``...-val.txt``, ``...-test.txt``).

    Returns:
        ``({path or file name: split}, description)``.

    Raises:
        EOEdgeError: unreadable file, unknown split name, or a path listed in two splits.
    """
    import csv

    out: dict[str, str] = {}

    def put(key: str, sp: str, where: Path) -> None:
        key = key.strip().replace("\\", "/").lstrip("./")
        if sp not in SPLIT_DIRS:
            raise EOEdgeError(f"{where}: unknown split {sp!r} for {key} (use train, val, test)")
        if out.get(key, sp) != sp:
            raise EOEdgeError(f"{where}: {key} is listed in both {out[key]} and {sp}")
        out[key] = sp

    for p in paths:
        if not p.is_file():
            raise EOEdgeError(f"split file not found: {p}")
        if p.suffix.lower() == ".csv":
            with p.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
            col = next((c for c in ("path", "file", "filename", "image") if rows and c in rows[0]), None)
            if not rows or col is None or "split" not in rows[0]:
                raise EOEdgeError(f"{p}: a split CSV needs a header with 'path' (or file/filename) and 'split' columns")
            for r in rows:
                put(r[col], r["split"].strip().lower(), p)
        else:
            sp = next((s_ for s_ in SPLIT_DIRS if re.search(rf"(^|[-_.]){s_}([-_.]|$)", p.stem.lower())), None)
            if sp is None:
                raise EOEdgeError(f"{p}: name the list after its split (e.g. eurosat-train.txt, -val.txt, -test.txt)")
            for line in p.read_text().splitlines():
                if line.strip():
                    put(line, sp, p)
    return out, "the split file" + ("s " if len(paths) > 1 else " ") + ", ".join(x.name for x in paths)


def apply_split_files(names: list[str], mapping: dict[str, str], issues: list[str]) -> dict[str, list[str]]:
    """Per split, the dataset names a split file assigns (matched by relative path, else file name);
    images it does not list are reported in ``issues`` and belong to no split."""
    by = {sp: [] for sp in SPLIT_DIRS}
    unlisted = []
    for n in names:
        sp = mapping.get(n) or mapping.get(n.split("/", 1)[-1]) or mapping.get(n.rsplit("/", 1)[-1])
        (by[sp] if sp else unlisted).append(n)
    if unlisted:
        issues.append(f"{len(unlisted)} images are in no split of the split file (e.g. {unlisted[0]}): left out of "
                      "train, val and test")
    return by
