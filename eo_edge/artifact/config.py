"""The per-model config every checkpoint and ONNX artifact carries (the timm pattern): input size, mean/std, class names, temperature, decision."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ..data.dataset import EUROSAT_CLASSES
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..errors import EOEdgeError


@dataclass(frozen=True)
class ModelConfig:
    """What a model needs to be run correctly.

    Attributes:
        arch: registry name, e.g. ``"resnet8"``.
        input_size: square input size in pixels (images are resized bilinearly to it).
        mean, std: per-channel normalisation of [0, 1] RGB inputs.
        class_names: output order of the logits.
        role: ``"student"``, ``"teacher"`` or ``"baseline"``: the registry's role of ``arch`` when the
            file was made; what reports show is :func:`display_role` (the registry's current word).
        temperature: post-hoc temperature T of the softmax (Guo et al., ICML 2017, section 4.2):
            probabilities are ``softmax(logits / T)``; 1.0 = not calibrated. Fitted on the
            validation split by ``eo-edge calibrate``; every backend applies it
            (:meth:`eo_edge.backends.base.Runner.probabilities`).
        decision: the onboard keep/abstain rule fitted with T (``eo-edge calibrate``):
            ``{"threshold", "target_accuracy_pct", "val_coverage_pct", "val_accuracy_pct", ...}``;
            empty when not fitted.
    """

    arch: str
    input_size: int = 64
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    class_names: tuple[str, ...] = EUROSAT_CLASSES
    role: str = "student"
    extra: dict[str, Any] = field(default_factory=dict)
    temperature: float = 1.0
    decision: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_chans(self) -> int:
        """Input channels: one per band, as many as normalisation means (RGB: 3)."""
        return len(self.mean)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples as lists)."""
        d = asdict(self)
        d["mean"], d["std"], d["class_names"] = list(self.mean), list(self.std), list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "the model") -> "ModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys are ignored.

        Raises:
            EOEdgeError: ``d`` is not a valid config (a corrupt ``eo_edge.config`` in ONNX
                metadata or a checkpoint): one line naming ``source``.
        """
        try:
            cfg = cls(arch=str(d["arch"]), input_size=int(d.get("input_size", 64)),
                      mean=tuple(float(v) for v in d.get("mean", IMAGENET_MEAN)),
                      std=tuple(float(v) for v in d.get("std", IMAGENET_STD)),
                      class_names=tuple(str(c) for c in d.get("class_names", EUROSAT_CLASSES)),
                      role=str(d.get("role", "student")), extra=dict(d.get("extra", {})),
                      temperature=float(d.get("temperature", 1.0)), decision=dict(d.get("decision", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise EOEdgeError(f"{source} carries a corrupt eo-edge config ({type(e).__name__}: {e}); "
                              "re-export it with `eo-edge export`") from None
        if not (cfg.temperature > 0 and np.isfinite(cfg.temperature)):
            raise EOEdgeError(f"{source} carries a corrupt eo-edge config (temperature {cfg.temperature}; "
                              "must be > 0); re-run `eo-edge calibrate` on it")
        if cfg.input_size < 1 or not cfg.mean or len(cfg.mean) != len(cfg.std) or len(cfg.class_names) < 2:
            raise EOEdgeError(f"{source} carries a corrupt eo-edge config (input_size {cfg.input_size}, "
                              f"{len(cfg.mean)} means, {len(cfg.std)} stds, {len(cfg.class_names)} classes); "
                              "re-export it with `eo-edge export`")
        return cfg

    def with_(self, **kw: Any) -> "ModelConfig":
        """A copy with some fields replaced."""
        return replace(self, **kw)
