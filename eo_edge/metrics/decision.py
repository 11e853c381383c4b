"""Onboard decision quality: calibrated confidence and the keep/abstain rule.

A payload classifier's output is a decision (keep or drop, downlink now or later). This module
turns logits into the numbers that decide it, the same way for every artifact:

* calibration of the max softmax probability before and after post-hoc temperature scaling
  (ECE over 15 equal-width bins, NLL, Brier; Guo et al., ICML 2017);
* selective classification: the risk-coverage curve and its area (AURC), and the coverage
  and accuracy at the model's stored threshold (fitted on validation by ``eo-edge calibrate``
  for a target accuracy, checked here on whatever split is evaluated).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .stats import calibration_metrics, risk_coverage, selective_at, softmax, threshold_for_accuracy

DEFAULT_TARGET_ACCURACY = 99.0  # percent: the keep rule the issue asks for (`--target-accuracy 99`)


def decision_quality(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0, decision: dict | None = None,
                     target_accuracy: float = DEFAULT_TARGET_ACCURACY) -> dict[str, Any]:
    """All decision metrics of one artifact on one labelled split.

    Args:
        logits: float (N, C); y: int (N,) true classes in the logits' order.
        temperature: the model's post-hoc T (``ModelConfig.temperature``; 1.0 = uncalibrated).
        decision: the model's stored keep rule (``ModelConfig.decision``: ``threshold``,
            ``target_accuracy_pct``), or None/empty.
        target_accuracy: percent, for the "best achievable on this split" coverage.

    Returns:
        ``{"temperature", "ece_pct", "nll", "brier" (at T), "uncalibrated": {"ece_pct", "nll",
        "brier"} (at T = 1), "calibration" (bins at T), "aurc_pct", "risk_coverage" (curve),
        "at_threshold": {threshold, coverage_pct, accuracy_pct, kept, target_accuracy_pct,
        meets_target, fitted_on} or None, "best_on_this_split": threshold_for_accuracy(...)}``.
        Percentages throughout; NLL in nats.
    """
    logits = np.asarray(logits, np.float64)
    y = np.asarray(y, np.int64)
    cal_t = calibration_metrics(logits, y, temperature=temperature)
    cal_1 = cal_t if temperature == 1.0 else calibration_metrics(logits, y)
    p = softmax(logits, temperature)
    conf, correct = p.max(1), p.argmax(1) == y
    rc = risk_coverage(conf, correct)
    out: dict[str, Any] = {
        "temperature": float(temperature), "ece_pct": cal_t["ece_pct"], "nll": cal_t["nll"], "brier": cal_t["brier"],
        "uncalibrated": {k: cal_1[k] for k in ("ece_pct", "nll", "brier")}, "calibration": cal_t,
        "aurc_pct": rc["aurc_pct"], "risk_coverage": rc, "at_threshold": None,
        "best_on_this_split": threshold_for_accuracy(conf, correct, target_accuracy)}
    if decision and "threshold" in decision:
        sel = selective_at(conf, correct, float(decision["threshold"]))
        tgt = float(decision.get("target_accuracy_pct", target_accuracy))
        sel.update({"target_accuracy_pct": tgt, "fitted_on": decision.get("fitted_on", "validation"),
                    "meets_target": bool(sel["kept"]) and sel["accuracy_pct"] >= tgt})
        out["at_threshold"] = sel
    return out


def fit_decision(logits: np.ndarray, y: np.ndarray, target_accuracy: float = DEFAULT_TARGET_ACCURACY) -> dict:
    """Fit the post-hoc temperature and the keep threshold on held-out (validation) logits.

    T minimises the NLL (:func:`eo_edge.metrics.fit_temperature`); the threshold is the lowest
    calibrated max-probability whose kept images reach ``target_accuracy`` percent
    (:func:`eo_edge.metrics.threshold_for_accuracy`).

    Args:
        logits: float (N, C) on the validation split; y: int (N,).

    Returns:
        ``{"temperature", "decision": {"threshold", "target_accuracy_pct", "val_coverage_pct",
        "val_accuracy_pct", "reached", "val_ece_pct_before", "val_ece_pct_after", "val_nll_before",
        "val_nll_after", "n_images", "fitted_on"}}``.

    Raises:
        ValueError: empty input or a target outside (0, 100].
    """
    from .stats import fit_temperature

    if len(y) == 0:
        raise ValueError("no validation images to fit the temperature on")
    if not 0 < target_accuracy <= 100:
        raise ValueError(f"target accuracy {target_accuracy} % is outside (0, 100]")
    t = fit_temperature(logits, y)
    p = softmax(logits, t)
    thr = threshold_for_accuracy(p.max(1), p.argmax(1) == np.asarray(y), target_accuracy)
    return {"temperature": t, "decision": {
        "threshold": thr["threshold"], "target_accuracy_pct": float(target_accuracy),
        "val_coverage_pct": thr["coverage_pct"], "val_accuracy_pct": thr["accuracy_pct"], "reached": thr["reached"],
        **_before_after(logits, y, t),
        "n_images": int(len(y)), "fitted_on": "validation"}}


def _before_after(logits: np.ndarray, y: np.ndarray, t: float) -> dict[str, float]:
    b, a = calibration_metrics(logits, y), calibration_metrics(logits, y, temperature=t)
    return {"val_ece_pct_before": b["ece_pct"], "val_ece_pct_after": a["ece_pct"], "val_nll_before": b["nll"],
            "val_nll_after": a["nll"]}
