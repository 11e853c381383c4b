"""``eo-edge calibrate``: fit the post-hoc temperature and the keep threshold on validation, and
store both in the config of the model and of every artifact made from it.

The fit (:func:`eo_edge.metrics.decision.fit_decision`) runs on the FP32 model's validation logits.
The result goes into ``ModelConfig.temperature`` / ``ModelConfig.decision`` of the checkpoint,
its ONNX export and the FP16/INT8 files ``eo-edge compile`` made from that ONNX (found beside it by
their ``parent_sha256``), so every backend applies the same T and threshold. The provenance
hashes between them (ONNX ``source_sha256``, compiled ``parent_sha256``) are updated to the new
files, so ``bench`` still recognises them as one family. Every new file is written to a
temporary file first; the originals are replaced only after all were written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import EOEdgeError
from ..schemas import CALIBRATE as SCHEMA


def family(model: Path) -> tuple[Path | None, Path | None, list[Path]]:
    """The checkpoint, FP32 ONNX and compiled children of ``model`` (a ``.pt`` or FP32 ``.onnx``).

    The ONNX beside a checkpoint belongs to it when its ``source_sha256`` is the checkpoint's
    sha256; a compiled file ``<stem>.*.onnx`` belongs to the ONNX when its ``parent_sha256`` is
    the ONNX's sha256.

    Returns:
        ``(checkpoint or None, onnx or None, [children])``.

    Raises:
        EOEdgeError: ``model`` is a compiled (FP16/INT8) file or carries no eo-edge config.
    """
    from ..artifact.onnx_meta import read_metadata
    from ..fileio import sha256_file

    ckpt = onnx_p = None
    if model.suffix == ".onnx":
        md = read_metadata(model)
        if "config" not in md:
            raise EOEdgeError(f"{model} carries no eo-edge metadata; export it with `eo-edge export`")
        if md.get("precision", "fp32") != "fp32":
            raise EOEdgeError(f"{model.name} is a compiled {md.get('precision')} file: calibrate its FP32 parent "
                              "(the ONNX it was compiled from); the compiled files then carry the same T")
        onnx_p = model
        beside = model.with_suffix(".pt")
        if beside.is_file() and md.get("source_sha256") == sha256_file(beside):
            ckpt = beside
    else:
        ckpt = model
        beside = model.with_suffix(".onnx")
        if beside.is_file() and read_metadata(beside).get("source_sha256") == sha256_file(model):
            onnx_p = beside
    children: list[Path] = []
    if onnx_p is not None:
        sha = sha256_file(onnx_p)
        for c in sorted(onnx_p.parent.glob(f"{onnx_p.stem}.*.onnx")):
            if read_metadata(c).get("parent_sha256") == sha:
                children.append(c)
    return ckpt, onnx_p, children


def _with_decision(cfg_dict: dict, temperature: float, decision: dict) -> dict:
    return {**cfg_dict, "temperature": float(temperature), "decision": dict(decision)}


def run_calibrate(model: Path, *, data: Path | None = None, home: Path | None = None, target_accuracy: float,
                  backend: str = "onnxruntime", batch_size: int = 256, progress: bool = True, dry_run: bool = False,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fit T and the keep threshold on the validation split and write them into ``model``'s family.

    Args:
        model: an eo-edge checkpoint or FP32 ONNX file (opened once).
        data: the model's data (``--data``; default: the model's own prepared dataset, as every
            use case resolves it, :func:`eo_edge.app.data.resolve`), with a val split.
        target_accuracy: percent, the accuracy the kept images must reach on validation.
        dry_run: fit and report, write nothing.

    Returns:
        ``{"schema", "model", "temperature", "decision", "val": {...before/after...}, "updated": [paths]}``.

    Raises:
        EOEdgeError: a missing model, not an eo-edge model, no validation split, bad target or batch
            size, unknown classes (one line, before any file changes).
    """
    import numpy as np

    from ..data.resolve import model_dataset
    from ..data.split import split_indices
    from ..metrics.decision import fit_decision
    from ..metrics.evaluate import check_classes, predict_logits
    from .data import resolve
    from .loading import open_model

    if not model.exists():
        raise EOEdgeError(f"model not found: {model}")
    if model.is_dir():
        raise EOEdgeError(f"{model} is a folder; give a checkpoint or FP32 ONNX file")
    if not 0 < target_accuracy <= 100:
        raise EOEdgeError(f"--target-accuracy must be in (0, 100] percent, got {target_accuracy}")
    if batch_size < 1:
        raise EOEdgeError(f"--batch-size must be at least 1, got {batch_size}")
    ckpt, onnx_p, children = family(model)
    fn, cfg, info = open_model(model, backend=backend)
    if model.suffix != ".onnx" and info.get("kind") not in (None, "eo-edge"):
        raise EOEdgeError(f"{model.name} is not an eo-edge checkpoint ({info.get('kind')}); export or retrain it first")
    data = resolve(data, home, not progress, log, dataset=model_dataset(cfg))
    check_classes(cfg.class_names, data.class_names, model.name)
    val = data.subset(split_indices(data, "val"))
    if len(val) == 0:
        raise EOEdgeError("the data has no validation split to fit the temperature on (prepare it with a val split)")
    log(f"fitting T and the keep threshold on the val split ({len(val)} images) with {model.name}")
    logits = predict_logits(fn, val, cfg.input_size, cfg.mean, cfg.std, batch_size, progress, desc="validation")
    remap = np.array([list(cfg.class_names).index(c) for c in val.class_names])
    y = remap[val.labels]
    fit = fit_decision(logits, y, target_accuracy)
    rec: dict[str, Any] = {"schema": SCHEMA, "model": str(model), "temperature": fit["temperature"],
                           "decision": fit["decision"], "updated": [], "dry_run": dry_run}
    if not dry_run:
        rec["updated"] = [str(p) for p in write_family(ckpt, onnx_p, children, fit["temperature"], fit["decision"])]
    return rec


def write_family(ckpt: Path | None, onnx_p: Path | None, children: list[Path], temperature: float,
                 decision: dict) -> list[Path]:
    """Store T and the decision in every file of a family, re-linking the provenance hashes.

    All new files are written to temporaries beside the originals first; only when every one was
    written are they renamed over the originals (so a failure leaves every file as it was).

    Returns:
        the files replaced.

    Raises:
        EOEdgeError: a file could not be read or written (disk full, ...).
    """
    import onnx

    from ..artifact.onnx_meta import read_metadata, set_metadata
    from ..fileio import staged

    try:
        with staged() as stage:
            parent_sha = None
            if ckpt is not None:
                import io

                import torch

                obj = torch.load(ckpt, map_location="cpu", weights_only=True)
                if not isinstance(obj, dict) or "config" not in obj:
                    raise EOEdgeError(f"{ckpt.name} is not an eo-edge checkpoint (no config inside)")
                obj["config"] = _with_decision(obj["config"], temperature, decision)
                buf = io.BytesIO()
                torch.save(obj, buf)
                parent_sha = stage.write(ckpt, buf.getvalue())
            if onnx_p is not None:
                m = onnx.load(str(onnx_p))
                md = read_metadata(m)
                props: dict[str, Any] = {"eo_edge.config": _with_decision(md["config"], temperature, decision)}
                if parent_sha is not None:
                    props["eo_edge.source_sha256"] = parent_sha
                set_metadata(m, props)
                onnx_sha = stage.write(onnx_p, m.SerializeToString())
                for c in children:
                    cm = onnx.load(str(c))
                    cmd = read_metadata(cm)
                    set_metadata(cm, {"eo_edge.config": _with_decision(cmd["config"], temperature, decision),
                                      "eo_edge.parent_sha256": onnx_sha})
                    stage.write(c, cm.SerializeToString())
            return stage.publish()
    except OSError as e:
        raise EOEdgeError(f"could not write the calibrated files ({e.strerror or e}); nothing was changed") from None
