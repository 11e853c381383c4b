"""Common image corruptions (ImageNet-C protocol) for EuroSAT robustness curves.

Follows Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations", ICLR 2019, and the parameters of their reference code
(``hendrycks/robustness``, ``ImageNet-C/create_c/make_imagenet_c.py``), five severities each:

* ``gaussian_noise``: ``x + N(0, sigma^2)`` on [0, 1] images, sigma = 0.08, 0.12, 0.18,
  0.26, 0.38. A per-pixel operation: no change for the image size.
* ``motion_blur``: ImageMagick ``-motion-blur radius x sigma`` at a random angle in
  [-45, 45) degrees per image, (radius, sigma) = (10, 3), (15, 5), (15, 8), (15, 12),
  (20, 15) **at 224 px**. The kernel is ImageMagick's (as re-implemented in numpy by
  ``bethgelab/imagecorruptions``): ``2 * radius + 1`` taps on a one-sided line, tap ``i``
  at distance ``i`` px with weight ``exp(-i^2 / (2 sigma^2))`` (normalised), i.e.
  ``out(p) = sum_i w_i x(p + i u)``, ``u = (sin a, cos a)`` in (row, col). **Scaling to the
  image size**: the whole kernel is shrunk by ``s = min(H, W) / 224`` (``2/7`` for 64 px
  EuroSAT chips): same taps and weights, tap ``i`` at distance ``i * s`` px (equivalently
  radius ``r s`` and sigma ``sigma s`` in px), sampled bilinearly, so the streak covers
  the same fraction of the image as on ImageNet-C (severity 5: ~11.4 of 64 px vs 40 of
  224 px). Borders are edge-replicated, as in the reference port.
* ``defocus_blur`` (optional): disk kernel of radius 3, 4, 6, 8, 10 px at 224 px, scaled
  by ``s`` (0.86 ... 2.86 px at 64 px); the disk is anti-aliased by exact area coverage
  (16 x 16 supersampling per pixel) instead of the reference's 3 x 3 Gaussian "alias blur"
  (sigma 0.1/0.5 px, which scaled by ``s`` would be a no-op). Borders reflected (OpenCV's
  ``filter2D`` default, as in the reference).
* ``jpeg_compression`` (optional): Pillow JPEG at quality 25, 18, 15, 10, 7 (no scaling:
  an 8 x 8-block codec; note a block covers 12 x more of a 64 px chip than of a 224 px image).
* ``brightness`` (optional): HSV value ``v + c``, clipped to [0, 1], c = 0.1 ... 0.5 (per pixel,
  no scaling).

Differences from the reference code, all deliberate: output is rounded to the nearest
integer (the reference truncates with ``np.uint8``) and not re-saved as JPEG quality 85 (the
ImageNet-C distribution format); random numbers come from a per-image
``numpy.random.Generator`` seeded with ``(seed, index)``, so the result is deterministic,
independent of how a set is split into chunks (pass ``offset``), and **the same noise
pattern / blur angle is used at every severity** (severities differ in strength only).
"""

from __future__ import annotations

import io
import math
from typing import Any, Iterable

import numpy as np

from ..errors import EOEdgeError

#: corruption names accepted by :func:`corrupt`
CORRUPTIONS = ("gaussian_noise", "motion_blur", "defocus_blur", "jpeg_compression", "brightness")
#: the default set used by ``eo-edge bench --robustness``
DEFAULT_CORRUPTIONS = ("gaussian_noise", "motion_blur")
SEVERITIES = (1, 2, 3, 4, 5)
#: image size (px) the ImageNet-C blur parameters are defined at
REFERENCE_SIZE = 224

GAUSSIAN_NOISE_SIGMA = (0.08, 0.12, 0.18, 0.26, 0.38)             # on [0, 1] images
MOTION_BLUR_RADIUS_SIGMA = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))  # px at 224 px
MOTION_BLUR_ANGLE_DEG = (-45.0, 45.0)
DEFOCUS_RADIUS = (3, 4, 6, 8, 10)                                  # px at 224 px
JPEG_QUALITY = (25, 18, 15, 10, 7)
BRIGHTNESS_SHIFT = (0.1, 0.2, 0.3, 0.4, 0.5)                       # added to HSV value in [0, 1]

_CHUNK = 256


def parse_severities(spec: str | int | Iterable[int]) -> list[int]:
    """Parse ``"1-5"``, ``"1,3,5"``, ``"2"``, ``"1-2,5"`` (or an int / list) into sorted unique severities.

    Raises:
        EOEdgeError: empty spec, not an integer, a reversed range, or a value outside 1..5.
    """
    if isinstance(spec, bool):
        raise EOEdgeError(f"bad severity {spec!r}; use e.g. 1-5 or 1,3,5 (values 1..5)")
    if isinstance(spec, int):
        items: list[Any] = [spec]
    elif isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",")]
        if not spec.strip() or any(not p for p in parts):
            raise EOEdgeError(f"bad severities {spec!r}; use e.g. 1-5 or 1,3,5 (values 1..5)")
        items = []
        for p in parts:
            if "-" in p[1:]:
                a, b = p.split("-", 1) if not p.startswith("-") else (p, "")
                try:
                    lo, hi = int(a), int(b)
                except ValueError:
                    raise EOEdgeError(f"bad severity range {p!r}; use e.g. 1-5 (values 1..5)") from None
                if lo > hi:
                    raise EOEdgeError(f"bad severity range {p!r}: start > end")
                items.extend(range(lo, hi + 1))
            else:
                try:
                    items.append(int(p))
                except ValueError:
                    raise EOEdgeError(f"bad severity {p!r}; use e.g. 1-5 or 1,3,5 (values 1..5)") from None
    else:
        items = list(spec)
        if not items:
            raise EOEdgeError("no severity given; use e.g. 1-5 or 1,3,5 (values 1..5)")
    out = set()
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= int(v) <= 5:
            raise EOEdgeError(f"severity {v!r} out of range; severities are 1..5")
        out.add(int(v))
    return sorted(out)


def parse_corruptions(spec: str | Iterable[str]) -> list[str]:
    """Parse ``"gaussian_noise,motion_blur"`` or ``"all"`` into a list of names (order kept, no duplicates).

    Raises:
        EOEdgeError: an unknown or empty name.
    """
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    if names == ["all"]:
        return list(CORRUPTIONS)
    out: list[str] = []
    for n in names:
        _check_name(n)
        if n not in out:
            out.append(n)
    if not out:
        raise EOEdgeError(f"no corruption given; choose from {', '.join(CORRUPTIONS)} or all")
    return out


def _check_name(name: str) -> None:
    if name not in CORRUPTIONS:
        raise EOEdgeError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")


def _check_severity(severity: Any) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= int(severity) <= 5:
        raise EOEdgeError(f"severity {severity!r} out of range; severities are 1..5")
    return int(severity)


def scale_for(image_size: int) -> float:
    """Blur-geometry scale factor ``image_size / 224`` (``2/7`` at 64 px)."""
    return image_size / REFERENCE_SIZE


def corruption_params(name: str, severity: int, image_size: int = 64) -> dict[str, Any]:
    """The parameters :func:`corrupt` uses, for the record (units in the keys).

    Example: ``corruption_params("motion_blur", 5, 64)`` ->
    ``{"name": "motion_blur", "severity": 5, "radius_px_at_224": 20, "sigma_px_at_224": 15,
    "scale": 0.2857, "taps": 41, "streak_px": 11.43, "sigma_px": 4.29, "angle_deg": [-45, 45]}``.
    """
    _check_name(name)
    k = _check_severity(severity) - 1
    s = scale_for(image_size)
    d: dict[str, Any] = {"name": name, "severity": k + 1, "image_size": image_size}
    if name == "gaussian_noise":
        d["sigma_01"] = GAUSSIAN_NOISE_SIGMA[k]
    elif name == "motion_blur":
        r, sg = MOTION_BLUR_RADIUS_SIGMA[k]
        d.update(radius_px_at_224=r, sigma_px_at_224=sg, scale=round(s, 4), taps=2 * r + 1,
                 streak_px=round(2 * r * s, 2), sigma_px=round(sg * s, 2), angle_deg=list(MOTION_BLUR_ANGLE_DEG))
    elif name == "defocus_blur":
        d.update(radius_px_at_224=DEFOCUS_RADIUS[k], scale=round(s, 4), radius_px=round(DEFOCUS_RADIUS[k] * s, 3))
    elif name == "jpeg_compression":
        d["quality"] = JPEG_QUALITY[k]
    elif name == "brightness":
        d["value_shift_01"] = BRIGHTNESS_SHIFT[k]
    return d


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def motion_blur_kernel(radius: int, sigma: float, angle_deg: float, scale: float = 1.0) -> np.ndarray:
    """Correlation kernel ``K`` ((2R+1, 2R+1), float64, sums to 1, centre at ``[R, R]``) of the
    ImageNet-C motion blur: ``out(p) = sum_q K[R + q] x(p + q)``.

    Args:
        radius, sigma: ImageMagick parameters in px at 224 px.
        angle_deg: streak direction; 0 = towards +column, 90 = towards +row.
        scale: geometry scale (``image_size / 224``); tap ``i`` lies at ``i * scale`` px and
            is spread bilinearly over its four neighbouring pixels.
    """
    taps = np.arange(2 * int(radius) + 1, dtype=np.float64)
    w = np.exp(-(taps ** 2) / (2.0 * float(sigma) ** 2))
    w /= w.sum()
    a = math.radians(angle_deg)
    dy, dx = taps * scale * math.sin(a), taps * scale * math.cos(a)
    big = int(math.ceil(float(np.max(np.abs(np.concatenate([dy, dx]))))) + 1)
    k = np.zeros((2 * big + 1, 2 * big + 1))
    for wi, y, x in zip(w, dy, dx):
        y0, x0 = math.floor(y), math.floor(x)
        fy, fx = y - y0, x - x0
        for yy, xx, f in ((y0, x0, (1 - fy) * (1 - fx)), (y0 + 1, x0, fy * (1 - fx)),
                          (y0, x0 + 1, (1 - fy) * fx), (y0 + 1, x0 + 1, fy * fx)):
            if f > 0:
                k[big + yy, big + xx] += wi * f
    return k


def disk_kernel(radius: float, supersample: int = 16) -> np.ndarray:
    """Normalised disk kernel of ``radius`` px, each cell weighted by its exact-ish area
    coverage (``supersample`` x ``supersample`` sub-pixel samples); shape (2R+1, 2R+1)."""
    big = int(math.ceil(radius))
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    c = np.arange(-big, big + 1, dtype=np.float64)
    pts = (c[:, None] + sub[None, :]).ravel()
    yy, xx = np.meshgrid(pts, pts, indexing="ij")
    inside = (yy ** 2 + xx ** 2 <= radius ** 2).astype(np.float64)
    n = 2 * big + 1
    k = inside.reshape(n, supersample, n, supersample).sum(axis=(1, 3))
    return k / k.sum()


def _correlate(x: np.ndarray, k: np.ndarray, mode: str) -> np.ndarray:
    """``out[..., p, :] = sum_q k[R + q] xpad[p + R + q]`` over the (H, W) axes of x
    ((N, H, W, C) or (H, W, C), float); ``mode``: ``np.pad`` border mode."""
    big = k.shape[0] // 2
    spatial = (x.ndim - 3, x.ndim - 2)
    pad = [(0, 0)] * x.ndim
    pad[spatial[0]] = pad[spatial[1]] = (big, big)
    xp = np.pad(x, pad, mode=mode)
    h, w = x.shape[spatial[0]], x.shape[spatial[1]]
    out = np.zeros_like(x)
    for a, b in zip(*np.nonzero(k)):
        out += k[a, b] * xp[..., a:a + h, b:b + w, :]
    return out


def _to_uint8(x01: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.clip(x01, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0, *, offset: int = 0) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` (1..5) to a batch of RGB images.

    Args:
        images: uint8 (N, H, W, 3) RGB images (EuroSAT chips: 64 x 64).
        name: one of :data:`CORRUPTIONS`.
        severity: 1 (mild) .. 5 (strong); parameters in the module docstring.
        seed: non-negative int; image ``i`` uses a generator seeded with ``(seed, offset + i)``.
        offset: index of ``images[0]`` in the whole set, so that corrupting a set chunk by
            chunk gives the same result as corrupting it at once.

    Returns:
        uint8 (N, H, W, 3), a new array (the input is not modified).

    Raises:
        EOEdgeError: unknown name, severity outside 1..5, negative seed, or images that are
            not a uint8 (N, H, W, 3) array.
    """
    _check_name(name)
    k = _check_severity(severity) - 1
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise EOEdgeError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        desc = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise EOEdgeError(f"corrupt() needs uint8 images of shape (N, H, W, 3), got {desc}")
    n, h, w, _ = images.shape
    out = np.empty_like(images)
    s = scale_for(min(h, w))
    for c0 in range(0, n, _CHUNK):
        batch = images[c0:c0 + _CHUNK]
        idx = range(offset + c0, offset + c0 + len(batch))
        if name == "gaussian_noise":
            x = batch.astype(np.float64) / 255.0
            z = np.stack([_rng(seed, i).standard_normal((h, w, 3)) for i in idx])
            out[c0:c0 + len(batch)] = _to_uint8(x + GAUSSIAN_NOISE_SIGMA[k] * z)
        elif name == "motion_blur":
            r, sg = MOTION_BLUR_RADIUS_SIGMA[k]
            for j, i in enumerate(idx):
                angle = _rng(seed, i).uniform(*MOTION_BLUR_ANGLE_DEG)
                kern = motion_blur_kernel(r, sg, angle, s)
                y = _correlate(batch[j].astype(np.float64) / 255.0, kern, "edge")
                out[c0 + j] = _to_uint8(y)
        elif name == "defocus_blur":
            kern = disk_kernel(DEFOCUS_RADIUS[k] * s)
            mode = "reflect" if kern.shape[0] // 2 < min(h, w) else "symmetric"
            out[c0:c0 + len(batch)] = _to_uint8(_correlate(batch.astype(np.float64) / 255.0, kern, mode))
        elif name == "jpeg_compression":
            from PIL import Image

            for j in range(len(batch)):
                buf = io.BytesIO()
                Image.fromarray(batch[j]).save(buf, "JPEG", quality=JPEG_QUALITY[k])
                buf.seek(0)
                with Image.open(buf) as im:
                    out[c0 + j] = np.asarray(im.convert("RGB"))
        else:  # brightness: HSV value + c; RGB = V * f(H, S), so RGB' = RGB * V'/V
            x = batch.astype(np.float64) / 255.0
            v = x.max(axis=-1, keepdims=True)
            v2 = np.clip(v + BRIGHTNESS_SHIFT[k], 0.0, 1.0)
            safe = np.where(v > 0, v, 1.0)
            y = np.where(v > 0, x * (v2 / safe), v2)
            out[c0:c0 + len(batch)] = _to_uint8(y)
    return out
