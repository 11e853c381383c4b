"""Checkpoint save/load: ours (config inside) and bare state_dicts (the authors' files).

An eo-edge checkpoint is a plain dict that ``torch.load(..., weights_only=True)`` can read:
``{"format": "eo-edge-ckpt/1", "config": ModelConfig.to_dict(), "state_dict": ...,
"meta": {...}}``. Bare state_dicts (ltdung/SnT-SENTRY's ``resnet8_dual.pth``) are
recognised by their keys; what they lack (input size, mean/std) comes from a preset.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..artifact.config import ModelConfig
from ..errors import EOEdgeError
from ..fileio import atomic_path, sha256_file
from ..schemas import CHECKPOINT
from .registry import PRESETS, create_model, default_config

FORMAT = CHECKPOINT


def save_checkpoint(path: str | os.PathLike, model, cfg: ModelConfig, meta: dict[str, Any] | None = None,
                    extra: dict[str, Any] | None = None) -> Path:
    """Atomically save ``model``'s weights with its config.

    Args:
        path: output ``.pt`` file (its folder must exist).
        model: the ``torch.nn.Module`` (weights saved on CPU).
        cfg: its :class:`ModelConfig`.
        meta: JSON-able provenance (command, epochs, metrics, ...).
        extra: further entries (optimizer state for resume, ...), tensors allowed.

    Raises:
        EOEdgeError: output folder missing or disk full.
    """
    import torch

    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    obj = {"format": FORMAT, "config": cfg.to_dict(), "state_dict": sd, "meta": meta or {}}
    if extra:
        obj.update(extra)
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)
    return Path(path)


def ship_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, weights_dtype: str = "float16") -> dict[str, Any]:
    """Write a shipping copy of an eo-edge checkpoint: config, weights and provenance only
    (no optimizer or resume state), floating-point weights stored as ``weights_dtype``.

    Used for teachers, whose only job is to produce logits for distillation: float16 storage
    halves the file (EfficientViT-M2: 16.2 -> 8.1 MB) and :func:`load_checkpoint` loads it into
    the float32 model unchanged (``load_state_dict`` casts). Integer buffers (BatchNorm's
    ``num_batches_tracked``) are kept as they are. The copy's ``meta`` records
    ``weights_dtype`` and the source file's sha256; measure the shipped file itself
    (``eo-edge eval``), not the run it came from.

    Args:
        src: an eo-edge checkpoint (``eo-edge-ckpt/1``), e.g. a run's ``best.pt``.
        dst: output ``.pt`` (written atomically; must not be ``src``).
        weights_dtype: ``"float16"`` or ``"float32"``.

    Returns:
        ``{"path", "weights_dtype", "source_sha256", "bytes", "max_abs_rounding"}``;
        ``max_abs_rounding`` is the largest absolute change of any weight (float32 units).

    Raises:
        EOEdgeError: not an eo-edge checkpoint, same path, unknown dtype, or a weight that
            overflows float16 (|w| > 65504).
    """
    import torch

    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise EOEdgeError(f"ship_checkpoint: output {dst} is the input; write a new file")
    dtypes = {"float16": torch.float16, "float32": torch.float32}
    if weights_dtype not in dtypes:
        raise EOEdgeError(f"weights dtype {weights_dtype!r}: expected one of {', '.join(dtypes)}")
    obj = _torch_load(src)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise EOEdgeError(f"{src} is not an eo-edge checkpoint ({FORMAT}); only those can be shipped")
    sd, worst = {}, 0.0
    for k, v in obj["state_dict"].items():
        if v.is_floating_point():
            w = v.to(dtypes[weights_dtype])
            if not bool(torch.isfinite(w).all()):
                raise EOEdgeError(f"{src.name}: weight {k} overflows {weights_dtype} (max |w| "
                                  f"{float(v.abs().max()):.3g}); ship it as float32")
            worst = max(worst, float((w.float() - v.float()).abs().max()) if v.numel() else 0.0)
            v = w
        sd[k] = v.clone()
    meta = {**obj.get("meta", {}), "weights_dtype": weights_dtype, "source_sha256": sha256_file(src)}
    with atomic_path(dst, suffix=".pt") as tmp:
        torch.save({"format": FORMAT, "config": obj["config"], "state_dict": sd, "meta": meta}, tmp)
    return {"path": str(dst), "weights_dtype": weights_dtype, "source_sha256": meta["source_sha256"],
            "bytes": dst.stat().st_size, "max_abs_rounding": worst}


def untrained_batchnorms(state_dict: dict[str, Any]) -> list[str]:
    """Names of BatchNorm layers whose running statistics were never updated.

    A layer counts as untrained when ``num_batches_tracked == 0`` and its running mean is
    all 0 and running variance all 1 (PyTorch's initial values).
    """
    bad = []
    for k, v in state_dict.items():
        if k.endswith("num_batches_tracked") and int(v) == 0:
            base = k[: -len("num_batches_tracked")]
            rm, rv = state_dict.get(base + "running_mean"), state_dict.get(base + "running_var")
            if rm is not None and rv is not None and float(rm.abs().max()) == 0.0 and bool((rv == 1).all()):
                bad.append(base.rstrip("."))
    return bad


def infer_arch(state_dict: dict[str, Any]) -> str | None:
    """Guess the registry name of a bare ResNet8/ResNet16 state_dict from its keys."""
    if "conv.weight" in state_dict and "fc.weight" in state_dict:
        blocks = {k.split(".")[1] for k in state_dict if k.startswith("layer1.")}
        return {1: "resnet8", 2: "resnet16"}.get(len(blocks))
    return None


def _torch_load(path: Path) -> Any:
    import pickle
    import warnings
    import zipfile

    import torch

    head = b""
    if path.is_file():
        with path.open("rb") as fh:  # the first bytes only; torch.load reads the file itself
            head = fh.read(64)
    if path.suffix.lower() == ".onnx" or (b"onnx" in head.lower() and not head.startswith(b"PK")):
        raise EOEdgeError(f"{path} is an ONNX file, not a PyTorch checkpoint (.pt); give the checkpoint it was "
                          "exported from")
    try:
        with warnings.catch_warnings():  # a plain pickle: torch warns about its protocol, then refuses it below
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        text = str(e)
        glob = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if glob:  # a pickle that would run code or build arbitrary objects: never loaded
            why = f"it holds a Python object ({glob.group(1)}) a weights-only load refuses; eo-edge never loads those"
        elif "Weights only load failed" in text or isinstance(e, (EOFError, zipfile.BadZipFile)):
            why = "not a readable PyTorch checkpoint (corrupt, truncated, or another file type)"
        else:
            why = (text.strip().splitlines() or [type(e).__name__])[0][:200]
        raise EOEdgeError(f"cannot read checkpoint {path}: {why}") from None


def load_checkpoint(path: str | os.PathLike, *, arch: str | None = None, preset: str | None = None,
                    img_size: int | None = None, allow_untrained: bool = False):
    """Load a checkpoint (ours or a bare state_dict) into a model on the CPU, in eval mode.

    Args:
        path: ``.pt``/``.pth`` file.
        arch: registry name, for a bare state_dict whose architecture can't be inferred.
        preset: for a bare state_dict: ``"sentry"`` (224 px, ImageNet mean/std; the default
            for the authors' files) or ``"eurosat64"``.
        img_size: overrides the input size (pixels).
        allow_untrained: load even if BatchNorm statistics were never updated.

    Returns:
        ``(model, cfg, info)`` where ``info`` has ``meta``, ``sha256``, ``kind``
        ("eo-edge" or "state_dict").

    Raises:
        EOEdgeError: file missing or unreadable; untrained BatchNorm statistics; weights that
            do not match the architecture.
    """
    p = Path(path)
    if p.is_dir():
        raise EOEdgeError(f"{p} is a folder; give a checkpoint file (.pt/.pth)")
    if not p.is_file():
        raise EOEdgeError(f"checkpoint not found: {p}")
    obj = _torch_load(p)
    if not isinstance(obj, dict):
        raise EOEdgeError(f"{p} is not a checkpoint (a {type(obj).__name__}, expected a dict of tensors)")
    if obj.get("format") == FORMAT:
        cfg = ModelConfig.from_dict(obj["config"], p.name)
        if arch and arch != cfg.arch:  # --arch is for bare state_dicts; never silently ignored
            raise EOEdgeError(f"--arch {arch}: {p.name} is an eo-edge checkpoint of {cfg.arch}; drop --arch")
        if img_size:
            cfg = cfg.with_(input_size=int(img_size))
        sd, meta, kind = obj["state_dict"], obj.get("meta", {}), "eo-edge"
    else:
        sd = obj.get("state_dict", obj) if isinstance(obj.get("state_dict"), dict) else obj
        name = arch or infer_arch(sd)
        if name is None:
            raise EOEdgeError(f"cannot tell the architecture of {p}; pass --arch (one of the registry names)")
        pre = dict(PRESETS[preset or "sentry"]) if (preset or "sentry") in PRESETS else None
        if pre is None:
            raise EOEdgeError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        if img_size:
            pre["input_size"] = int(img_size)
        cfg, meta, kind = default_config(name, **pre), {"preset": preset or "sentry"}, "state_dict"
    bad = untrained_batchnorms(sd)
    if bad and not allow_untrained:
        raise EOEdgeError(
            f"refusing {p.name}: it is not a trained model - {len(bad)} BatchNorm layers never updated their "
            f"statistics (num_batches_tracked == 0, running mean 0 / var 1, e.g. {bad[0]})")
    model, cfg = create_model(cfg)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        first = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = first[1] if len(first) > 1 else first[0]
        raise EOEdgeError(f"weights in {p.name} do not match architecture {cfg.arch}: {detail[:200]}") from None
    model.eval()
    return model, cfg, {"meta": meta, "sha256": sha256_file(p), "kind": kind, "path": str(p)}
