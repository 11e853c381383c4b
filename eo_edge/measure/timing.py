"""Timing protocol: interleaved latency rounds, percentiles, ratio statistics, throughput."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from ..hostinfo import cpu_name, host_record  # noqa: F401  (cpu_name re-exported for benchmarks/)
from ..schemas import cap_samples


def percentiles(samples_ms: np.ndarray) -> dict[str, float]:
    """p50/p90/p99 (numpy 'linear' interpolation), mean, std (ddof=1) of latency samples in ms."""
    s = np.asarray(samples_ms, dtype=np.float64)
    return {"p50": float(np.percentile(s, 50)), "p90": float(np.percentile(s, 90)),
            "p99": float(np.percentile(s, 99)), "mean": float(s.mean()),
            "std": float(s.std(ddof=1)) if len(s) > 1 else 0.0, "n": int(len(s))}


def latency_record(samples_ms: np.ndarray) -> dict[str, Any]:
    """``latency_ms`` of one artifact at batch 1: :func:`percentiles` of all samples, and as
    ``samples`` at most the schema's cap of them (:func:`eo_edge.report.schema.cap_samples`)."""
    kept, stride = cap_samples(samples_ms)
    return {"batch": 1, **percentiles(samples_ms), "samples": [round(float(v), 5) for v in kept],
            "samples_stride": stride}


def interleaved_latency(fns: list[Callable[[], Any]], warmup: int, runs: int, rounds: int,
                        progress: Callable[[int], None] | None = None) -> list[list[np.ndarray]]:
    """Time each function ``runs`` times in ``rounds`` interleaved blocks.

    Args:
        fns: zero-argument callables (one inference each, batch 1).
        warmup: untimed calls per function first.
        runs: timed calls per function in total.
        rounds: blocks; block r runs every function ``runs // rounds`` times, in order.

    Returns:
        ``per_fn[i][r]``: float64 array of call latencies (ms) of function i in round r.
    """
    for f in fns:
        for _ in range(warmup):
            f()
    per_round = max(1, runs // rounds)
    out: list[list[np.ndarray]] = [[] for _ in fns]
    clock = time.perf_counter_ns
    for _r in range(rounds):
        for i, f in enumerate(fns):
            buf = np.empty(per_round, dtype=np.float64)
            for k in range(per_round):
                t0 = clock()
                f()
                buf[k] = (clock() - t0) / 1e6
            out[i].append(buf)
            if progress:
                progress(per_round)
    return out


def ratio_stats(a_rounds: list[np.ndarray], b_rounds: list[np.ndarray]) -> dict[str, float]:
    """Per-round ratio of median latencies (A / B): median and 5th/95th percentiles."""
    r = np.array([np.median(a) / np.median(b) for a, b in zip(a_rounds, b_rounds)])
    return {"median": float(np.median(r)), "p05": float(np.percentile(r, 5)), "p95": float(np.percentile(r, 95)),
            "rounds": int(len(r))}


def throughput(infer: Callable[[np.ndarray], Any], x: np.ndarray, iters: int) -> float:
    """Images/s: best of 3 passes of ``iters`` calls on batch ``x`` (float32 (B,3,S,S))."""
    infer(x)
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(iters):
            infer(x)
        best = max(best, iters * len(x) / (time.perf_counter() - t0))
    return best
