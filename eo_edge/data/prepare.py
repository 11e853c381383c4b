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

import io
import json
import os
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import EOEdgeError
from ..fileio import sha256_file, write_json

IMAGE_SIZE = 64
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
#: sha256 of the official EuroSAT RGB archive (the copy in ../shared/data).
KNOWN_SHA256 = {"EuroSAT.zip": "be037fefc54d0eeefb5079788835202f4031a612d2caa23224142455931ba40a"}
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


#: Sentinel-2 L1C band order of EuroSAT MS's 13-band GeoTIFFs (B8A after B08)
S2_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B08A", "B09", "B10", "B11", "B12")
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
DTYPES = (np.uint8, np.uint16, np.int16, np.float32)


def band_names(n: int, dtype) -> list[str]:
    """Names of ``n`` bands: RGB for 3-band uint8, Sentinel-2 L1C order for 13 bands, else band1..bandN."""
    if n == 3 and np.dtype(dtype) == np.uint8:
        return ["R", "G", "B"]
    if n == len(S2_BANDS):
        return list(S2_BANDS)
    return [f"band{i + 1}" for i in range(n)]


def select_bands(spec: str, names: list[str]) -> list[int]:
    """Band indices for ``--bands``: names (``B04,B03,B02``) or 1-based band numbers (``4,3,2``,
    GDAL's convention), in the order given.

    Raises:
        EOEdgeError: an unknown name or number, or a band given twice.
    """
    out = []
    for tok in (t.strip() for t in spec.split(",") if t.strip()):
        if tok in names:
            out.append(names.index(tok))
        elif tok.isdigit() and 1 <= int(tok) <= len(names):
            out.append(int(tok) - 1)
        else:
            raise EOEdgeError(f"--bands: unknown band {tok!r}; this data has {', '.join(names)} (or 1..{len(names)})")
    if not out or len(set(out)) != len(out):
        raise EOEdgeError(f"--bands {spec!r}: give each band once")
    return out


def decode_tiff(data: bytes, size: int | None = None) -> tuple[np.ndarray, str | None]:
    """Decode a (Geo)TIFF with tifffile: (H, W, C), every band, values exact in their own dtype
    (uint8, uint16, int16, float32; float64 becomes float32). ``size``: bilinear resize (reported).

    Raises:
        ValueError: unreadable, or an unsupported dtype/layout.
    """
    import tifffile

    try:
        arr = tifffile.imread(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - tifffile raises many types for bad files
        raise ValueError(f"{type(e).__name__}: {e}") from None
    if arr.ndim == 2:
        arr = arr[..., None]
    elif arr.ndim == 3 and arr.shape[0] <= 32 and arr.shape[0] < arr.shape[-1]:
        arr = np.moveaxis(arr, 0, -1)  # planar (C, H, W) -> (H, W, C)
    if arr.ndim != 3:
        raise ValueError(f"TIFF of shape {arr.shape}: expected (H, W, bands)")
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    if arr.dtype.type not in DTYPES:
        raise ValueError(f"TIFF of dtype {arr.dtype}: supported are uint8, uint16, int16, float32")
    note = None
    if size is not None and arr.shape[:2] != (size, size):
        from .transforms import resize_bilinear

        note = f"size {arr.shape[1]}x{arr.shape[0]}->{size}x{size}"
        r = resize_bilinear(arr[None].astype(np.float32), size)[0]
        arr = (np.rint(r) if arr.dtype.kind in "ui" else r).astype(arr.dtype)
    return np.ascontiguousarray(arr), note


def decode_image(data: bytes, size: int | None = IMAGE_SIZE) -> tuple[np.ndarray, str | None]:
    """Decode one image file's bytes to an (H, W, 3) uint8 RGB array.

    Args:
        size: resize to ``size`` x ``size`` (bilinear; reported in the note), or None to keep the
            image's own size.

    Returns:
        ``(array, note)``: ``note`` says what was converted (mode, size), else None.

    Raises:
        ValueError: the bytes are not a readable image (truncated, corrupt, not an image).
    """
    from PIL import Image

    if data[:4] in TIFF_MAGIC:  # every band, exact values (no 8-bit conversion)
        return decode_tiff(data, size)
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
                # converting would clip every value above 255 (a 16-bit EO image is mostly above)
                raise ValueError(f"{im.mode} ({'16' if '16' in im.mode else '32'}-bit) non-TIFF image: an 8-bit "
                                 "conversion would saturate it at 255 (save 16-bit bands as TIFF: read exactly)")
            notes = []
            if im.mode != "RGB":
                notes.append(f"mode {im.mode}->RGB")
                if im.mode in ("RGBA", "LA", "P"):
                    im = im.convert("RGBA")
                    bg = Image.new("RGBA", im.size, (0, 0, 0, 255))
                    im = Image.alpha_composite(bg, im)
                im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                notes.append(f"size {im.size[0]}x{im.size[1]}->{size}x{size}")
                im = im.resize((size, size), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8).copy()
    except ValueError as e:
        raise ValueError(str(e)) from None
    except Exception as e:  # Pillow raises many types for bad files
        raise ValueError(f"{type(e).__name__}: {e}") from None
    return arr, ("; ".join(notes) or None)


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
        "format": "eo-edge-data/1",
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
