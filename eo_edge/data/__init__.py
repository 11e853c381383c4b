"""EuroSAT data: decoding and caching, the committed split, preprocessing, download."""

from .dataset import EUROSAT_CLASSES, PreparedData, load_prepared
from .prepare import prepare
from .split import calibration_indices, split_indices
from .transforms import IMAGENET_MEAN, IMAGENET_STD, preprocess

__all__ = ["EUROSAT_CLASSES", "IMAGENET_MEAN", "IMAGENET_STD", "PreparedData", "calibration_indices",
           "load_prepared", "prepare", "preprocess", "split_indices"]
