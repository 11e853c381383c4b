"""One bench run as Markdown (:func:`render_markdown`) and as rich console tables (:func:`print_table`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .decisions import (
    decision_section,
    fault_section,
    gate_cell,
    host_load_section,
    paired_rows,
    provenance_section,
    top1_ci,
)
from .formatting import (
    _artifacts,
    _by_name,
    _get,
    _md_table,
    _peak_pct,
    _power_energy,
    _power_mean,
    fmt,
    fmt_millions,
    fmt_signed,
)
from .schema import NA

PAPER = "Le et al. (arXiv 2411.00209)"


MAIN_COLUMNS: list[tuple[str, Callable[[dict], str]]] = [
    ("Artifact", lambda a: str(a.get("name", "?"))),
    ("Model", lambda a: str(a.get("model", "?"))),
    ("Role", lambda a: str(a.get("role", "?"))),
    ("Precision", lambda a: str(a.get("precision", "?"))),
    ("Backend", lambda a: str(a.get("backend", "?"))),
    ("Top-1 %", lambda a: fmt(_get(a, "accuracy", "top1"), "pct")),
    ("Top-1 95 % CI", top1_ci),
    ("Gate", gate_cell),
    ("Macro P %", lambda a: fmt(_get(a, "accuracy", "macro_precision"), "pct")),
    ("Macro R %", lambda a: fmt(_get(a, "accuracy", "macro_recall"), "pct")),
    ("Macro F1 %", lambda a: fmt(_get(a, "accuracy", "macro_f1"), "pct")),
    ("p50 ms", lambda a: fmt(_get(a, "latency_ms", "p50"), "ms")),
    ("p90 ms", lambda a: fmt(_get(a, "latency_ms", "p90"), "ms")),
    ("p99 ms", lambda a: fmt(_get(a, "latency_ms", "p99"), "ms")),
    ("Images/s", lambda a: fmt(_get(a, "throughput", "images_per_s"), "ips")),
    ("Params", lambda a: fmt(a.get("params"), "int")),
    ("MACs (M)", lambda a: fmt_millions(a.get("macs"))),
    ("FLOPs (M)", lambda a: fmt_millions(a.get("flops"))),
    ("at", lambda a: NA if a.get("macs_input_size") is None else f"{a['macs_input_size']} px"),
    ("Size MB", lambda a: fmt(a.get("size_mb"), "size_mb")),
    ("Peak RSS MB", lambda a: fmt(a.get("peak_rss_mb"), "rss_mb")),
    ("Power mW", lambda a: fmt(_power_mean(a), "mW")),
    ("mJ/image", lambda a: fmt(_power_energy(a), "mJ")),
    ("GMAC/s", lambda a: fmt(a.get("mac_rate_gmacs"), "gmacs")),
    ("% of peak", lambda a: fmt(_peak_pct(a), "pct")),
]

#: the columns of :func:`print_table` (a subset of :data:`MAIN_COLUMNS`)
CONSOLE_COLUMNS = ("Artifact", "Precision", "Backend", "Top-1 %", "Top-1 95 % CI", "Gate", "p50 ms", "p99 ms", "Images/s", "Params",
                   "MACs (M)", "at", "Size MB", "Power mW", "mJ/image")

_COMPARISON_ROWS = (
    ("Parameters reduction %", "params_reduction_pct", "params_reduction_pct"),
    ("MACs reduction % (paper: FLOPs)", "macs_reduction_pct", "flops_reduction_pct"),
    ("Power reduction %", "power_reduction_pct", "power_reduction_pct"),
    ("Latency reduction % (p50)", "latency_reduction_pct", "latency_reduction_pct"),
)


def _host_section(run: dict) -> str:
    h = run.get("host") or {}
    rows = [["CPU", str(h.get("cpu", NA))],
            ["Logical CPUs / threads used", f"{h.get('logical_cpus', NA)} / {h.get('threads_used', NA)}"],
            ["OS", str(h.get("os", NA))], ["Python", str(h.get("python", NA))]]
    for k, ver in (h.get("versions") or {}).items():
        rows.append([k, str(ver)])
    j = h.get("jetson")
    rows.append(["Jetson", NA if j is None else (j if isinstance(j, str) else
                                                  ", ".join(f"{k}: {val}" for k, val in j.items()))])
    srcs = []
    for s in h.get("power_sources") or []:
        state = "available" if s.get("available") else "unavailable"
        srcs.append(f"{s.get('source', '?')}: {state}" + (f" ({s['detail']})" if s.get("detail") else ""))
    rows.append(["Power sources", "; ".join(srcs) or "none"])
    return "## Host\n\n" + _md_table(["", ""], rows, ["l", "l"])


def _protocol_section(run: dict) -> str:
    d, p = run.get("data") or {}, run.get("protocol") or {}
    lat_batches = sorted({_get(a, "latency_ms", "batch") for a in _artifacts(run)} - {None})
    lines = [
        "## Data and protocol", "",
        f"- Data: {d.get('kind', NA)}, {fmt(d.get('n_images'), 'int')} images ({d.get('source', NA)}).",
        f"- Latency: batch {', '.join(map(str, lat_batches)) or NA}; {fmt(p.get('warmup'), 'int')} warm-up "
        f"then {fmt(p.get('runs'), 'int')} timed runs per artifact; "
        + (f"artifacts interleaved over {p.get('rounds')} rounds" if p.get("interleaved")
           else f"artifacts run one after another ({p.get('rounds')} rounds)")
        + f"; {p.get('threads', NA)} thread(s). p50/p90/p99 are percentiles of the per-image latencies in ms.",
        f"- Throughput: batch {p.get('throughput_batch', NA)}, images per second"
        + (f", sustained: {p['throughput']}." if p.get("throughput_window_s") and p.get("throughput")
           else ", best of 3 short bursts (runs before the sustained protocol)."),
        "- MACs = multiply-accumulates, FLOPs = 2 x MACs (Conv/Gemm/MatMul of the ONNX graph at the "
        "stated input size; `eo_edge.measure.flops`).",
        "- Peak RSS: a fresh process per artifact that loads it and runs it at the throughput batch (its own "
        "high-water mark, MB).",
    ]
    if run.get("phases_s"):
        ph = run["phases_s"]
        lines.append("- Where this run's time went (wall s): " + ", ".join(f"{k} {v:.1f}" for k, v in ph.items())
                     + f"; {sum(ph.values()):.0f} s in all.")
    peak = run.get("peak") or {}
    by_be = run.get("peak_by_backend") or {}
    if by_be:
        lines += ["", "Peak MAC rate of this host, measured in each backend (what `% of peak` divides by, "
                  "per artifact's own backend):", "",
                  _md_table(["Backend", "Precision", "GMAC/s", "Method"],
                            [[be, k, fmt(v.get("gmacs_per_s"), "gmacs"), str(v.get("method", NA))]
                             for be, d in by_be.items() for k, v in d.items() if isinstance(v, dict)],
                            ["l", "l", "r", "l"])]
    elif peak:
        lines += ["", "Peak MAC rate of this host (what `% of peak` divides by):", "",
                  _md_table(["Precision", "GMAC/s", "Method"],
                            [[k, fmt(v.get("gmacs_per_s"), "gmacs"), str(v.get("method", NA))]
                             for k, v in peak.items() if isinstance(v, dict)], ["l", "r", "l"])]
    return "\n".join(lines)


def _power_section(run: dict) -> str:
    rows: list[list[str]] = []
    notes: list[str] = []
    for a in _artifacts(run):
        pw = a.get("power") or {}
        if pw.get("source", NA) == NA:
            continue
        rows.append([a["name"], str(pw.get("source")), fmt(pw.get("mean_mW"), "mW"), fmt(pw.get("idle_mW"), "mW"),
                     fmt(pw.get("above_idle_mW"), "mW"), fmt(pw.get("energy_per_image_mJ"), "mJ"),
                     fmt(pw.get("energy_per_image_above_idle_mJ"), "mJ"), str(pw.get("scope") or ""),
                     fmt(pw.get("duration_s"), "s"), str(pw.get("n_samples", NA))])
        for key in ("warning", "note", "error"):
            if pw.get(key):
                notes.append(f"- {a['name']}: {pw[key]}")
    if not rows:
        return ("## Power\n\nNo power source was readable on this host: power and energy are n/a "
                "(see Host > Power sources).")
    return ("## Power\n\nEnergy per image = mean power x timed window / images (mW x s = mJ); "
            "'above idle' subtracts the idle baseline measured just before.\n\n"
            + _md_table(["Artifact", "Source", "Mean mW", "Idle mW", "Above idle mW", "mJ/image",
                         "mJ/image above idle", "Scope", "Window s", "Samples"], rows)
            + ("\n\n" + "\n".join(notes) if notes else ""))


def _fastest_section(run: dict) -> str:
    """bench --backend all: per artifact, the fastest runtime on this host (batch-1 p50)."""
    rows = []
    for f in run.get("fastest_backend") or []:
        p50 = f["p50_ms"]
        others = ", ".join(f"{b} {fmt(v, 'ms')}" for b, v in sorted(p50.items()) if b != f["fastest"])
        ips = f.get("images_per_s") or {}
        rows.append([f["artifact"], f"**{f['fastest']}**", fmt(p50[f["fastest"]], "ms"), others,
                     ", ".join(f"{b} {fmt(v, 'ips')}" for b, v in sorted(ips.items()))])
    if not rows:
        return ""
    return ("## Fastest runtime per artifact on this host\n\nBatch-1 p50 latency, every runtime measured in the "
            "same interleaved rounds.\n\n" + _md_table(["Artifact", "Fastest", "p50 ms", "Others (p50 ms)",
                                                        "Images/s (batch)"], rows, ["l", "l", "r", "l", "l"]))


def _failed_section(run: dict) -> str:
    """Artifacts that could not be built or opened (e.g. a TensorRT build failure), and those bench
    compiled itself that fail their accuracy gate (left out, ``left_out``): one row each."""
    failed = (run.get("failed") or []) + (run.get("left_out") or [])
    if not failed:
        return ""
    rows = [[f.get("name", "?"), f.get("precision", "?"), f"`{Path(f.get('path', '')).name}`",
             f.get("error") or f.get("reason", "")] for f in failed]
    return "## Not measured\n\n" + _md_table(["Artifact", "Precision", "File", "Reason"], rows, ["l", "l", "l", "l"])


def _comparison_section(run: dict) -> str:
    comps = run.get("comparisons") or []
    if not comps:
        return ""
    arts = _by_name(run)
    out = ["## Paper comparison", "",
           f"Reduction = 100 x (1 - student / baseline), measured here, beside the claim of {PAPER}."]
    for c in comps:
        s, b = arts.get(c.get("student"), {}), arts.get(c.get("baseline"), {})
        paper = c.get("paper") or {}
        rows = [[label, fmt(c.get(ours), "pct"), fmt(paper.get(theirs), "pct")]
                for label, ours, theirs in _COMPARISON_ROWS]
        lr = c.get("latency_ratio")
        if lr:
            rows.append(["Latency ratio student / baseline (median [p05, p95])",
                         f"{fmt(lr.get('median'), 'ratio')} [{fmt(lr.get('p05'), 'ratio')}, "
                         f"{fmt(lr.get('p95'), 'ratio')}] over {lr.get('rounds')} rounds", NA])
        rows.append(["Top-1 difference (pts, student - baseline)", fmt_signed(c.get("top1_delta_pts")),
                     fmt_signed(paper.get("top1_delta_pts"))])
        rows += paired_rows(c)
        out += ["", f"### {c.get('student')} vs {c.get('baseline')}", "",
                f"MACs at {s.get('macs_input_size', NA)} px (student) and {b.get('macs_input_size', NA)} px "
                f"(baseline); power: {(s.get('power') or {}).get('source', NA)} / "
                f"{(b.get('power') or {}).get('source', NA)}.", "",
                _md_table(["Metric", "Measured", "Paper"], rows)]
    return "\n".join(out)


def _robustness_section(run: dict) -> str:
    rows = []
    for a in _artifacts(run):
        for cname, sev in (a.get("robustness") or {}).items():
            vals = [sev.get(str(k)) for k in range(1, 6)]
            got = [x for x in vals if x is not None]
            rows.append([a["name"], cname, fmt(_get(a, "accuracy", "top1"), "pct")] + [fmt(x, "pct") for x in vals]
                        + [fmt(sum(got) / len(got) if got else None, "pct")])
    if not rows:
        return ""
    return ("## Robustness (top-1 % under corruption)\n\nImageNet-C corruptions (Hendrycks & Dietterich, "
            "ICLR 2019) scaled to the image size, see `eo_edge.measure.corruptions`; mean over the severities run.\n\n"
            + _md_table(["Artifact", "Corruption", "Clean", "s1", "s2", "s3", "s4", "s5", "Mean"], rows,
                        ["l", "l"] + ["r"] * 7))


def _scene_section(run: dict) -> str:
    """``bench --scene``: scene throughput and real-time factor per artifact and backend."""
    sc = run.get("scene")
    if not sc:
        return ""
    s, sen = sc["scene"], sc["sensor"]
    rows = []
    for r in sc["artifacts"]:
        if r.get("error"):
            rows.append([r["name"], r["backend"], NA, NA, NA, NA, NA, f"error: {r['error']}"])
            continue
        rows.append([r["name"], r["backend"], fmt(r["tiles_per_s"], "ips"), fmt(r.get("inference_only_tiles_per_s"), "ips"),
                     f"{r['mpx_per_s']:.2f}", NA if r.get("km2_per_s") is None else f"{r['km2_per_s']:,.1f}",
                     f"{r['realtime_factor']:.3f}", "keeps up" if r["realtime_factor"] >= 1 else "does not keep up"])
    return (f"## Scene throughput and real-time factor\n\n`{s['path']}`: {s['width']:,} x {s['height']:,} px, "
            f"{s['bands']} bands {s['dtype']}. {sc['how']}; {sc['batch']} tiles per batch. Real-time factor = "
            f"scene Mpx/s over {sen['title']}'s {sen['pixel_rate_mpx_s']:.2f} Mpx/s ({sen['swath_km']:g} km swath x "
            f"{sen['ground_speed_km_s']:.2f} km/s / ({sen['pixel_m']:g} m)^2; {sen['source']}).\n\n"
            + _md_table(["Artifact", "Backend", "Tiles/s", "Inference-only tiles/s", "Mpx/s", "km²/s",
                         "Real-time factor", ""], rows, ["l", "l"] + ["r"] * 5 + ["l"]))


def render_markdown(run: dict, images: dict[str, str] | None = None) -> str:
    """The report of one bench run as Markdown.

    Sections: title, host, data and protocol (incl. peak MAC rates), one table of every
    artifact (:data:`MAIN_COLUMNS`), power, paper comparison (measured reduction beside the
    paper's claim), robustness (if present), figures (if ``images`` maps captions to
    relative PNG paths). Every number is formatted from the JSON with :func:`fmt`.
    """
    h = run.get("host") or {}
    parts = [f"# eo-edge benchmark: {h.get('cpu', 'unknown host')}",
             f"Run {run.get('created', NA)} by `{run.get('command', 'eo-edge bench')}` "
             f"(eo-edge {run.get('eo_edge_version', NA)}"
             + (f", commit `{run['eo_edge_commit']}`" if run.get("eo_edge_commit") else "")
             + f", schema {run.get('schema', NA)}). "
             + ("**The host was busy during this run: see Host load.** " if (run.get("host_load") or {}).get("busy")
                else "") +
             "MACs = multiply-accumulates, FLOPs = 2 x MACs.",
             _host_section(run), _protocol_section(run),
             "## Results\n\nTop-1 and macro precision/recall/F1 in % on the data above; latency in ms per "
             "image; MACs and FLOPs in millions per image at the input size in `at`; size of the model file "
             "in MB; peak resident memory of the process in MB; MAC rate = MACs x throughput (images/s at the throughput batch). "
             "Top-1 95 % CI = Wilson score interval of the proportion of images right: two artifacts whose "
             "intervals overlap may not differ; the paired McNemar test in the comparison says whether they do. "
             "Gate = the compiled artifact's top-1 drop vs its FP32 parent on these images (see below).\n\n"
             + _md_table([c for c, _ in MAIN_COLUMNS], [[f(a) for _, f in MAIN_COLUMNS] for a in _artifacts(run)],
                         ["l"] * 5 + ["r"] * (len(MAIN_COLUMNS) - 5)),
             provenance_section(run), _power_section(run), decision_section(run), _fastest_section(run),
             _failed_section(run), _comparison_section(run), _robustness_section(run), fault_section(run),
             _scene_section(run), host_load_section(run)]
    if images:
        parts.append("## Figures\n\n" + "\n\n".join(f"![{cap}]({path})" for cap, path in images.items()))
    return "\n\n".join(p for p in parts if p) + "\n"


def print_table(run: dict, console: Any) -> None:
    """Print the main columns (:data:`CONSOLE_COLUMNS`) and the paper comparison as rich tables.

    Args:
        console: a ``rich.console.Console``.
    """
    from rich.table import Table

    cols = [(n, f) for n, f in MAIN_COLUMNS if n in CONSOLE_COLUMNS]
    t = Table(title=f"eo-edge bench: {_get(run, 'host', 'cpu') or 'unknown host'}  "
                    f"({_get(run, 'data', 'kind') or NA}, {fmt(_get(run, 'data', 'n_images'), 'int')} images)")
    for i, (n, _) in enumerate(cols):
        t.add_column(n, justify="left" if i < 3 else "right", no_wrap=i == 0)
    for a in _artifacts(run):
        t.add_row(*[f(a) for _, f in cols])
    console.print(t)
    for c in run.get("comparisons") or []:
        ct = Table(title=f"{c.get('student')} vs {c.get('baseline')}")
        for n in ("Metric", "Measured", "Paper"):
            ct.add_column(n, justify="left" if n == "Metric" else "right")
        paper = c.get("paper") or {}
        for label, ours, theirs in _COMPARISON_ROWS:
            ct.add_row(label, fmt(c.get(ours), "pct"), fmt(paper.get(theirs), "pct"))
        lr = c.get("latency_ratio")
        if lr:
            ct.add_row(r"Latency ratio (median \[p05, p95])",
                       f"{fmt(lr.get('median'), 'ratio')} [{fmt(lr.get('p05'), 'ratio')}, {fmt(lr.get('p95'), 'ratio')}]",
                       NA)
        ct.add_row("Top-1 difference (pts)", fmt_signed(c.get("top1_delta_pts")), NA)
        for r in paired_rows(c):
            ct.add_row(*(x.replace("[", r"\[") for x in r))
        console.print(ct)
    console.print("MACs = multiply-accumulates, FLOPs = 2 x MACs; latency in ms per image (batch 1).")
