"""``eo-edge faults``: bit-flip (single-event upset) tolerance of ONNX artifacts, per precision.

Every input and option is checked before the first trial: each file must be an ONNX file with
eo-edge metadata and weights of its precision's dtype, ``--bits`` a list of positive counts no
larger than the file's weight elements, ``--classes`` known and applicable. Then, per file,
the clean top-1 and ``repeats`` trials per (position class, k) on ``--images`` test-split
images (a seeded sample, as ``eo-edge bench`` takes: :func:`fault_images`); results go to a
rich table, an optional markdown table and an optional JSON file (written atomically).
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import EOEdgeError
from ..fileio import load_onnx
from ..hostinfo import tool_versions
from ..schemas import FAULTS as SCHEMA

BATCH = 256  # images per session.run: the batch size of `eo-edge eval`


@dataclass
class FaultOptions:
    """Options of ``eo-edge faults`` (see its ``--help``)."""

    bits: str = "1,10,100"
    repeats: int = 5
    seed: int = 0
    classes: str | None = None
    images: int = 1000
    data: Path | None = None
    home: Path | None = None
    threads: int | None = None


def parse_bits(text: str) -> list[int]:
    """``"1,10,100"`` -> ``[1, 10, 100]`` (sorted, distinct).

    Raises:
        EOEdgeError: empty, not integers, or a count < 1.
    """
    try:
        ks = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise EOEdgeError(f"--bits must be comma-separated whole numbers of bits, e.g. 1,10,100; got {text!r}") from None
    if not ks or min(ks) < 1:
        raise EOEdgeError(f"--bits must be comma-separated counts >= 1, e.g. 1,10,100; got {text!r}")
    return sorted(set(ks))


def parse_classes(text: str | None) -> list[str] | None:
    """``"sign,exponent"`` -> ``["sign", "exponent"]``; None = every class of each file's dtype.

    Raises:
        EOEdgeError: an unknown class name.
    """
    from ..measure.faults import ALL_CLASSES

    if text is None:
        return None
    cs = [c.strip().lower() for c in text.split(",") if c.strip()]
    bad = [c for c in cs if c not in ALL_CLASSES]
    if bad or not cs:
        raise EOEdgeError(f"unknown --classes {', '.join(bad) or repr(text)}; choose from {', '.join(ALL_CLASSES)}")
    return list(dict.fromkeys(cs))


@dataclass
class _File:
    path: Path
    proto: Any
    metadata: dict
    cfg: Any
    fmt: Any
    fm: Any
    classes: list[str]


def _load(path: Path, ks: list[int], wanted: list[str] | None) -> _File:
    """One validated input (see the module doc)."""

    from ..artifact.config import ModelConfig
    from ..artifact.forms import format_of_metadata
    from ..artifact.onnx_meta import read_metadata
    from ..measure.faults import PRECISION_DTYPES, FaultModel

    if not path.exists():
        raise EOEdgeError(f"model not found: {path}")
    if path.is_dir():
        raise EOEdgeError(f"{path} is a folder; give ONNX files")
    if path.suffix.lower() != ".onnx":
        raise EOEdgeError(f"{path.name} is not an ONNX file: eo-edge faults flips the weights of .onnx artifacts "
                          "(export a checkpoint first with `eo-edge export`)")
    proto = load_onnx(path, external_data=True)
    md = read_metadata(proto)
    if "config" not in md:
        raise EOEdgeError(f"{path} carries no eo-edge metadata (export it with `eo-edge export`)")
    cfg = ModelConfig.from_dict(md["config"], path.name)
    fmt = format_of_metadata(md)
    try:
        fm = FaultModel(proto, PRECISION_DTYPES[fmt.precision])
    except EOEdgeError as e:
        raise EOEdgeError(f"{path.name} ({fmt.precision}): {e}") from None
    if max(ks) > fm.n_elements:
        raise EOEdgeError(f"--bits {max(ks)} exceeds the {fm.n_elements} weight elements of {path.name}")
    own = fm.classes()
    classes = own if wanted is None else [c for c in wanted if c in own]
    if not classes:
        raise EOEdgeError(f"--classes {', '.join(wanted or [])}: none applies to {path.name} "
                          f"({'/'.join(fm.dtypes())} weights: {', '.join(own)})")
    return _File(path, proto, md, cfg, fmt, fm, classes)


def validate(paths: list[Path], o: FaultOptions) -> tuple[list[int], list[_File]]:
    """Check every option and file before any work.

    Returns:
        ``(sorted k values, loaded files)``.

    Raises:
        EOEdgeError: one line naming the bad option or file.
    """
    ks = parse_bits(o.bits)
    wanted = parse_classes(o.classes)
    if o.repeats < 1:
        raise EOEdgeError(f"--repeats must be at least 1, got {o.repeats}")
    if o.images < 0:
        raise EOEdgeError(f"--images must be >= 0 (0 = the whole test split), got {o.images}")
    if o.threads is not None and o.threads < 1:
        raise EOEdgeError(f"--threads must be at least 1, got {o.threads}")
    if not paths:
        raise EOEdgeError("give one or more ONNX files")
    if wanted is not None:
        from ..measure.faults import BIT_CLASSES

        files = [_load(p, ks, wanted) for p in paths]
        used = {c for f in files for c in f.classes}
        unused = [c for c in wanted if c not in used]
        if unused:
            dts = sorted({d for f in files for d in f.fm.dtypes()})
            raise EOEdgeError(f"--classes {', '.join(unused)} applies to none of the files ({', '.join(dts)} weights; "
                              f"classes: {', '.join(sorted({c for d in dts for c in BIT_CLASSES[d]}))})")
        return ks, files
    return ks, [_load(p, ks, None) for p in paths]


def fault_images(f: _File, o: FaultOptions, quiet: bool, log: Callable[[str], None]):
    """The images every trial of ``f`` is measured on, preprocessed once in batches of :data:`BATCH`.

    ``o.images`` test-split images chosen as ``eo-edge bench`` and export's parity check choose
    them (:func:`eo_edge.data.resolve.measurement_data`: a seeded random sample of the split, in
    dataset order; 0 = the whole split; with no ``--data`` and nothing prepared, the shipped
    1,000-image test subset). Not simply the first N: the split is stored class by class.

    Returns:
        ``(batches: [float32 (B, C, S, S)], labels int64 (N,) in the model's class order, info dict)``.

    Raises:
        EOEdgeError: ``--data`` cannot be loaded, or its classes are unknown to the model.
    """
    from ..data.resolve import measurement_data, model_dataset
    from ..data.transforms import preprocess
    from ..metrics.evaluate import check_classes

    sub, info = measurement_data(o.data, o.home, not quiet, n=o.images, log=log, split="test",
                                 dataset=model_dataset(f.cfg))
    check_classes(f.cfg.class_names, sub.class_names, f.path.name)
    names = list(f.cfg.class_names)
    labels = np.array([names.index(c) for c in sub.class_names])[sub.labels]
    imgs = np.asarray(sub.images)
    batches = [preprocess(imgs[s:s + BATCH], f.cfg.input_size, f.cfg.mean, f.cfg.std) for s in range(0, len(imgs), BATCH)]
    sampled = bool(o.images) and info["kind"] == "test split" and len(sub) == o.images
    info = {**info, "selection": ("a seeded sample: numpy default_rng(0).choice of the split, sorted (as eo-edge bench)"
                                  if sampled else f"all {len(sub)} images")}
    return batches, labels, info


def summarize_not_flipped(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The initializers left alone, grouped by reason and dtype: ``{"n_tensors", "n_elements",
    "groups": [{"why", "dtype", "n_tensors", "n_elements", "examples": first 3 names}]}``."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for it in items:
        g = groups.setdefault((it["why"], it["dtype"]), {"why": it["why"], "dtype": it["dtype"], "n_tensors": 0,
                                                         "n_elements": 0, "examples": []})
        g["n_tensors"] += 1
        g["n_elements"] += int(it["n_elements"])
        if len(g["examples"]) < 3:
            g["examples"].append(it["name"])
    return {"n_tensors": len(items), "n_elements": int(sum(int(i["n_elements"]) for i in items)),
            "groups": list(groups.values())}


def _clean_json(o: Any) -> Any:
    """Non-finite floats as strings (``"inf"``, ``"-inf"``, ``"nan"``) so the JSON stays strict."""
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    if isinstance(o, dict):
        return {k: _clean_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean_json(v) for v in o]
    return o


def run_faults(paths: list[Path], o: FaultOptions, *, command: str = "", quiet: bool = False,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Validate, then measure every file.

    Returns:
        ``{"schema", "command", "host", "options", "files": [{"file", "precision", "format", "arch",
        "input_size", "weight_dtypes", "n_weight_elements", "targets", "not_flipped", "data",
        "clean_top1", "rows", "seconds"}]}``; top-1 in %, rows as :func:`eo_edge.measure.faults.run_campaign`.

    Raises:
        EOEdgeError: bad option or file (before any trial), no data.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..fileio import sha256_file
    from ..hostinfo import cpu_name
    from ..measure.faults import run_campaign

    ks, files = validate(paths, o)
    cache: dict[tuple, tuple] = {}
    results = []
    total = sum(len(f.classes) * len(ks) * o.repeats for f in files)
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*cols, disable=quiet, transient=True) as prog:
        task = prog.add_task("bit flips", total=total)
        for f in files:
            key = (str(f.cfg.extra.get("dataset_path") or f.cfg.extra.get("dataset")), f.cfg.input_size,
                   tuple(f.cfg.mean), tuple(f.cfg.std), tuple(f.cfg.class_names))
            if key not in cache:
                cache[key] = fault_images(f, o, quiet, log)
            batches, labels, info = cache[key]
            t0 = time.perf_counter()

            def tick(cls: str, k: int, r: int, name=f.path.name) -> None:
                prog.update(task, advance=1, description=f"{name} {cls} k={k} #{r + 1}")

            res = run_campaign(f.fm, batches, labels, ks, f.classes, o.repeats, o.seed, o.threads, on_trial=tick)
            secs = time.perf_counter() - t0
            if not quiet:  # a progress line; the table below holds the results
                log(f"{f.path.name} ({f.fmt.tag}): clean top-1 {res['clean_top1']:.2f} % on {info['n_images']} images; "
                    f"{len(f.classes) * len(ks) * o.repeats} trials in {secs:.0f} s")
            results.append({"file": str(f.path), "sha256": sha256_file(f.path), "precision": f.fmt.precision,
                            "format": f.fmt.tag, "arch": f.cfg.arch, "input_size": f.cfg.input_size,
                            "weight_dtypes": f.fm.dtypes(), "n_weight_elements": f.fm.n_elements,
                            "targets": [w.describe() for w in f.fm.weights], "not_flipped": summarize_not_flipped(f.fm.not_flipped),
                            "data": info, "clean_top1": res["clean_top1"], "rows": res["rows"], "seconds": secs})
    host = {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "threads": o.threads, "os": platform.platform(),
            "versions": tool_versions()}
    opts = {"bits": ks, "repeats": o.repeats, "seed": o.seed, "classes": o.classes, "images": o.images,
            "batch_size": BATCH, "rng": "numpy default_rng([seed, class index, k, repeat]) per trial; distinct elements"}
    return _clean_json({"schema": SCHEMA, "command": command, "host": host, "options": opts, "files": results})


