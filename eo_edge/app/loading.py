"""Open anything eo-edge can evaluate - a checkpoint, an ONNX file, a compiled artifact - as a
NumPy logit function plus its :class:`~eo_edge.artifact.config.ModelConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import EOEdgeError
from ..fileio import load_onnx

CHECKPOINT_EXTS = {".pt", ".pth", ".ckpt"}


def open_model(path: Path, *, arch: str | None = None, preset: str | None = None, img_size: int | None = None,
               backend: str = "onnxruntime", threads: int | None = None):
    """Open ``path`` for evaluation.

    Returns:
        ``(fn, cfg, info)``: ``fn(x float32 (N,3,S,S)) -> logits float32 (N,C)``, the model
        config, and an info dict (``kind``, ``sha256``, ...).

    Raises:
        EOEdgeError: unknown file type, unreadable file, backend unavailable.
    """
    path = Path(path)
    if not path.exists():
        raise EOEdgeError(f"model not found: {path}")
    if path.is_dir():
        raise EOEdgeError(f"{path} is a folder; give a checkpoint, ONNX or engine file")
    if path.suffix in CHECKPOINT_EXTS:
        from ..metrics.evaluate import torch_logit_fn
        from ..models.checkpoint import load_checkpoint

        model, cfg, info = load_checkpoint(path, arch=arch, preset=preset, img_size=img_size)
        return torch_logit_fn(model), cfg, info
    from ..artifact.config import ModelConfig
    from ..backends import get_backend

    if path.suffix == ".onnx":  # one image input, one logits output (eo_edge.artifact.onnx_meta.check_io)

        from ..artifact.onnx_meta import check_io, metadata_channels, proto_io

        proto = load_onnx(path)
        check_io(*proto_io(proto), path.name, metadata_channels(proto))
    runner = get_backend(backend).load(path, threads=threads)
    md: dict[str, Any] = runner.metadata
    if "config" not in md:
        raise EOEdgeError(f"{path} carries no eo-edge metadata (export it with `eo-edge export`)")
    cfg = ModelConfig.from_dict(md["config"], path.name)
    if img_size and img_size != cfg.input_size:
        raise EOEdgeError(f"{path.name} was exported for {cfg.input_size} px; re-export for --img-size {img_size}")
    return runner.infer, cfg, {"kind": md.get("precision", "onnx"), "sha256": None, "metadata": md}
