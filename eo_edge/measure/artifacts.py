"""What bench measures: an artifact (file, form, backend, config) and its name, the bench config file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EOEdgeError


@dataclass
class Artifact:
    """One thing to measure: a name (``<model>-<precision>``), its file and metadata."""

    name: str
    path: Path
    model: str
    role: str
    precision: str
    tag: str = ""  # the format tag that ends the name (eo_edge.artifact.forms: fp32, int8-u8, ...)
    source: str = ""
    runner: Any = None
    cfg: Any = None
    engine: Path | None = None  # the TensorRT engine measured (backend tensorrt)
    backend: str = ""  # the runtime that measures it ("" = BenchOptions.backend)
    result: dict = field(default_factory=dict)
    compiled_by: str = "input"  # "input" (given or found beside it) or "bench" (compiled into the cache here)
    given: bool = True  # named by the user (command line or --config), not the built-in default set
    logits: Any = None  # float32 (N, C) on the bench images, kept for the gate and paired tests
    labels: Any = None  # int64 (N,)


def load_config(path: Path) -> dict:
    """Read a bench config (JSON): ``{"models": [paths], "precisions": [...], "backends": [...],
    "batch_sizes": [...], "protocol": {"warmup", "runs", "rounds", "throughput_batch", "threads"}}``;
    relative paths are relative to the file. Every key is optional; what each one decides (and
    that the command line wins) is :func:`eo_edge.app.bench.plan`'s.

    Raises:
        EOEdgeError: missing or malformed file.
    """
    from ..fileio import read_json

    cfg = read_json(path, "bench config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("models", []), list):
        raise EOEdgeError(f"bench config {path}: expected an object with a 'models' list")
    from ..artifact.forms import check_backend, check_precisions

    cfg["models"] = [str((path.parent / m).resolve()) if not Path(m).is_absolute() else m for m in cfg.get("models", [])]
    if "precisions" in cfg:  # validated here, before any artifact is built (an 'int4' entry used to build INT8)
        cfg["precisions"] = check_precisions(cfg["precisions"] if isinstance(cfg["precisions"], list) else [cfg["precisions"]],
                                             f" in bench config {path.name}")
    for b in cfg.get("backends") or []:
        if b not in ("all", "auto"):  # all: every runtime available here
            check_backend(b)
    return cfg


def _role(cfg) -> str:
    """The role an artifact plays in a bench: the registry's word for its arch
    (:func:`eo_edge.models.registry.display_role`: MobileViTV2 is the ``baseline``, even where
    its file records ``teacher``), else the role its file records."""
    from ..models.registry import display_role

    return display_role(cfg.arch, cfg.role)


def model_label(stem: str, cfg) -> str:
    """The model part of an artifact's name: the arch, plus what the file name adds to it.

    ``resnet8_eurosat64`` -> ``resnet8``; ``resnet16_kd_eurosat64`` -> ``resnet16_kd`` (the
    ``_<dataset><input px>`` tail is dropped; any lower-case word for the dataset where the file
    does not record it); a stem that does not start with the arch (a user's
    ``model.onnx``) gives the arch alone. Depends on the file only, so one file has one name in
    every run, whatever else is benched beside it.

    Args:
        stem: the input file's name without its extensions (``resnet8_eurosat64`` for
            ``resnet8_eurosat64.int8-minmax.onnx``).
        cfg: its :class:`eo_edge.artifact.config.ModelConfig`.
    """
    base = stem.split(".")[0]
    if not base.startswith(cfg.arch + "_"):
        return cfg.arch
    rest = base[len(cfg.arch):]
    dataset = re.escape(str(cfg.extra.get("dataset") or "")) or "[a-z]+"  # files of older exports lack it
    return cfg.arch + re.sub(rf"_{dataset}{cfg.input_size}$", "", rest)
