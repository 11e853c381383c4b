"""The paper comparison: students vs the FP32 baseline, the paper's claimed reductions, the fastest backend per artifact."""

from __future__ import annotations

from ..metrics.stats import mcnemar
from .artifacts import Artifact
from .timing import ratio_stats

PAPER_CLAIMS = {"params_reduction_pct": 97.5, "flops_reduction_pct": 96.7, "power_reduction_pct": 86.2,
                "latency_reduction_pct": 63.5}


def reduction_pct(student: float | None, baseline: float | None) -> float | None:
    """100 x (1 - student / baseline), or None when either is missing."""
    if student is None or baseline is None or not baseline:
        return None
    return 100.0 * (1.0 - student / baseline)


def fastest_backends(results: list[dict]) -> list[dict]:
    """Per (model, precision) measured on several backends: the fastest by batch-1 p50 latency,
    with every backend's p50 and images/s (bench --backend all). Empty with one backend."""
    by: dict[str, list[dict]] = {}
    for r in results:  # names are <model>-<form>@<backend> under --backend all
        if r.get("latency_ms"):
            by.setdefault(r["name"].split("@")[0], []).append(r)
    out = []
    for artifact, rs in sorted(by.items()):
        if len({r["backend"] for r in rs}) < 2:
            continue
        best = min(rs, key=lambda r: r["latency_ms"]["p50"])
        out.append({"artifact": artifact, "fastest": best["backend"], "fastest_name": best["name"],
                    "p50_ms": {r["backend"]: r["latency_ms"]["p50"] for r in rs},
                    "images_per_s": {r["backend"]: (r.get("throughput") or {}).get("images_per_s") for r in rs}})
    return out


def compare_to_baseline(arts: list[Artifact]) -> list[dict]:
    """Each student artifact vs each FP32 baseline (MobileViT family or role "baseline"): reductions in params,
    MACs, power, latency (percent), the interleaved latency ratio with its spread, top-1 delta,
    beside the paper's claims (Le et al., arXiv 2411.00209, abstract and Table 3). With several runtimes
    measured, each artifact is taken on its fastest one (batch-1 p50; ``backends`` says which), so the
    comparison shows the best this host can do."""
    measured = [a for a in arts if a.result and a.result.get("_rounds")]
    several = len({a.backend for a in measured}) > 1
    if several:  # every runtime measured: each artifact on its fastest one (batch-1 p50), said in the row
        best: dict[str, Artifact] = {}
        for a in measured:
            k = a.name.split("@")[0]
            if k not in best or a.result["latency_ms"]["p50"] < best[k].result["latency_ms"]["p50"]:
                best[k] = a
        measured = list(best.values())
    bases = [a for a in measured if a.role == "baseline" and a.precision == "fp32"]
    out = []
    for b in bases:
        for s in measured:
            if s.role != "student" or (not several and s.backend != b.backend):
                continue  # one runtime: like with like on it; several: each on its fastest
            sr, br = s.result, b.result
            pw_s = sr.get("power", {}).get("mean_mW")
            pw_b = br.get("power", {}).get("mean_mW")
            out.append({
                "student": s.name, "baseline": b.name,
                "params_reduction_pct": reduction_pct(sr.get("params"), br.get("params")),
                "macs_reduction_pct": reduction_pct(sr.get("macs"), br.get("macs")),
                "power_reduction_pct": reduction_pct(pw_s, pw_b),
                "latency_reduction_pct": reduction_pct(sr["latency_ms"]["p50"], br["latency_ms"]["p50"]),
                "latency_ratio": ratio_stats(sr["_rounds"], br["_rounds"]),
                "top1_delta_pts": sr["accuracy"]["top1"] - br["accuracy"]["top1"],
                # paired on the same images: exact McNemar p-value and the 95 % interval of the difference
                "top1_paired": (mcnemar(s.logits.argmax(1) == s.labels, b.logits.argmax(1) == b.labels)
                                if s.logits is not None and b.logits is not None and len(s.logits) == len(b.logits)
                                else None),
                "backends": {"student": s.backend, "baseline": b.backend,
                             "choice": "each artifact's fastest runtime (batch-1 p50)" if several else "the one measured"},
                "paper": dict(PAPER_CLAIMS)})
    return out
