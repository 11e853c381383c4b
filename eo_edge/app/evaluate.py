"""``eo-edge eval`` as a use case: any checkpoint, ONNX file or compiled artifact on a split of
its own data, with its own preprocessing and calibration."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..defaults import check_image_size
from ..errors import EOEdgeError


def evaluate_model(model_path: Path, *, data: Path | None = None, split: str = "test", img_size: int | None = None,
                   preset: str | None = None, arch: str | None = None, backend: str = "onnxruntime",
                   batch_size: int = 256, reliability: Path | None = None, json_out: Path | None = None,
                   home: Path | None = None, quiet: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Top-1, macro P/R/F1, per-class accuracy, confusion matrix and confidence quality (ECE, NLL,
    Brier) of a model on ``split`` (:func:`eo_edge.metrics.evaluate.evaluate`); optionally the
    reliability diagram as PNG at ``reliability``. Every path is checked before any work
    (``json_out`` only for not being an input; the caller writes it).

    Returns:
        The evaluation report plus ``model``, ``split``, ``input_size``, ``arch``, ``kind``, ``sha256``.

    Raises:
        EOEdgeError: a missing model, bad sizes, an output that is an input, classes that differ (one line).
    """
    from ..data.resolve import model_dataset
    from ..data.split import split_indices, split_source
    from ..fileio import check_not_input, check_out_dir
    from ..metrics.evaluate import check_classes, evaluate
    from .data import resolve
    from .loading import open_model

    if not model_path.exists():
        raise EOEdgeError(f"model not found: {model_path}")
    if model_path.is_dir():
        raise EOEdgeError(f"{model_path} is a folder; give a checkpoint, ONNX or engine file")
    check_image_size(img_size)
    if batch_size < 1:
        raise EOEdgeError(f"--batch-size must be at least 1, got {batch_size}")
    if json_out is not None:
        check_not_input(json_out, model_path, what="--json")
    if reliability is not None:
        if reliability.suffix.lower() != ".png" or reliability.is_dir():
            raise EOEdgeError(f"--reliability {reliability}: give a .png file path")
        check_out_dir(reliability)
        check_not_input(reliability, model_path, what="--reliability")
    fn, cfg, info = open_model(model_path, arch=arch, preset=preset, img_size=img_size, backend=backend)
    ds = resolve(data, home, quiet, log, dataset=model_dataset(cfg))
    check_classes(cfg.class_names, ds.class_names, model_path.name)
    sub = ds.subset(split_indices(ds, split))
    log(f"data: {split} split of {ds.root or data} ({len(sub)} images; {split_source(ds)})")
    rep = evaluate(fn, sub, cfg.input_size, cfg.mean, cfg.std, cfg.class_names, batch_size=batch_size, progress=not quiet,
                   temperature=cfg.temperature, decision=cfg.decision)
    rep.update({"model": str(model_path), "split": split, "input_size": cfg.input_size, "arch": cfg.arch,
                "kind": info.get("kind"), "sha256": info.get("sha256")})
    if reliability is not None:
        from ..metrics.stats import plot_reliability

        plot_reliability(rep["calibration"], reliability, title=f"{model_path.name} on {split}\nECE "
                         f"{rep['ece_pct']:.2f} % (15 bins, T = {cfg.temperature:.3f})")
        log(f"reliability diagram: {reliability}")
    return rep
