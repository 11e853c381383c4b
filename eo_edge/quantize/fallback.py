"""Accuracy-aware INT8 fallback: rank activations by their quantization error, search the fewest kept in float that pass the gate."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import EOEdgeError
from ..fileio import sha256_file
from .convert import _Reader
from .qdq import activation_qdq, keep_activations_float

RANKINGS = ("output", "local")


def _softmax_kl(p_logits: np.ndarray, q_logits: np.ndarray) -> float:
    """Mean KL(softmax(p) || softmax(q)) over rows of (N, C) logits, in nats."""
    lp = p_logits - p_logits.max(1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
    lq = q_logits - q_logits.max(1, keepdims=True)
    lq = lq - np.log(np.exp(lq).sum(1, keepdims=True))
    return float((np.exp(lp) * (lp - lq)).sum(1).mean())


def rank_sensitive_activations(fp32_path: Path, qdq_path: Path, x: np.ndarray, how: str = "output",
                               progress: bool = False, cache_dir: Path | None = None,
                               info: dict | None = None) -> list[tuple[str, float]]:
    """Rank the quantized activation tensors of a QDQ model by how much keeping each in float helps.

    ``how="output"`` (default; leave-one-out output sensitivity, as in AIMET's QuantAnalyzer
    "per-layer quantization disabled" analysis): for every activation Q/DQ pair, the QDQ model
    is re-run with that pair removed (:func:`keep_activations_float`), and the tensor's score is
    the reduction in output error ``KL(FP32 || QDQ) - KL(FP32 || QDQ without the pair)`` (softmax
    of the logits, nats, mean over the images). It sees what a tensor's quantization does to the
    *logits*, including amplification by later layers (a SiLU's Sigmoid output multiplied by a
    large pre-activation, say) that a local error misses. Cost: one ONNX Runtime session and one
    pass over ``x`` per pair (minutes for MobileViTV2 on a 2-vCPU Xeon; seconds for ResNet8).

    ``how="local"``: the relative error each pair adds on its own,
    ``||post_qdq - pre_qdq|| / ||pre_qdq||`` (``onnxruntime.quantization.qdq_loss_debug``:
    collect_activations + create_activation_matching). Two passes, but blind to downstream
    amplification (for MobileViTV2 it ranks the critical stage-0 SiLU far down).

    Args:
        fp32_path: the FP32 parent ONNX.
        qdq_path: its QDQ INT8 ONNX, every activation quantized.
        x: ranking images, float32 (N, 3, S, S), preprocessed (calibration images, not the
            validation split that the gate uses).
        how: "output" or "local".
        cache_dir: where to keep the ranking, keyed by the sha256 of both models, the images
            and ``how`` (a re-run with another ``--max-drop`` skips the ranking); None: no cache.
        info: if given, ``info["cache"]`` is set to "hit", "miss" or "off".

    Returns:
        ``[(tensor_name, score), ...]``, most sensitive first; names of float activation tensors,
        as :func:`to_int8` ``float_activations`` takes them.

    Raises:
        EOEdgeError: unknown ``how``.
    """
    if how not in RANKINGS:
        raise EOEdgeError(f"unknown fallback ranking {how!r}; choose {', '.join(RANKINGS)}")
    cache, info = None, info if info is not None else {}
    info["cache"] = "off"
    if cache_dir is not None:
        import onnxruntime

        h = hashlib.sha256()
        for part in (sha256_file(fp32_path), sha256_file(qdq_path), how, onnxruntime.__version__):
            h.update(part.encode())
        h.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
        cache = Path(cache_dir) / f"rank-{h.hexdigest()[:24]}.json"
        info["cache"] = "miss"
        if cache.is_file():
            try:
                scores = [(str(t), float(v)) for t, v in json.loads(cache.read_text())]
                info["cache"] = "hit"
                return scores
            except (ValueError, TypeError):
                pass  # a damaged cache entry is recomputed
    scores = _rank(fp32_path, qdq_path, x, how, progress)
    if cache is not None:
        from ..fileio import write_json

        cache.parent.mkdir(parents=True, exist_ok=True)
        write_json(cache, scores)
    return scores


def _rank(fp32_path: Path, qdq_path: Path, x: np.ndarray, how: str, progress: bool) -> list[tuple[str, float]]:
    import onnx

    qm = onnx.load(str(qdq_path))
    pairs = activation_qdq(qm)
    if how == "output":
        import copy

        import onnxruntime as ort
        from rich.progress import track

        def run(model_bytes: bytes) -> np.ndarray:
            so = ort.SessionOptions()
            so.log_severity_level = 3
            s = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
            name = s.get_inputs()[0].name
            return np.concatenate([s.run(None, {name: x[i:i + 64]})[0] for i in range(0, len(x), 64)])

        ref = run(Path(fp32_path).read_bytes())
        base = _softmax_kl(ref, run(qm.SerializeToString()))
        scores = []
        for t in track(list(pairs), "auto-fallback: ranking activations", disable=not progress, transient=True):
            m = copy.deepcopy(qm)
            keep_activations_float(m, [t])
            scores.append((t, base - _softmax_kl(ref, run(m.SerializeToString()))))
        scores.sort(key=lambda t: -t[1])
        return scores

    import tempfile

    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    with tempfile.TemporaryDirectory() as td:
        fa, qa = Path(td) / "f.onnx", Path(td) / "q.onnx"
        modify_model_output_intermediate_tensors(str(fp32_path), str(fa))
        modify_model_output_intermediate_tensors(str(qdq_path), str(qa))
        xs = x[: min(len(x), 64)]
        f_act = collect_activations(str(fa), _Reader(xs, batch=16))
        q_act = collect_activations(str(qa), _Reader(xs, batch=16))
    match = create_activation_matching(q_act, f_act)
    scores = []
    for tensor, d in match.items():
        if tensor not in pairs and f"{tensor}_QuantizeLinear_Input" in pairs:  # the pair in front of a graph output
            tensor, d = f"{tensor}_QuantizeLinear_Input", d
        if "pre_qdq" not in d or "post_qdq" not in d or tensor not in pairs:
            continue
        pre = np.concatenate([np.asarray(a).ravel() for a in d["pre_qdq"]])
        post = np.concatenate([np.asarray(a).ravel() for a in d["post_qdq"]])
        denom = float(np.linalg.norm(pre)) or 1.0
        scores.append((tensor, float(np.linalg.norm(post - pre)) / denom))
    scores.sort(key=lambda t: -t[1])
    return scores


def fallback_search(n_candidates: int, ok: Callable[[float], bool],
                    attempt: Callable[[int], float]) -> tuple[int, dict[int, float]]:
    """Search the smallest count ``k`` of top-ranked activations kept in float whose gate passes.

    Doubling (1, 2, 4, ...) finds a passing count, then bisection between the last failing and
    the first passing count narrows it. The drop is not strictly monotonic in ``k``, so this is
    a search, not a proof of minimality.

    Args:
        n_candidates: how many ranked activations may be kept in float (>= 1).
        ok: ``drop -> passed``, the gate's pass rule at its limit (:func:`eo_edge.gate.passes`).
        attempt: ``k -> drop`` in points; writes/gates the candidate with ``k`` in float.

    Returns:
        ``(k, drops)``: the chosen count (the smallest passing one found, else the count with the
        smallest drop) and every tried ``{k: drop}``.

    Raises:
        ValueError: ``n_candidates < 1``.
    """
    if n_candidates < 1:
        raise ValueError("fallback_search needs at least one candidate")
    drops: dict[int, float] = {}

    def tried(k: int) -> float:
        if k not in drops:
            drops[k] = attempt(k)
        return drops[k]

    lo, k = 0, 1
    while k < n_candidates and not ok(tried(k)):
        lo, k = k, min(2 * k, n_candidates)
    hi = k if ok(tried(k)) else None
    while hi is not None and hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(tried(mid)):
            hi = mid
        else:
            lo = mid
    return (hi if hi is not None else min(drops, key=drops.get)), drops
