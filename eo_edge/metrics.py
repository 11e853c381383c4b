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


def plot_confusion(report: dict, path: str | Path, title: str = "") -> Path:
    """Save the confusion matrix of a :func:`classification_report` as a PNG (row-normalised
    colours, raw counts printed). Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .fileio import atomic_path

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
