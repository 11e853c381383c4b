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
from .dataset import EUROSAT_CLASSES, PreparedData, load_prepared
from .prepare import prepare
from .split import split_indices


def _log_stderr(msg: str) -> None:
    print(msg, flush=True)


def dataset_name(source: Path) -> str:
    """The cache name of a source: ``eurosat`` for the official ``EuroSAT.zip``, else the
    source's own name (folder name, or archive stem)."""
    return "eurosat" if source.name == "EuroSAT.zip" else (source.stem if source.is_file() else source.name)


def source_fingerprint(source: Path) -> str:
    """What a cache was made from, by content: an archive's sha256, or for a folder the sha256
    of every file's relative path, size and modification time (a changed folder is re-read)."""
    from ..fileio import sha256_file

    if source.is_file():
        return "sha256:" + sha256_file(source)
    h = hashlib.sha256()
    for f in sorted(p for p in source.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(source).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return "files:" + h.hexdigest()[:32]


def model_dataset(cfg) -> str | None:
    """The dataset a model was trained on, from its config: the cache folder it recorded when that
    still exists, else its cache name (looked up under ``HOME/datasets``); None for models that
    recorded none (the shipped EuroSAT ones: the ``eurosat`` cache)."""
    path = cfg.extra.get("dataset_path")
    if path and (Path(path) / "manifest.json").is_file():
        return str(path)
    return cfg.extra.get("dataset")


def resolve_data(data: Path | None, home: Path | None, progress: bool = True,
                 log: Callable[[str], None] = _log_stderr, dataset: str | None = None) -> PreparedData:
    """Load the dataset a command was given.

    Args:
        data: ``--data``: a prepared cache folder (has ``manifest.json``), or a source that is
            prepared into ``HOME/datasets/<name>`` first (:func:`dataset_name`); a cache of that
            name made from another source is never replaced (this one goes to
            ``<name>-<hash of its path>``), one made from the same source is re-made when the
            source's content changed (:func:`source_fingerprint`). None: the cache named
            ``dataset`` (the dataset a model was trained on; default ``eurosat``).
        home: ``--home`` (see :func:`eo_edge.home.home_dir`).

    Returns:
        every image of the dataset (apply a split with :func:`eo_edge.data.split.split_indices`).

    Raises:
        EOEdgeError: no dataset given and none prepared, ``data`` missing, or preparing it failed.
    """
    from ..home import home_dir

    h = home_dir(home)
    if data is None:
        name = dataset or "eurosat"
        if "/" in name and (Path(name) / "manifest.json").is_file():  # a model's recorded cache folder
            return load_prepared(Path(name))
        default = h / "datasets" / Path(name).name
        if (default / "manifest.json").is_file():
            return load_prepared(default)
        raise EOEdgeError(f"no dataset: the model's data ({name}) is not prepared in {h / 'datasets'}; pass --data "
                          "(EuroSAT.zip, a folder, or a prepared cache), or run `eo-edge data prepare --source ...` once")
    if not data.exists():
        raise EOEdgeError(f"data not found: {data}")
    if data.is_dir() and (data / "manifest.json").is_file():
        return load_prepared(data)
    name = dataset_name(data)
    key = hashlib.sha1(str(data.resolve()).encode()).hexdigest()[:10]
    fp = source_fingerprint(data)

    def manifest(c: Path) -> dict:
        try:
            return json.loads((c / "manifest.json").read_text())
        except (OSError, ValueError):
            return {}

    for cache in (h / "datasets" / name, h / "datasets" / f"{name}-{key}"):
        m = manifest(cache)
        if not m:
            break  # free: prepare here
        if m.get("source") == str(data.resolve()):
            if m.get("source_key") == fp:
                return load_prepared(cache)
            log(f"{data} changed since {cache.name} was prepared: preparing it again")
            break
    else:
        raise EOEdgeError(f"{h / 'datasets'} holds other datasets under {name} and {name}-{key}; pass --data to a "
                          "prepared folder, or `eo-edge data prepare --source ... --out NEW` first")
    log(f"preparing {data} -> {cache}")
    m = prepare(data, cache, progress=progress, replace=True, source_key=fp)
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
                     log: Callable[[str], None] = _log_stderr, split: str = "test",
                     dataset: str | None = None) -> tuple[PreparedData, dict]:
    """Images for measuring: the ``split`` of the prepared data (``--data``, else the cache named
    ``dataset``, default eurosat), else - only when ``--data`` was not given - the shipped test subset.

    Args:
        n: at most this many images (a seeded random choice of the split, or the first
            ``n`` of the subset); None or <= 0: all.
        split: "test" (default), "val", "train" or "all".

    Returns:
        ``(data, {"kind": "<split> split" | "shipped test subset", "n_images", "source", "split_source"})``.

    Raises:
        EOEdgeError: ``data`` was given but cannot be loaded.
    """
    n = None if n is None or n <= 0 else n
    try:
        ds = resolve_data(data, home, progress, log, dataset=dataset)
    except EOEdgeError:
        if data is not None or split != "test":
            raise
        sub = shipped_test_subset(n)
        return sub, {"kind": "shipped test subset", "n_images": len(sub),
                     "source": "samples/eurosat-test-1000 (100 test-split images per class)",
                     "split_source": "the committed EuroSAT split's test part"}
    from .split import split_source

    te = split_indices(ds, split)
    if n is not None and n < len(te):
        te = np.sort(np.random.default_rng(0).choice(te, n, replace=False))
    sub = ds.subset(te)
    return sub, {"kind": f"{split} split", "n_images": len(sub), "source": str(ds.root or data),
                 "split_source": split_source(ds)}


def calibration_set(cfg, n: int, home: Path | None, folder: Path | None = None, progress: bool = True,
                    log: Callable[[str], None] = _log_stderr) -> tuple[np.ndarray, list[str], list[str], Path | None]:
    """The INT8 calibration images of a model, in one place (``compile --int8`` and ``bench``).

    ``folder`` given: up to ``n`` images of it (class sub-folders taken in turn). Else a model
    trained on another dataset than EuroSAT RGB calibrates on a class-stratified, seeded sample of
    its own training split (:func:`eo_edge.data.split.calibration_indices`); EuroSAT RGB models on
    the shipped ``calibration/`` images (512 EuroSAT training images). Says which in ``log``.

    Returns:
        ``(images (N, H, W, C), names, sha256 of each image, where they came from)``.
    """
    import hashlib

    from ..assets import CALIBRATION_DIR
    from .split import calibration_indices
    from .subsets import load_flat_images

    own = model_dataset(cfg)
    if folder is None and own is not None and Path(own).name != "eurosat":
        ds = resolve_data(None, home, progress, log, dataset=own)
        idx = calibration_indices(ds, n)
        imgs = np.asarray(ds.images[idx])
        hashes = [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest() for im in imgs]
        log(f"calibration: {len(idx)} training images of {Path(own).name}, stratified by class (seeded; {ds.root})")
        return imgs, [ds.names[i] for i in idx], hashes, ds.root
    cdir = folder or CALIBRATION_DIR
    imgs, names, hashes, skipped = load_flat_images(cdir, n)
    for s_ in skipped:
        log(f"[yellow]warning:[/] calibration image skipped: {s_}")
    log(f"calibration: {len(imgs)} images of {cdir}")
    return imgs, names, hashes, cdir

