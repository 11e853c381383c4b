"""Preprocessing shared by every runtime (PyTorch, ONNX Runtime, TensorRT).

Deterministic evaluation preprocessing, in NumPy so that the deploy side needs no torch:
uint8 RGB (N, H, W, 3) -> float32 in [0, 1] -> bilinear resize to the model's input size
(half-pixel centres, i.e. ``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False, antialias=False)``) -> normalise with the model's mean/std -> NCHW.

Training augmentation for overhead imagery (no canonical "up"): random horizontal and
vertical flips and 90-degree rotations, applied on batches in torch (see ``eo_edge.train``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = n_in / n_out
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5
    src = np.clip(src, 0, None)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0).astype(np.float32)
    return i0, i1, w1


def resize_bilinear(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of float images, matching PyTorch's ``align_corners=False``.

    Args:
        x: float32 (N, H, W, C).
        size: output height = width, pixels.

    Returns:
        float32 (N, size, size, C).
    """
    n, h, w, c = x.shape
    if h == size and w == size:
        return x
    y0, y1, wy = _axis_weights(h, size)
    x0, x1, wx = _axis_weights(w, size)
    top = x[:, y0] * (1 - wy)[None, :, None, None] + x[:, y1] * wy[None, :, None, None]
    out = top[:, :, x0] * (1 - wx)[None, None, :, None] + top[:, :, x1] * wx[None, None, :, None]
    return out.astype(np.float32, copy=False)


def value_scale(dtype) -> float:
    """The factor raw pixel values are multiplied by before mean/std normalisation: 1/255 for
    uint8 images (RGB in [0, 1], where ImageNet/EuroSAT means apply), 1 for uint16/float data
    (Sentinel-2 digital numbers: its per-band mean/std are in those units)."""
    return 1.0 / 255.0 if np.dtype(dtype) == np.uint8 else 1.0


def preprocess(images: np.ndarray, input_size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Deterministic evaluation preprocessing.

    Args:
        images: (N, H, W, C): uint8 RGB, or uint16/float32 bands (multispectral).
        input_size: the model's input size in pixels (e.g. 64, or 224 for the authors' files).
        mean, std: per-channel normalisation (length C) of ``images x value_scale(dtype)``.

    Returns:
        float32 (N, C, input_size, input_size), C-contiguous.

    Raises:
        ValueError: the image channels and ``mean`` differ in length.
    """
    if images.shape[-1] != len(mean):
        raise ValueError(f"{images.shape[-1]}-channel images for a model of {len(mean)} input channels")
    x = images.astype(np.float32) * np.float32(value_scale(images.dtype))
    x = resize_bilinear(x, input_size)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
