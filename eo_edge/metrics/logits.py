"""One comparator for every logits comparison (the Polygraphy ``Comparator`` shape).

The export parity check (PyTorch vs ONNX Runtime), the compile accuracy gate (artifact vs
its FP32 parent) and the benchmark's agreement column all call :func:`compare_logits`, so a
"top-1 agreement" or "drop" means the same thing wherever it is printed.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def compare_logits(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None = None) -> dict[str, Any]:
    """Compare two models' logits on the same images.

    Args:
        reference: float logits (N, C) of the reference (PyTorch, or the FP32 parent).
        candidate: float logits (N, C) of the model under test, same images and class order.
        labels: optional int64 (N,) true classes; adds top-1 of both and the paired drop.

    Returns:
        ``max_abs_diff`` and ``mean_abs_diff`` (logit units), ``top1_agreement`` (percent of
        images whose argmax agrees), ``n_images``; with labels also ``reference_top1``,
        ``top1`` (percent), ``drop`` (points, reference minus candidate) and ``drop_se``: the
        standard error of the drop from the paired per-image differences (each -1, 0 or 1).
        Two independent splits of the same size differ by about sqrt(2) x SE, so a gate meant
        to hold on other data needs a margin of about 1.5 SE.

    Raises:
        ValueError: shapes differ or are not (N, C) with N >= 1.
    """
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or len(a) == 0:
        raise ValueError(f"logits must both be (N, C) with N >= 1, got {a.shape} and {b.shape}")
    pa, pb = a.argmax(1), b.argmax(1)
    diff = np.abs(a - b)
    out: dict[str, Any] = {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
                           "top1_agreement": float(100.0 * (pa == pb).mean()), "n_images": int(len(a))}
    if labels is not None:
        y = np.asarray(labels)
        d = (pa == y).astype(np.float64) - (pb == y)  # per-image paired difference
        out.update({"reference_top1": float(100.0 * (pa == y).mean()), "top1": float(100.0 * (pb == y).mean()),
                    "drop": float(100.0 * d.mean()),
                    "drop_se": float(100.0 * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")})
    return out
