"""Read EuroSAT (or any folder of class sub-folders), decode every image once, cache it.

``prepare`` accepts the official archive (``EuroSAT.zip``, layout ``2750/<Class>/*.jpg``)
or an extracted folder of class sub-folders. Each image is decoded with Pillow to 64x64
RGB uint8 (other sizes/modes are converted, and the report says so); unreadable files are
listed and skipped, never fatal. The result is cached as ``images.npy`` (N, 64, 64, 3)
uint8 + ``labels.npy`` (N,) int64 + ``manifest.json``, so training never re-decodes JPEGs.

Dataset: Helber et al., "EuroSAT: A Novel Dataset and Deep Learning Benchmark for Land
Use and Land Cover Classification", IEEE JSTARS 2019 (MIT licence).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import EOEdgeError
from ..fileio import sha256_file, write_json
from ..schemas import DATA
from .bands import band_names, select_bands
from .dataset import EUROSAT_SHA256, natural_key
from .decode import IMAGE_EXTS, decode_image
from .sources import (
    SPLIT_DIRS,
    VAL_FRACTION,
    _iter_archive,
    _iter_folder,
    apply_split_files,
    carve_val,
    read_split_files,
    split_layout,
)

#: sha256 of the official EuroSAT RGB archive (the copy in ../shared/data).
KNOWN_SHA256 = {"EuroSAT.zip": EUROSAT_SHA256}
def prepare(source: str | os.PathLike, cache_dir: str | os.PathLike, *, sha256: str | None = None,
            progress: bool = True, replace: bool = False, size: int | None = None,
            source_key: str | None = None, bands: str | None = None, split_files: list[Path] | None = None) -> dict:
    """Decode a EuroSAT-style dataset and cache it as uint8 arrays.

    Args:
        source: ``EuroSAT.zip`` (official layout) or a folder of class sub-folders.
        cache_dir: where ``images.npy``, ``labels.npy`` and ``manifest.json`` are written. The
            three files are written into a temporary folder beside it that is renamed onto
            ``cache_dir`` only when complete, so a dataset appears whole or not at all.
        replace: allow replacing a cache that was prepared from another source (otherwise refused).
        sha256: expected sha256 of an archive; defaults to the known one for
            ``EuroSAT.zip`` (or the ``<archive>.sha256`` file beside it).
        progress: show a rich progress bar.
        size: resize every image to ``size`` x ``size`` px (bilinear); None keeps the images'
            own size, which must then be the same for all (EuroSAT: 64).
        source_key: the source's content fingerprint (``eo_edge.data.resolve.source_fingerprint``),
            recorded so a changed source is re-prepared.
        bands: keep these bands, in this order (:func:`select_bands`: names such as
            ``B04,B03,B02`` or 1-based numbers). (Geo)TIFFs keep every band and their dtype.
        split_files: the user's split (:func:`read_split_files`: a CSV or torchgeo-style lists);
            it wins over folders and over the committed EuroSAT split; without a val list, 15 % of
            each class of train is carved out, seeded.

    A folder with ``train/``, optional ``val/`` and ``test/`` sub-folders of class folders keeps
    that split (``manifest["split"]``; names are ``<split>/<Class>/<file>``); without ``val/`` a
    validation split of 15 % per class is carved from train, seeded (:func:`carve_val`).

    Returns:
        The manifest dict: ``n_images``, ``class_names``, ``counts``, ``skipped`` (list of
        ``"name: reason"``), ``converted`` (list), ``warnings``, ``source``, ``source_sha256``.

    Raises:
        EOEdgeError: missing source, checksum mismatch, no readable image at all, or
            ``cache_dir`` holds a dataset prepared from another source (and not ``replace``).
    """
    src = Path(source)
    if not src.exists():
        raise EOEdgeError(f"data source not found: {src}")
    out = Path(cache_dir)
    old_mf = out / "manifest.json"
    if old_mf.is_file() and not replace:
        try:
            old_src = json.loads(old_mf.read_text()).get("source")
        except (OSError, ValueError):
            old_src = None
        if old_src != str(src.resolve()):
            raise EOEdgeError(f"{out} holds a dataset prepared from {old_src}; refusing to replace it with {src} "
                              "(choose another --out, or pass --replace)")
    issues: list[str] = []
    src_sha = None
    if src.is_file():
        expected = sha256 or _sha_beside(src) or KNOWN_SHA256.get(src.name)
        src_sha = sha256_file(src)
        if expected and expected.lower() != src_sha:
            raise EOEdgeError(f"sha256 mismatch for {src}: expected {expected}, got {src_sha}")
        it = _iter_archive(src, issues)
        total = _count_archive(src)
    elif src.is_dir():
        layout = split_layout(src)
        if layout is None:
            it = _iter_folder(src, issues)
        else:
            def _split_iter():
                for sp in layout:
                    for cls, rel, data in _iter_folder(src / sp, issues):
                        yield cls, f"{sp}/{rel}", data
            it = _split_iter()
        total = None
    else:
        raise EOEdgeError(f"data source is neither a file nor a folder: {src}")
    if src.is_file():
        layout = None

    images, classes, names, converted, skipped = [], [], [], [], []
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as prog:
        task = prog.add_task("decoding images", total=total)
        for cls, rel, data in it:
            try:
                arr, note = decode_image(data, size)
            except ValueError as e:
                skipped.append(f"{rel}: {e}")
            else:
                if note:
                    converted.append(f"{rel}: {note}")
                images.append(arr)
                classes.append(cls)
                names.append(rel)
            prog.advance(task)
    if not images:
        first = (skipped + issues)[:1]
        raise EOEdgeError(f"no readable image found in {src}" + (f" ({len(skipped)} skipped; first: {first[0]})"
                                                                   if first else ""))
    kinds: dict[tuple, int] = {}
    for a in images:
        kinds[(a.shape[2], a.dtype.str)] = kinds.get((a.shape[2], a.dtype.str), 0) + 1
    if len(kinds) > 1:
        listed = ", ".join(f"{c} bands {np.dtype(d).name}: {n}" for (c, d), n in kinds.items())
        raise EOEdgeError(f"images in {src} differ in bands or dtype ({listed}); a dataset needs one layout")
    shapes: dict[tuple, int] = {}
    for a in images:
        shapes[a.shape[:2]] = shapes.get(a.shape[:2], 0) + 1
    if len(shapes) > 1:
        listed = ", ".join(f"{h}x{w}: {c}" for (h, w), c in sorted(shapes.items(), key=lambda kv: -kv[1])[:4])
        raise EOEdgeError(f"images in {src} have different sizes ({listed}); pass --size S to resize them all "
                          "to S x S px")
    class_names = sorted(set(classes))
    cidx = {c: i for i, c in enumerate(class_names)}
    order = sorted(range(len(names)), key=lambda i: (classes[i], natural_key(names[i])))
    img_arr = np.stack([images[i] for i in order])
    names_all = band_names(img_arr.shape[-1], img_arr.dtype)
    if bands:
        keep = select_bands(bands, names_all)
        img_arr = np.ascontiguousarray(img_arr[..., keep])
        names_all = [names_all[i] for i in keep]
    lab_arr = np.array([cidx[classes[i]] for i in order], dtype=np.int64)
    names = [names[i] for i in order]

    manifest = {
        "format": DATA,
        "source": str(src.resolve()),
        "source_sha256": src_sha,
        "source_key": source_key or (f"sha256:{src_sha}" if src_sha else None),
        "name": out.name,
        "n_images": int(len(lab_arr)),
        "image_shape": list(img_arr.shape[1:]),
        "dtype": img_arr.dtype.name,
        "bands": names_all,
        "resized_to": size,
        "class_names": class_names,
        "counts": {c: int((lab_arr == i).sum()) for i, c in enumerate(class_names)},
        "skipped": skipped,
        "converted": converted,
        "warnings": issues,
        "names": names,
    }
    mapping = None
    if split_files:
        mapping, desc = read_split_files([Path(x) for x in split_files])
    if mapping is not None or layout is not None:
        if mapping is not None:
            by_split = apply_split_files(names, mapping, issues)
            method, layout = desc, [sp for sp in SPLIT_DIRS if by_split[sp]]
            if not by_split["train"] or not by_split["test"]:
                raise EOEdgeError(f"{desc}: no image of {src} matched its train and test lists (paths relative to "
                                  f"{src}, or file names)")
        else:
            by_split = {sp: [n for n in names if n.split("/")[0] == sp] for sp in SPLIT_DIRS}
            method = "the dataset's own " + "/, ".join(layout) + "/ folders"
        if "val" not in layout:
            cls_of = dict(zip(names, (class_names[i] for i in lab_arr)))
            by_split["train"], by_split["val"] = carve_val(by_split["train"], cls_of)
            method += f"; val carved from train: {VAL_FRACTION:.0%} per class, seeded (eo_edge.data.prepare.carve_val)"
        manifest["split"] = {"method": method, **by_split}
    _write_cache(out, img_arr, lab_arr, manifest)
    return manifest


def _write_cache(out: Path, images: np.ndarray, labels: np.ndarray, manifest: dict) -> None:
    """Write the three cache files into a temporary sibling folder, then swap it in (the old
    cache, if any, is removed only after the new one is in place).

    Raises:
        EOEdgeError: the parent folder is missing, or the disk is full.
    """
    import errno
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    old = None
    try:
        np.save(tmp / "images.npy", images)
        np.save(tmp / "labels.npy", labels)
        write_json(tmp / "manifest.json", manifest)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
    except OSError as e:
        if old is not None and not out.exists():
            os.replace(old, out)  # put the previous cache back
            old = None
        if e.errno == errno.ENOSPC:
            raise EOEdgeError(f"disk full while writing {out}; the previous dataset (if any) is unchanged") from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _sha_beside(p: Path) -> str | None:
    side = p.with_name(p.name + ".sha256")
    if side.is_file():
        tok = side.read_text().split()
        return tok[0] if tok else None
    return None


def _count_archive(p: Path) -> int | None:
    try:
        with zipfile.ZipFile(p) as zf:
            return sum(1 for i in zf.infolist() if not i.is_dir() and Path(i.filename).suffix.lower() in IMAGE_EXTS)
    except Exception:
        return None


