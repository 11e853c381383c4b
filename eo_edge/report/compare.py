"""Several bench runs side by side (x86 vs Jetson, before vs after)."""

from __future__ import annotations

from typing import Any, Callable

from ..errors import EOEdgeError
from .formatting import _artifacts, _by_name, _get, _md_table, _power_energy, _power_mean, fmt
from .markdown import _COMPARISON_ROWS
from .schema import NA


def compare_markdown(runs: list[dict], labels: list[str]) -> str:
    """Side-by-side Markdown of several bench runs (x86 vs Jetson, before vs after, ...).

    One row per artifact name (union over the runs, in order of first appearance): top-1 %,
    p50 ms, images/s, mean power mW and mJ/image from each run, and the ratios
    ``run_k / run_0`` of p50 and images/s (the first run is the reference); ``-`` marks an
    artifact a run does not have. Then the comparisons' measured reductions per run.

    Raises:
        EOEdgeError: fewer than 2 runs, or labels that do not match the runs one to one.
    """
    if len(runs) < 2:
        raise EOEdgeError("compare needs at least two bench runs")
    if len(labels) != len(runs) or len(set(labels)) != len(labels):
        raise EOEdgeError(f"need {len(runs)} distinct labels for {len(runs)} runs, got {labels}")
    ref = labels[0]
    out = [f"# eo-edge benchmark comparison: {' vs '.join(labels)}", "",
           f"Ratios are run / {ref} (p50 < 1: faster than {ref}; images/s > 1: more throughput). "
           "Latency in ms per image (batch 1), power in mW, energy in mJ per image. "
           "MACs = multiply-accumulates, FLOPs = 2 x MACs.", "",
           _md_table(["Run", "Created", "CPU", "Jetson", "Threads", "Data", "ORT"],
                     [[lb, str(r.get("created", NA)), str(_get(r, "host", "cpu") or NA),
                       "no" if _get(r, "host", "jetson") is None else
                       (_get(r, "host", "jetson") if isinstance(_get(r, "host", "jetson"), str)
                        else str(_get(r, "host", "jetson", "model") or "yes")),
                       str(_get(r, "protocol", "threads") or NA),
                       f"{_get(r, 'data', 'kind') or NA}, {fmt(_get(r, 'data', 'n_images'), 'int')}",
                       str(_get(r, "host", "versions", "onnxruntime") or NA)] for lb, r in zip(labels, runs)],
                     ["l"] * 7)]
    names = list(dict.fromkeys(a.get("name") for r in runs for a in _artifacts(r)))
    maps = [_by_name(r) for r in runs]

    def cell(a: dict | None, f: Callable[[dict], Any], unit: str) -> str:
        return "-" if a is None else fmt(f(a), unit)

    def ratio(a: dict | None, b: dict | None, f: Callable[[dict], Any]) -> str:
        if a is None or b is None or f(a) in (None, 0) or f(b) is None:
            return "-" if a is None or b is None else NA
        return fmt(f(b) / f(a), "ratio")

    metrics: list[tuple[str, Callable[[dict], Any], str, bool]] = [
        ("Top-1 %", lambda a: _get(a, "accuracy", "top1"), "pct", False),
        ("p50 ms", lambda a: _get(a, "latency_ms", "p50"), "ms", True),
        ("Images/s", lambda a: _get(a, "throughput", "images_per_s"), "ips", True),
        ("Power mW", _power_mean, "mW", False),
        ("mJ/image", _power_energy, "mJ", False),
    ]
    header, rows = ["Artifact"], []
    for m, _, _, with_ratio in metrics:
        header += [f"{m} ({lb})" for lb in labels]
        if with_ratio:
            header += [f"{m.split()[0]} {lb}/{ref}" for lb in labels[1:]]
    for n in names:
        row = [str(n)]
        arts = [mp.get(n) for mp in maps]
        for _, f, unit, with_ratio in metrics:
            row += [cell(a, f, unit) for a in arts]
            if with_ratio:
                row += [ratio(arts[0], a, f) for a in arts[1:]]
        rows.append(row)
    out += ["", "## Artifacts", "", _md_table(header, rows)]

    keys = list(dict.fromkeys((c.get("student"), c.get("baseline")) for r in runs for c in r.get("comparisons") or []))
    if keys:
        crow = []
        for s, b in keys:
            per = [next((c for c in r.get("comparisons") or [] if (c.get("student"), c.get("baseline")) == (s, b)),
                        None) for r in runs]
            for label, k, _ in _COMPARISON_ROWS:
                crow.append([f"{s} vs {b}", label] + ["-" if c is None else fmt(c.get(k), "pct") for c in per])
        out += ["", "## Reductions (measured, per run)", "",
                _md_table(["Comparison", "Metric"] + labels, crow, ["l", "l"] + ["r"] * len(labels))]
    return "\n".join(out) + "\n"
