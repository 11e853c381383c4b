"""Model zoo: the paper's ResNet8/16 students, timm teachers and baselines, checkpoints."""

from ..artifact.config import ModelConfig
from .registry import PRESETS, REGISTRY, create_model, default_config, list_models

__all__ = ["PRESETS", "REGISTRY", "ModelConfig", "create_model", "default_config", "list_models"]
