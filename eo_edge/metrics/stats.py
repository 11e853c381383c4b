"""Classification metrics (top-1, macro precision/recall/F1, per-class accuracy, confusion).

Definitions follow scikit-learn's ``precision_recall_fscore_support(average="macro")``
with ``zero_division=0``: each class's precision TP/(TP+FP), recall TP/(TP+FN), F1 their
harmonic mean, then the unweighted mean over classes. Percentages throughout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion matrix, int64 (C, C): rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> dict:
    """All metrics for integer labels ``y_true`` and predictions ``y_pred`` (both (N,)).

    Returns:
        dict with ``top1``, ``macro_precision``, ``macro_recall``, ``macro_f1`` (percent),
        ``n_images``, ``per_class`` ({name: {"accuracy", "precision", "recall", "f1",
        "support"}}), ``confusion`` (list of lists, rows = true class) and ``class_names``.
    """
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    c = len(class_names)
    cm = confusion_matrix(y_true, y_pred, c)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1).astype(np.float64)
    predicted = cm.sum(0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(predicted > 0, tp / predicted, 0.0)
        rec = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
    present = support > 0
    return {
        "top1": float(100.0 * (y_true == y_pred).mean()) if len(y_true) else float("nan"),
        "macro_precision": float(100.0 * prec[present].mean()),
        "macro_recall": float(100.0 * rec[present].mean()),
        "macro_f1": float(100.0 * f1[present].mean()),
        "n_images": int(len(y_true)),
        "per_class": {
            name: {"accuracy": float(100 * rec[i]), "precision": float(100 * prec[i]), "recall": float(100 * rec[i]),
                   "f1": float(100 * f1[i]), "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
        "confusion": cm.tolist(),
        "class_names": list(class_names),
    }


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (float64, numerically stable), (N, C)."""
    z = np.asarray(logits, np.float64) / float(temperature)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def calibration_metrics(logits: np.ndarray, y_true: np.ndarray, n_bins: int = 15,
                        temperature: float = 1.0) -> dict:
    """How well the max softmax probability matches accuracy.

    * ECE, expected calibration error: ``sum_b |B_b|/N * |acc(B_b) - conf(B_b)|`` over ``n_bins``
      equal-width confidence bins on (0, 1] (Guo et al., "On Calibration of Modern Neural
      Networks", ICML 2017, eq. 3; 15 bins as there), in percent;
    * NLL: mean negative log-likelihood of the true class (nats);
    * Brier score: mean squared error of the probability vector against the one-hot label
      (Brier 1950; summed over classes, averaged over images).

    Args:
        logits: float (N, C); y_true: int (N,) in the same class order; temperature: T > 0.

    Returns:
        ``{"ece_pct", "nll", "brier", "n_bins", "temperature", "bins": [{"lo", "hi", "n", "accuracy",
        "confidence"}]}`` (accuracy/confidence in percent).
    """
    p = softmax(logits, temperature)
    y = np.asarray(y_true, np.int64)
    conf, pred = p.max(1), p.argmax(1)
    correct = (pred == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece, bins = 0.0, []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            acc, cf = correct[m].mean(), conf[m].mean()
            ece += m.mean() * abs(acc - cf)
            bins.append({"lo": float(lo), "hi": float(hi), "n": int(m.sum()), "accuracy": float(100 * acc),
                         "confidence": float(100 * cf)})
    onehot = np.eye(p.shape[1])[y]
    return {"ece_pct": float(100 * ece), "nll": float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)).mean()),
            "brier": float(((p - onehot) ** 2).sum(1).mean()), "n_bins": n_bins, "temperature": float(temperature),
            "bins": bins}


def fit_temperature(logits: np.ndarray, y_true: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """Post-hoc temperature scaling: the T > 0 minimising the NLL of ``softmax(logits / T)`` on held-out
    (validation) data (Guo et al., ICML 2017, section 4.2). The NLL is convex in 1/T; golden-section
    search over log T in [lo, hi], 60 steps (|dT| < 1e-9 relative)."""
    def nll(t: float) -> float:
        return calibration_metrics(logits, y_true, temperature=t)["nll"]

    a, b = np.log(lo), np.log(hi)
    g = (np.sqrt(5.0) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(np.exp(c)), nll(np.exp(d))
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(np.exp(d))
    return float(np.exp((a + b) / 2))


def plot_reliability(cal: dict, path: str | Path, title: str = "") -> Path:
    """Reliability diagram (accuracy vs confidence per bin, with the diagonal) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.4), dpi=120)
    ax.plot([0, 100], [0, 100], "--", color="grey", lw=1, label="perfect calibration")
    for b in cal["bins"]:
        ax.bar((b["lo"] + b["hi"]) * 50, b["accuracy"], width=(b["hi"] - b["lo"]) * 100, edgecolor="black",
               color="tab:blue", alpha=0.7)
    ax.set_xlabel("confidence (max softmax probability) %")
    ax.set_ylabel("accuracy %")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_title(title or f"ECE {cal['ece_pct']:.2f} % ({cal['n_bins']} bins)", fontsize=8)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    from ..fileio import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def plot_confusion(report: dict, path: str | Path, title: str = "") -> Path:
    """Save the confusion matrix of a :func:`classification_report` as a PNG (row-normalised
    colours, raw counts printed). Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import atomic_path

    cm = np.asarray(report["confusion"], dtype=np.float64)
    names = report["class_names"]
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7.5, 6.5), dpi=110)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or f"top-1 {report['top1']:.2f} % on {report['n_images']} images", fontsize=10)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


# --- uncertainty of top-1 and of paired differences -------------------------------------------

def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``k / n``, in percent (Wilson 1927; the
    interval recommended over the Wald one by Brown, Cai & DasGupta, Stat. Sci. 2001).

    Returns ``(lo, hi)``; ``(nan, nan)`` for ``n == 0``."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return float(100 * max(0.0, c - h)), float(100 * min(1.0, c + h))


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray, z: float = 1.959964) -> dict:
    """Paired comparison of two classifiers on the same images (McNemar 1947, exact form).

    Args:
        correct_a, correct_b: bool (N,), whether each model got image i right (same image order).

    Returns:
        ``{"n", "a_only", "b_only", "delta_pts", "ci95_pts", "p_value", "within_noise"}``:
        ``delta_pts`` = top-1(a) - top-1(b) in points, its 95 % interval (paired normal
        approximation, ``se = sqrt(b + c - (b - c)^2 / n) / n``), the exact two-sided binomial
        p-value of the discordant pairs (b of one kind out of b + c, p = 0.5), and
        ``within_noise`` = p >= 0.05.

    Raises:
        ValueError: the two arrays differ in length.
    """
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same images: {a.shape} vs {b.shape}")
    n = int(a.size)
    n10, n01 = int((a & ~b).sum()), int((~a & b).sum())
    m = n10 + n01
    if m == 0:
        p = 1.0
    else:
        from math import comb

        k = min(n10, n01)
        p = min(1.0, 2 * sum(comb(m, i) for i in range(k + 1)) / (1 << m))  # exact big-int ratio
    d = (n10 - n01) / n if n else float("nan")
    se = np.sqrt(max(m - (n10 - n01) ** 2 / n, 0.0)) / n if n else float("nan")
    return {"n": n, "a_only": n10, "b_only": n01, "delta_pts": float(100 * d),
            "ci95_pts": [float(100 * (d - z * se)), float(100 * (d + z * se))], "p_value": float(p),
            "within_noise": bool(p >= 0.05)}


# --- selective classification ------------------------------------------------------------------

def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> dict:
    """Risk-coverage curve of thresholding the confidence (max softmax probability) and its area.

    Images are kept in order of decreasing confidence; at coverage ``i / N`` the selective
    accuracy is that of the ``i`` most confident. AURC is the mean selective risk
    (1 - accuracy) over all N coverages (Geifman & El-Yaniv, "Selective Classification for Deep
    Neural Networks", NeurIPS 2017; AURC as in Geifman et al., ICLR 2019), in percent.

    Args:
        confidence: float (N,); correct: bool (N,).

    Returns:
        ``{"aurc_pct", "coverage_pct": [...], "accuracy_pct": [...]}`` with the curve sampled at
        up to 101 coverages (for plots).
    """
    c = np.asarray(confidence, np.float64)
    ok = np.asarray(correct, np.float64)
    n = len(c)
    if n == 0:
        return {"aurc_pct": float("nan"), "coverage_pct": [], "accuracy_pct": []}
    order = np.argsort(-c, kind="stable")
    acc = np.cumsum(ok[order]) / np.arange(1, n + 1)
    idx = np.unique(np.linspace(0, n - 1, min(n, 101)).round().astype(int))
    return {"aurc_pct": float(100 * (1 - acc).mean()), "coverage_pct": [float(100 * (i + 1) / n) for i in idx],
            "accuracy_pct": [float(100 * acc[i]) for i in idx]}


def threshold_for_accuracy(confidence: np.ndarray, correct: np.ndarray, target_pct: float) -> dict:
    """The lowest confidence threshold whose kept images (confidence >= threshold) reach
    ``target_pct`` accuracy: the largest coverage at that accuracy (selective classification).

    Returns:
        ``{"target_accuracy_pct", "threshold", "coverage_pct", "accuracy_pct", "reached"}``; when no
        threshold reaches the target, ``reached`` is False and the threshold keeps the single most
        confident image (coverage 1/N).
    """
    c = np.asarray(confidence, np.float64)
    ok = np.asarray(correct, np.float64)
    n = len(c)
    order = np.argsort(-c, kind="stable")
    cs, acc = c[order], np.cumsum(ok[order]) / np.arange(1, n + 1)
    # a threshold can only cut between distinct confidences: consider the last index of each tie run
    last = np.r_[cs[1:] != cs[:-1], True]
    good = np.flatnonzero(last & (acc * 100 >= target_pct))
    reached = bool(good.size)
    i = int(good.max()) if reached else 0
    return {"target_accuracy_pct": float(target_pct), "threshold": float(cs[i]), "coverage_pct": float(100 * (i + 1) / n),
            "accuracy_pct": float(100 * acc[i]), "reached": reached}


def selective_at(confidence: np.ndarray, correct: np.ndarray, threshold: float) -> dict:
    """Coverage and accuracy of the images kept at ``confidence >= threshold`` (percent);
    accuracy is NaN when nothing is kept."""
    c = np.asarray(confidence, np.float64)
    keep = c >= threshold
    k = int(keep.sum())
    return {"threshold": float(threshold), "coverage_pct": float(100 * k / max(len(c), 1)),
            "accuracy_pct": float(100 * np.asarray(correct, bool)[keep].mean()) if k else float("nan"), "kept": k}


def plot_risk_coverage(curves: dict[str, dict], path: str | Path, target_pct: float | None = None) -> Path:
    """Selective accuracy vs coverage, one line per artifact (``curves``: name -> :func:`risk_coverage`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import atomic_path

    fig, ax = plt.subplots(figsize=(6.5, 4.3), dpi=120)
    for name, rc in curves.items():
        ax.plot(rc["coverage_pct"], rc["accuracy_pct"], lw=1.4, label=f"{name} (AURC {rc['aurc_pct']:.2f} %)")
    if target_pct is not None:
        ax.axhline(target_pct, ls="--", color="grey", lw=1, label=f"target {target_pct:g} %")
    ax.set_xlabel("coverage: images kept, % (most confident first)")
    ax.set_ylabel("accuracy of kept images, %")
    ax.set_xlim(0, 100)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def plot_reliability_curves(cals: dict[str, dict], path: str | Path) -> Path:
    """Reliability diagram of several artifacts in one figure: per 15-bin confidence bin, accuracy vs
    mean confidence (percent), one line per artifact (``cals``: name -> ``{"bins", "ece_pct"}`` as in
    :func:`calibration_metrics`); the diagonal is perfect calibration. Only the upper range is
    shown (confidence >= 40 %), where nearly every image of a trained classifier lies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import atomic_path

    fig, ax = plt.subplots(figsize=(6.5, 4.6), dpi=120)
    ax.plot([0, 100], [0, 100], "--", color="grey", lw=1, label="perfect calibration")
    for name, c in cals.items():
        b = [x for x in c.get("bins", []) if x["n"] > 0]
        ax.plot([x["confidence"] for x in b], [x["accuracy"] for x in b], marker="o", ms=3, lw=1.2,
                label=f"{name} (ECE {c['ece_pct']:.2f} %)")
    ax.set_xlim(40, 100)
    ax.set_ylim(20, 100)
    ax.set_xlabel("mean confidence in bin, % (15 equal-width bins)")
    ax.set_ylabel("accuracy in bin, %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return Path(path)
