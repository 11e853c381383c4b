"""The accuracy gate: an FP16/INT8 artifact vs its FP32 parent on the same images.

One pass rule (:func:`passes`) and one record shape (:func:`gate_record`), used by
``eo-edge compile`` (on the validation split, before a file is published) and ``eo-edge bench``
(on the bench images, for every compiled artifact whose parent is measured in the run).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .defaults import MAX_DROP_PTS  # noqa: F401  (the default limit, re-exported for callers of the gate)


def passes(drop: float, max_drop: float | None) -> bool:
    """The pass rule: a top-1 drop (points, parent minus artifact) passes when ``drop <= max_drop``;
    with no limit (``None``) every drop passes."""
    return max_drop is None or bool(drop <= max_drop)


def gate_record(c: dict[str, Any], max_drop: float | None = None, **about: Any) -> dict[str, Any]:
    """The one gate record, from :func:`eo_edge.metrics.logits.compare_logits` of parent (reference)
    vs artifact: ``top1``, ``parent_top1`` (%), ``drop``, ``drop_se`` (points), ``top1_agreement`` (%),
    ``max_abs_logit_diff``, ``n_images``, ``max_drop`` (points or None) and ``passed`` (:func:`passes`),
    plus ``about`` (bench adds ``parent``, ``parent_path``, ``compile_gate``)."""
    return {"top1": c["top1"], "parent_top1": c["reference_top1"], "drop": c["drop"], "drop_se": c["drop_se"],
            "top1_agreement": c["top1_agreement"], "max_abs_logit_diff": c["max_abs_diff"],
            "n_images": c["n_images"], "max_drop": max_drop, "passed": passes(c["drop"], max_drop), **about}


def gate(fn_new: Callable, parent_logits: np.ndarray, data, cfg, progress: bool = True,
         max_drop: float | None = None) -> dict[str, Any]:
    """Top-1 of an artifact and its FP32 parent on ``data``, their drop and top-1 agreement (percent).

    ``drop_se`` is the standard error of the drop (points) from the paired per-image differences
    (parent correct minus artifact correct, each -1, 0 or 1). The drops measured on two
    independent splits of the same size differ by about sqrt(2) x SE (a drop of 0.44 with SE 0.2
    on validation can be 0.8 on test), so a ``--max-drop`` meant to hold on other data needs a
    margin of about 1.5 SE below the goal.

    Args:
        fn_new: the artifact's logit function (float32 (N,3,S,S) -> (N,C)).
        parent_logits: the FP32 parent's logits on ``data``, float32 (len(data), C), computed
            once by the caller (the auto-fallback loop gates many candidates against them).
        max_drop: the limit in points, or None (recorded, no verdict enforced here).

    Returns:
        :func:`gate_record`.
    """
    from .metrics.evaluate import check_classes, predict_logits
    from .metrics.logits import compare_logits

    check_classes(cfg.class_names, data.class_names)
    remap = np.array([list(cfg.class_names).index(c) for c in data.class_names])
    y = remap[data.labels]
    a = predict_logits(fn_new, data, cfg.input_size, cfg.mean, cfg.std, progress=progress, desc="gate: artifact")
    return gate_record(compare_logits(parent_logits, a, y), max_drop)
