"""Evaluate any model runtime on a split of the prepared data, with deterministic preprocessing.

One function serves PyTorch modules, ONNX Runtime sessions and TensorRT engines: each is
wrapped as ``fn(x: float32 (N, 3, S, S)) -> logits float32 (N, C)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..data.dataset import PreparedData
from ..data.transforms import preprocess
from .stats import classification_report

LogitFn = Callable[[np.ndarray], np.ndarray]


def predict_logits(fn: LogitFn, data: PreparedData, input_size: int, mean: Sequence[float], std: Sequence[float],
                   batch_size: int = 256, progress: bool = True, desc: str = "evaluating") -> np.ndarray:
    """Logits of ``fn`` for every image of ``data``.

    Returns:
        float32 (N, C) logits, in ``data`` order.
    """
    from rich.progress import Progress

    out = []
    n = len(data)
    with Progress(disable=not progress, transient=True) as prog:
        task = prog.add_task(desc, total=n)
        for s in range(0, n, batch_size):
            x = preprocess(np.asarray(data.images[s:s + batch_size]), input_size, mean, std)
            out.append(np.asarray(fn(x), dtype=np.float32))
            prog.advance(task, len(x))
    return np.concatenate(out) if out else np.zeros((0, len(data.class_names)), np.float32)


def torch_logit_fn(model, device: str = "cpu") -> LogitFn:
    """Wrap a ``torch.nn.Module`` (put in eval mode) as a NumPy logit function."""
    import torch

    model.eval().to(device)

    def fn(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)
            return model(t).float().cpu().numpy()

    return fn


def check_classes(model_class_names: Sequence[str], data_class_names: Sequence[str], model: str = "the model") -> None:
    """The one class-compatibility rule: every class of the data must be a class of the model.

    Raises:
        EOEdgeError: one line naming the unknown classes and the model's.
    """
    from ..errors import EOEdgeError

    missing = [c for c in data_class_names if c not in model_class_names]
    if missing:
        raise EOEdgeError(f"data classes unknown to {model}: {', '.join(missing[:5])}"
                          + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
                          + f"; it knows {', '.join(list(model_class_names)[:10])}")


def evaluate(fn: LogitFn, data: PreparedData, input_size: int, mean: Sequence[float], std: Sequence[float],
             model_class_names: Sequence[str] | None = None, batch_size: int = 256, progress: bool = True,
             temperature: float = 1.0, decision: dict | None = None, return_logits: bool = False):
    """Top-1, macro precision/recall/F1, per-class accuracy, confusion and decision quality of
    ``fn`` on ``data``.

    Labels of ``data`` are mapped to the model's class order by name. ``ece_pct``/``nll``/
    ``brier`` are those of ``softmax(logits / temperature)`` (the model's calibrated output);
    ``decision`` holds the rest (:func:`eo_edge.metrics.decision.decision_quality`: T = 1 values,
    AURC, coverage at the model's stored threshold).

    Returns:
        the report dict; with ``return_logits``, ``(report, logits float32 (N, C), y int64 (N,))``.

    Raises:
        EOEdgeError: the data holds classes the model does not know.
    """
    names = list(model_class_names or data.class_names)
    check_classes(names, data.class_names)
    remap = np.array([names.index(c) for c in data.class_names])
    y = remap[data.labels]
    logits = predict_logits(fn, data, input_size, mean, std, batch_size, progress)
    rep = classification_report(y, logits.argmax(1), names)
    from .decision import decision_quality

    dq = decision_quality(logits, y, temperature, decision)  # ECE (15 bins), NLL, Brier at T; AURC; keep rule
    rep.update({"ece_pct": dq["ece_pct"], "nll": dq["nll"], "brier": dq["brier"], "calibration": dq.pop("calibration"),
                "decision": dq})
    return (rep, logits, y) if return_logits else rep
