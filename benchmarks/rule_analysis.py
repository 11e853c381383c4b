"""What the paper's confidence rule does on our teachers, without training (issue 12, item 3/4).

The rule (eo_edge.train.distill: Le et al., arXiv 2411.00209, the notebook's DistillationLoss) picks
the teachers' weights from their max softmax(z / T) probability, batch-averaged, against the
thresholds 0.4 / 0.6. This script takes the cached teacher logits on every training image and
D4 view (eo_edge.train.teacher_cache: the exact logits distillation uses) and reports, for several
temperatures at which the confidence is measured:

- the teachers' mean confidence (all views);
- per batch (the paper's rule): the fraction of random training batches of 128 that take each
  branch, and the mean weights and distillation share lambda;
- per sample: the fraction of images taking each branch, and the weights' spread;
- the spread of the batch-mean confidence (1st-99th percentile), and a threshold sweep at one T
  (``--sweep-temperature``, ``--highs``; ``low = high - 0.2``): which thresholds would make the
  per-batch rule switch at all.

So it shows whether "dynamic" weighting is dynamic at all at T = 5 (the paper's setting) and
where a difference to static weighting could come from (per-sample weighting, measuring the
confidence at a lower T, other thresholds). No training; seconds once the teacher caches exist (an ablation run
builds them; otherwise this builds them, ~10 min per teacher on 2 cores).

Usage:
    python benchmarks/rule_analysis.py --data ../shared/data/EuroSAT.zip \
        --teacher models/resnet16_eurosat64.pt --teacher models/mobilevitv2_100_eurosat64.pt \
        --out benchmarks/ablation/rule_analysis.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _fractions(branch: "torch.Tensor") -> dict:
    """int64 branch indices (eo_edge.train.distill.rule_branches) -> {BRANCHES name: fraction}."""
    import torch

    from eo_edge.train.distill import BRANCHES

    c = torch.bincount(branch.reshape(-1), minlength=len(BRANCHES)).double()
    return {name: float(x) for name, x in zip(BRANCHES, (c / c.sum()).tolist())}


def _confidences(logits: np.ndarray, temperature: float, batches: np.ndarray) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Per-image and batch-mean teacher confidences max softmax(z / T) (eo_edge.train.distill.teacher_confidence).

    Args:
        logits: float32 (K, N, 8, C) teacher logits (teacher, image, D4 view, class).
        temperature: T.
        batches: int (n_batches, batch) indices into the N * 8 image views.

    Returns:
        float64 ``(N * 8, K)`` per image view and ``(n_batches, K)`` batch means.
    """
    import torch

    k, n, v, _ = logits.shape
    flat = torch.from_numpy(logits.reshape(k, n * v, -1).astype(np.float64))
    conf = torch.softmax(flat / temperature, dim=-1).amax(dim=-1).T.contiguous()
    return conf, conf[torch.from_numpy(batches)].mean(dim=1)


def analyse(logits: np.ndarray, temperatures: list[float], batch: int = 128, n_batches: int = 2000,
            seed: int = 0) -> list[dict]:
    """Branch frequencies and weights of the rule per temperature.

    Args:
        logits: float32 (K, N, 8, C) teacher logits (teacher, image, D4 view, class).
        temperatures: temperatures T at which the confidence max softmax(z / T) is measured.
        batch: batch size of the per-batch rule (training's 128).
        n_batches: random batches drawn (image and view uniform, as training samples them).

    Returns:
        one dict per T: ``mean_confidence`` (K,), ``batch_confidence_p01_p50_p99`` (K, 3: the 1st,
        50th and 99th percentile of the batch-mean confidence per teacher), ``per_batch`` and ``per_sample`` with
        ``branches`` (fraction per eo_edge.train.distill.BRANCHES name), ``weights_mean`` (K,),
        ``kd_share_mean`` (lambda) and, per sample, ``weights_std`` (K,).
    """
    import torch

    from eo_edge.train.distill import PAPER_FLOOR, PAPER_HIGH, PAPER_LOW, _rule_weights, rule_branches

    n_views = logits.shape[1] * logits.shape[2]
    rng = np.random.default_rng(seed)
    out = []
    for t in temperatures:
        conf, conf_b = _confidences(logits, t, rng.integers(0, n_views, size=(n_batches, batch)))
        w_b = _rule_weights(conf_b, PAPER_LOW, PAPER_HIGH, PAPER_FLOOR)
        w_i = _rule_weights(conf, PAPER_LOW, PAPER_HIGH, PAPER_FLOOR)
        q = torch.quantile(conf_b, torch.tensor([0.01, 0.5, 0.99], dtype=conf_b.dtype), dim=0)  # (3, K)
        out.append({"temperature": t, "mean_confidence": conf.mean(dim=0).tolist(),
                    "batch_confidence_p01_p50_p99": q.T.tolist(),
                    "per_batch": {"branches": _fractions(rule_branches(conf_b)), "weights_mean": w_b.mean(dim=0).tolist(),
                                  "weights_std": w_b.std(dim=0).tolist(), "kd_share_mean": float(w_b.sum(1).mean() / 2)},
                    "per_sample": {"branches": _fractions(rule_branches(conf)), "weights_mean": w_i.mean(dim=0).tolist(),
                                   "weights_std": w_i.std(dim=0).tolist(), "kd_share_mean": float(w_i.sum(1).mean() / 2)}})
    return out


def threshold_sweep(logits: np.ndarray, temperature: float, highs: list[float], gap: float = 0.2,
                    batch: int = 128, n_batches: int = 2000, seed: int = 0) -> list[dict]:
    """Branch frequencies of the rule at one temperature for other thresholds.

    The paper fixes ``low = 0.4`` and ``high = 0.6``; here ``high`` runs over ``highs`` and
    ``low = high - gap`` (the paper's gap is 0.2), the floor stays 0.1. Per batch, the rule
    can only switch branches when a threshold lies inside the narrow spread of the
    batch-mean confidences (see ``batch_confidence_p01_p50_p99`` of :func:`analyse`).

    Args:
        logits: float32 (K, N, 8, C) teacher logits (teacher, image, D4 view, class).
        temperature: T at which the confidence max softmax(z / T) is measured.
        highs: ``high`` thresholds to try (probabilities in (0, 1]).
        gap: ``high - low``.
        batch, n_batches, seed: as in :func:`analyse` (the same random batches for every row).

    Returns:
        one dict per ``high``: ``high``, ``low``, ``per_batch`` and ``per_sample`` with
        ``branches`` (fraction per eo_edge.train.distill.BRANCHES name) and ``kd_share_mean`` (lambda).
    """
    from eo_edge.train.distill import PAPER_FLOOR, _rule_weights, rule_branches

    n_views = logits.shape[1] * logits.shape[2]
    conf, conf_b = _confidences(logits, temperature,
                                np.random.default_rng(seed).integers(0, n_views, size=(n_batches, batch)))
    out = []
    for high in highs:
        low = round(high - gap, 6)
        row = {"high": high, "low": low}
        for key, c in (("per_batch", conf_b), ("per_sample", conf)):
            w = _rule_weights(c, low, high, PAPER_FLOOR)
            row[key] = {"branches": _fractions(rule_branches(c, low, high)), "kd_share_mean": float(w.sum(1).mean() / 2)}
        out.append(row)
    return out


def render_sweep(rows: list[dict], temperature: float) -> str:
    """Markdown table of :func:`threshold_sweep`'s rows."""
    lines = [f"Other thresholds, confidence at T = {temperature:g} (floor 0.1; the paper's low / high: 0.40 / 0.60):", "",
             "| low / high | per batch: branches (lambda) | per sample: branches (lambda) |",
             "| --- | --- | --- |"]
    for r in rows:
        cells = [", ".join(f"{k} {v:.1%}" for k, v in r[key]["branches"].items() if v >= 0.0005)
                 + f" ({r[key]['kd_share_mean']:.2f})" for key in ("per_batch", "per_sample")]
        lines.append(f"| {r['low']:.2f} / {r['high']:.2f} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def render(rows: list[dict], teachers: list[str]) -> str:
    """Markdown table of :func:`analyse`'s rows."""
    names = ", ".join(Path(t).stem for t in teachers)
    lines = [f"Teachers: {names}. Confidence = max softmax(z / T), per image or batch-mean (batches of 128).", "",
             "| T | mean confidence | batch-mean confidence p01-p99 | per batch: branches "
             "| per batch: weights (lambda) | per sample: branches | per sample: weights mean ± std (lambda) |",
             "| ---: | --- | --- | --- | --- | --- | --- |"]

    def br(d: dict) -> str:
        return ", ".join(f"{k} {v:.1%}" for k, v in d.items() if v >= 0.0005)

    def w(d: dict, spread: bool) -> str:
        ws = ", ".join(f"{m:.2f}" + (f" ± {s:.2f}" if spread else "") for m, s in zip(d["weights_mean"], d["weights_std"]))
        return f"{ws} ({d['kd_share_mean']:.2f})"

    for r in rows:
        spread = ", ".join(f"{q[0]:.3f}-{q[2]:.3f}" for q in r["batch_confidence_p01_p50_p99"])
        lines.append(f"| {r['temperature']:g} | {', '.join(f'{c:.3f}' for c in r['mean_confidence'])} | {spread} | "
                     f"{br(r['per_batch']['branches'])} | {w(r['per_batch'], False)} | "
                     f"{br(r['per_sample']['branches'])} | {w(r['per_sample'], True)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/EuroSAT.zip"))
    ap.add_argument("--teacher", type=Path, action="append", required=True)
    ap.add_argument("--temperatures", default="1,2,3,4,5")
    ap.add_argument("--sweep-temperature", type=float, default=5.0,
                    help="T of the threshold sweep (the paper's T = 5)")
    ap.add_argument("--highs", default="0.4,0.45,0.5,0.55,0.6,0.65,0.7",
                    help="'high' thresholds of the sweep, comma-separated (low = high - 0.2)")
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/ablation/rule_analysis.json"))
    a = ap.parse_args()
    from eo_edge.data.resolve import resolve_data
    from eo_edge.data.split import train_rows
    from eo_edge.home import home_dir
    from eo_edge.train.teacher_cache import build_teacher_cache

    data = resolve_data(a.data, a.home, progress=False)
    cache = build_teacher_cache(a.teacher, data, train_rows(data), home_dir(a.home) / "teacher-cache", progress=False)
    rows = analyse(cache.logits, [float(x) for x in a.temperatures.split(",")])
    sweep = threshold_sweep(cache.logits, a.sweep_temperature, [float(x) for x in a.highs.split(",")])
    cmd = ("python benchmarks/rule_analysis.py --data " + str(a.data) + "".join(f" --teacher {t}" for t in a.teacher)
           + f" --temperatures {a.temperatures} --sweep-temperature {a.sweep_temperature:g} --highs {a.highs}"
           + f" --out {a.out}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"schema": "eo-edge-rule-analysis/1", "command": cmd,
                                 "teachers": [str(t) for t in a.teacher], "rows": rows,
                                 "threshold_sweep": {"temperature": a.sweep_temperature, "rows": sweep}},
                                indent=2) + "\n")
    text = render(rows, [str(t) for t in a.teacher]) + "\n" + render_sweep(sweep, a.sweep_temperature)
    a.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
