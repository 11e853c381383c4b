"""Model registry with a per-model config (the timm pattern).

Every model name maps to a builder and a default :class:`ModelConfig` (input size,
mean/std, class names). The config is saved inside every eo-edge checkpoint and in every
exported ONNX file's ``metadata_props``, so later steps need nothing else.

Teachers and baselines come from timm (Wightman, "PyTorch Image Models"), always built with
``pretrained=False``: nothing is downloaded from a hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..artifact.config import ModelConfig
from ..data.dataset import EUROSAT_CLASSES
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..errors import EOEdgeError


def _resnet(blocks: int) -> Callable[..., Any]:
    def build(cfg: ModelConfig):
        from .resnet import ResNetCifar

        return ResNetCifar(blocks, cfg.num_classes, in_chans=cfg.in_chans)

    return build


def _timm(name: str, **kw: Any) -> Callable[..., Any]:
    def build(cfg: ModelConfig):
        try:
            import timm
        except ImportError as e:  # pragma: no cover - timm is a training dependency
            raise EOEdgeError(f"model {cfg.arch} needs timm: pip install 'eo-edge[train]' ({e})") from None
        extra = dict(kw)
        if name.startswith("efficientvit_m"):
            extra["img_size"] = cfg.input_size
        return timm.create_model(name, pretrained=False, num_classes=cfg.num_classes, in_chans=cfg.in_chans, **extra)

    return build


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        build: ``cfg -> torch.nn.Module`` (untrained).
        config: the default :class:`ModelConfig`; its ``role`` is the model's first role.
        roles: what the model is used as, its one display word first (:func:`display_role`):
            ``student``, ``baseline`` (what ``eo-edge bench`` compares students against, as the
            paper does) and/or ``teacher`` (usable as an ``eo-edge distill --teacher``).
        help: one line for ``eo-edge models`` and ``--help``.
    """

    build: Callable[[ModelConfig], Any]
    config: ModelConfig
    roles: tuple[str, ...]
    help: str


def _entry(name: str, build: Callable[[ModelConfig], Any], roles: tuple[str, ...], help: str) -> ModelEntry:
    return ModelEntry(build, ModelConfig(name, role=roles[0]), roles, help)


#: name -> :class:`ModelEntry`
REGISTRY: dict[str, ModelEntry] = {
    "resnet8": _entry("resnet8", _resnet(1), ("student",), "CIFAR-style ResNet8 (16/32/64 channels), the paper's student"),
    "resnet16": _entry("resnet16", _resnet(2), ("student",), "CIFAR-style ResNet16, two blocks per stage"),
    "efficientvit_m2": _entry("efficientvit_m2", _timm("efficientvit_m2"), ("teacher",),
                              "EfficientViT-M2 (timm), the paper's first teacher"),
    "mobilevitv2_100": _entry("mobilevitv2_100", _timm("mobilevitv2_100"), ("baseline", "teacher"),
                              "MobileViTV2-1.0 (timm), the paper's comparison baseline (also its second teacher)"),
    "mobilevit_xxs": _entry("mobilevit_xxs", _timm("mobilevit_xxs"), ("baseline",), "MobileViT-XXS (timm)"),
    "mobilevit_s": _entry("mobilevit_s", _timm("mobilevit_s"), ("baseline",), "MobileViT-S (timm)"),
}


def is_baseline(arch: str) -> bool:
    """True when ``arch`` is registered with the ``baseline`` role (bench compares students to it)."""
    e = REGISTRY.get(arch)
    return e is not None and "baseline" in e.roles


def display_role(arch: str | None, recorded: str | None = None) -> str:
    """The one word bench, report, plots and ``eo-edge models`` show for a model's role.

    The rule has one home, this registry: a registered ``arch`` gets its first role
    (``resnet8`` -> ``"student"``, ``mobilevitv2_100`` -> ``"baseline"``, ``efficientvit_m2`` ->
    ``"teacher"``), whatever role an older checkpoint or ONNX file recorded in its config (the
    shipped MobileViTV2 files say ``"teacher"``; they are not rewritten). An unregistered arch
    keeps ``recorded`` (default ``"student"``). Being a teacher in ``eo-edge distill`` is a use
    of a checkpoint, not a role word: any checkpoint can be passed with ``--teacher``.

    Args:
        arch: registry name (``ModelConfig.arch``, a bench artifact's ``model``), or ``None``.
        recorded: the role stored in the file or bench JSON, if any.
    """
    e = REGISTRY.get(arch) if arch else None
    return e.roles[0] if e is not None else (recorded or "student")

#: Presets for bare state_dicts that carry no config.
PRESETS: dict[str, dict[str, Any]] = {
    # The authors' released files: 224 px (64 px chips resized up), ImageNet mean/std,
    # alphabetical (ImageFolder) class order.
    "sentry": {"input_size": 224, "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "class_names": EUROSAT_CLASSES},
    "eurosat64": {"input_size": 64, "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "class_names": EUROSAT_CLASSES},
}


def list_models() -> list[str]:
    """Registered model names."""
    return list(REGISTRY)


def default_config(arch: str, **overrides: Any) -> ModelConfig:
    """The default :class:`ModelConfig` of ``arch`` with ``overrides`` applied.

    Raises:
        EOEdgeError: unknown architecture.
    """
    if arch not in REGISTRY:
        raise EOEdgeError(f"unknown model {arch!r}; known: {', '.join(REGISTRY)}")
    cfg = REGISTRY[arch].config
    overrides = {k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items() if v is not None}
    return cfg.with_(**overrides) if overrides else cfg


def create_model(arch_or_cfg: str | ModelConfig, **overrides: Any):
    """Build an untrained ``torch.nn.Module`` for a registered model.

    Returns:
        ``(model, cfg)``. The model maps float32 (N, 3, S, S) to logits (N, num_classes),
        S = ``cfg.input_size``.

    Raises:
        EOEdgeError: unknown architecture.
    """
    cfg = arch_or_cfg if isinstance(arch_or_cfg, ModelConfig) else default_config(arch_or_cfg, **overrides)
    if cfg.arch not in REGISTRY:
        raise EOEdgeError(f"unknown model {cfg.arch!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[cfg.arch].build(cfg), cfg
