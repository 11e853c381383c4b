"""Timing protocol: interleaved latency rounds, percentiles, ratio statistics, throughput."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

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


def sustained_throughput(infers: list[Callable[[np.ndarray], Any]], xs: list[np.ndarray], window_s: float,
                         rounds: int, agree: float = 0.03,
                         progress: Callable[[int], None] | None = None) -> list[list[float]]:
    """Sustained images/s of several artifacts: interleaved rounds (A B C A B C ...), each a window of
    ``window_s`` s of back-to-back calls on one preallocated batch after one untimed call
    (:func:`window_rate`), so drift hits every artifact alike.

    Every artifact gets 2 rounds (1 when ``rounds`` is 1); a further round up to ``rounds`` only
    for the artifacts whose rounds so far differ by more than ``agree`` (relative): repetition is
    cut where the figure is already tight.

    Args:
        infers: one call each: batch -> logits.
        xs: the batch of each (float32 (B, C, S, S)); reused for every call.

    Returns:
        ``rates[i]``: images/s of artifact i per round it ran.
    """
    rates: list[list[float]] = [[] for _ in infers]
    for r in range(max(1, rounds)):
        for i, (f, x) in enumerate(zip(infers, xs)):
            got = rates[i]
            if r >= 2 and (max(got) - min(got)) / max(got) <= agree:
                continue
            got.append(window_rate(f, x, window_s))
            if progress:
                progress(1)
    return rates


def window_rate(f: Callable[[np.ndarray], Any], x: np.ndarray, window_s: float) -> float:
    """Images/s of back-to-back calls ``f(x)`` on one preallocated batch ``x`` (float32 (B, C, S, S))
    for at least ``window_s`` seconds: whole calls only, so a window lasts ``window_s`` plus at most
    one call; ``time.perf_counter`` around the loop. One untimed call first: the first call after
    another artifact ran took up to 1.95x the steady call time on the 2-vCPU host (thread pools
    asleep, caches cold: benchmarks/throughput-window/first_call.json), a cost of the interleaving, not of the model."""
    f(x)
    clock = time.perf_counter
    n, t0 = 0, clock()
    while True:
        f(x)
        n += len(x)
        dt = clock() - t0
        if dt >= window_s:
            return n / dt


def throughput_record(rates: list[float], batch: int, window_s: float) -> dict[str, Any]:
    """``throughput`` of one artifact: the median of its sustained rounds (images/s), their min and
    max, how many rounds and how long each (s)."""
    r = np.asarray(rates, np.float64)
    return {"batch": batch, "images_per_s": float(np.median(r)), "min": float(r.min()), "max": float(r.max()),
            "rounds": int(len(r)), "window_s": window_s}
