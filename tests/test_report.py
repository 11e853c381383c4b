"""Bench-run rendering: schema checks, Markdown traceability, Pareto front, plots, comparisons."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from eo_edge.errors import EOEdgeError
from eo_edge.fileio import write_json
from eo_edge.report import (SCHEMA, compare_markdown, fmt, load_run, pareto_front, plot_all, print_table,
                            render_markdown, validate, write_report)

# (name, model, role, precision, top1, p50 ms, images/s, params, MACs at 64 px, size MB, RSS MB)
ARTS = [
    ("resnet8-fp32", "resnet8", "student", "fp32", 96.62, 0.52, 4100.0, 103_306, 58_398_336, 0.414, 182.4),
    ("resnet8-fp16", "resnet8", "student", "fp16", 96.60, 0.95, 2300.0, 103_306, 58_398_336, 0.212, 190.1),
    ("resnet8-int8", "resnet8", "student", "int8", 96.31, 0.41, 5200.0, 103_306, 58_398_336, 0.131, 201.7),
    ("resnet16-fp32", "resnet16", "student", "fp32", 97.35, 0.93, 2250.0, 177_562, 115_021_440, 0.716, 185.0),
    ("resnet16-fp16", "resnet16", "student", "fp16", 97.33, 1.71, 1210.0, 177_562, 115_021_440, 0.364, 193.3),
    ("resnet16-int8", "resnet16", "student", "int8", 97.02, 0.72, 2900.0, 177_562, 115_021_440, 0.207, 204.9),
    ("mobilevitv2_100-fp32", "mobilevitv2_100", "baseline", "fp32", 97.90, 3.10, 610.0, 4_363_981, 113_228_800,
     17.52, 260.2),
]


PEAK = {"fp32": 412.0, "int8": 1310.0}  # GMAC/s


def _latency(p50: float, seed: int, n: int = 2000) -> dict:
    rng = np.random.default_rng(seed)
    s = p50 * np.exp(0.06 * rng.standard_normal(n)) * np.where(rng.random(n) < 0.01, 1.8, 1.0)
    s = np.round(s, 5)
    return {"batch": 1, "p50": round(float(np.percentile(s, 50)), 5), "p90": round(float(np.percentile(s, 90)), 5),
            "p99": round(float(np.percentile(s, 99)), 5), "mean": round(float(s.mean()), 5),
            "std": round(float(s.std()), 5), "n": n, "samples": s.tolist()}


def make_run(jetson: bool = False) -> dict:
    arts = []
    for i, (name, model, role, prec, top1, p50, ips, params, macs, size, rss) in enumerate(ARTS):
        if jetson:
            p50, ips = p50 * 2.4, ips / 2.2
        lat = _latency(p50, i)
        a = {"name": name, "model": model, "role": role, "precision": prec, "backend": "onnxruntime",
             "path": f"models/{name}.onnx", "input_size": 64,
             "accuracy": {"top1": top1, "macro_precision": top1 - 0.1, "macro_recall": top1 - 0.2,
                          "macro_f1": top1 - 0.15, "n_images": 4050},
             "latency_ms": lat, "throughput": {"batch": 64, "images_per_s": ips},
             "params": params, "macs": macs, "flops": 2 * macs, "macs_input_size": 64, "size_mb": size,
             "peak_rss_mb": rss, "power": {"source": "n/a"},
             "mac_rate_gmacs": round(macs / (lat["p50"] * 1e-3) / 1e9, 3),
             "peak_fraction": round(macs / (lat["p50"] * 1e-3) / 1e9 / PEAK.get(prec, PEAK["fp32"]), 4)}
        if jetson:
            mean_mw = 5200.0 + 30 * i
            a["power"] = {"source": "tegrastats", "mean_mW": mean_mw, "idle_mW": 4100.0,
                          "above_idle_mW": mean_mw - 4100.0, "n_samples": 40, "duration_s": 2.0,
                          "scope": "board input (VDD_IN)", "note": "",
                          "energy_per_image_mJ": round(mean_mw / ips, 4),
                          "energy_per_image_above_idle_mJ": round((mean_mw - 4100.0) / ips, 4)}
        if name in ("resnet8-int8", "mobilevitv2_100-fp32"):
            a["robustness"] = {"gaussian_noise": {str(s): round(top1 - 6.5 * s, 2) for s in range(1, 6)},
                               "motion_blur": {str(s): round(top1 - 3.1 * s, 2) for s in range(1, 6)}}
        arts.append(a)
    s8, mv = arts[2], arts[6]
    comp = {"student": "resnet8-int8", "baseline": "mobilevitv2_100-fp32",
            "params_reduction_pct": round(100 * (1 - s8["params"] / mv["params"]), 2),
            "macs_reduction_pct": round(100 * (1 - s8["macs"] / mv["macs"]), 2),
            "power_reduction_pct": None if not jetson else round(
                100 * (1 - s8["power"]["mean_mW"] / mv["power"]["mean_mW"]), 2),
            "latency_reduction_pct": round(100 * (1 - s8["latency_ms"]["p50"] / mv["latency_ms"]["p50"]), 2),
            "latency_ratio": {"median": 0.1322, "p05": 0.1281, "p95": 0.1394, "rounds": 10},
            "top1_delta_pts": round(s8["accuracy"]["top1"] - mv["accuracy"]["top1"], 2),
            "paper": {"params_reduction_pct": 97.5, "flops_reduction_pct": 96.7, "power_reduction_pct": 86.2,
                      "latency_reduction_pct": 63.5}}
    return {
        "schema": SCHEMA, "created": "2026-11-21T21:00:00Z", "eo_edge_version": "0.1.0", "command": "eo-edge bench",
        "host": {"cpu": "NVIDIA Carmel ARMv8.2" if jetson else "AMD EPYC 7B13 64-Core Processor",
                 "logical_cpus": 6 if jetson else 2, "threads_used": 2, "os": "Linux-5.15-x86_64-with-glibc2.35",
                 "python": "3.11.7", "versions": {"onnxruntime": "1.31.1", "numpy": "2.2.1"},
                 "jetson": {"model": "Jetson Xavier NX", "jetpack": "5.1.2", "power_mode": "MODE_20W_6CORE"}
                 if jetson else None,
                 "power_sources": [{"source": "tegrastats", "available": True, "detail": "/usr/bin/tegrastats"}]
                 if jetson else [{"source": "rapl", "available": False,
                                  "detail": "/sys/class/powercap not readable"}]},
        "data": {"kind": "test split", "n_images": 4050, "source": "~/.eo-edge/datasets/eurosat (test, seed 0)"},
        "protocol": {"warmup": 50, "runs": 200, "throughput_batch": 64, "interleaved": True, "rounds": 10,
                     "threads": 2},
        "peak": {"fp32": {"gmacs_per_s": PEAK["fp32"], "method": "ONNX Runtime MatMul 1024x1024x1024, fp32"},
                 "int8": {"gmacs_per_s": PEAK["int8"], "method": "ONNX Runtime MatMulInteger 1024^3, int8"}},
        "artifacts": arts, "comparisons": [comp]}


@pytest.fixture
def run() -> dict:
    return make_run()


def test_valid_run_and_json_round_trip(run):
    assert validate(run) == []
    assert validate(json.loads(json.dumps(run))) == []
    assert validate(make_run(jetson=True)) == []


@pytest.mark.parametrize("breaker, needle", [
    (lambda r: r.pop("host"), "host: missing"),
    (lambda r: r.__setitem__("schema", "eo-edge-bench/0"), "schema: expected 'eo-edge-bench/1'"),
    (lambda r: r["artifacts"][2]["latency_ms"].__setitem__("p50", -0.1), "artifacts[2].latency_ms.p50: negative"),
    (lambda r: r["artifacts"][0]["latency_ms"].__setitem__("p90", 99.0), "percentiles not ordered"),
    (lambda r: r["artifacts"][0]["latency_ms"]["samples"].append(-1.0), "latency_ms.samples"),
    (lambda r: r["artifacts"][0]["latency_ms"]["samples"].extend([1.0] * 10), "at most 2000"),
    (lambda r: r["artifacts"][0]["latency_ms"].__setitem__("samples_stride", 2),
     "2000 samples, but samples_stride 2 of n = 2000 keeps 1000"),
    (lambda r: r["artifacts"][0]["latency_ms"].__setitem__("samples_stride", 0), "samples_stride: below 1"),
    (lambda r: r["artifacts"][1].__setitem__("precision", "int4"), "artifacts[1].precision"),
    (lambda r: r["artifacts"][1].__setitem__("flops", 1), "must be 2 x macs"),
    (lambda r: r["artifacts"][1]["accuracy"].pop("top1"), "artifacts[1].accuracy.top1: missing"),
    (lambda r: r["artifacts"][1]["accuracy"].__setitem__("top1", 101.0), "above 100"),
    (lambda r: r["artifacts"][1].__setitem__("name", "resnet8-fp32"), "duplicate artifact name"),
    (lambda r: r["artifacts"][1]["throughput"].__setitem__("images_per_s", 0), "not positive"),
    (lambda r: r["artifacts"][1].__setitem__("params", True), "expected int"),
    (lambda r: r["comparisons"][0].__setitem__("student", "resnet99-int8"), "no artifact named 'resnet99-int8'"),
    (lambda r: r["comparisons"][0]["latency_ratio"].__setitem__("p05", 0.5), "not ordered"),
    (lambda r: r.__setitem__("created", "yesterday"), "created: not an ISO 8601"),
    (lambda r: r["protocol"].__setitem__("runs", 0), "protocol.runs: below 1"),
    (lambda r: r.__setitem__("artifacts", []), "artifacts: empty"),
])
def test_validate_rejects(run, breaker, needle):
    breaker(run)
    problems = validate(run)
    assert problems and any(needle in p for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_validate_non_object():
    assert validate([1, 2]) and validate(None)


def _row(md: str, first_cell: str) -> list[str]:
    line = next(ln for ln in md.splitlines() if ln.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_markdown_numbers_trace_back_to_json(run):
    md = render_markdown(run)
    assert md.startswith("# eo-edge benchmark: AMD EPYC 7B13")
    assert "MACs = multiply-accumulates, FLOPs = 2 x MACs" in md
    a = run["artifacts"][2]  # resnet8-int8
    row = _row(md, "resnet8-int8")
    assert row[:5] == ["resnet8-int8", "resnet8", "student", "int8", "onnxruntime"]
    lat, acc = a["latency_ms"], a["accuracy"]
    # the Wilson interval and the gate follow top-1 (this older run recorded neither)
    assert row[6:8] == ["n/a", "n/a"]
    row = row[:6] + row[8:]
    assert row[5:16] == [f"{acc['top1']:.1f}", f"{acc['macro_precision']:.1f}", f"{acc['macro_recall']:.1f}",
                         f"{acc['macro_f1']:.1f}", f"{lat['p50']:.3f}", f"{lat['p90']:.3f}", f"{lat['p99']:.3f}",
                         "5,200", "103,306", "58.40", "116.80"]
    assert row[16:] == ["64 px", "0.131", "201.7", "n/a", "n/a", f"{a['mac_rate_gmacs']:.2f}",
                        f"{100 * a['peak_fraction']:.1f}"]
    assert fmt(lat["p50"], "ms") in row
    # every artifact's p50 appears in its row
    for art in run["artifacts"]:
        assert f"{art['latency_ms']['p50']:.3f}" in _row(md, art["name"])
    # the comparison: measured beside the paper's claim
    c = run["comparisons"][0]
    assert _row(md, "Latency reduction % (p50)") == ["Latency reduction % (p50)",
                                                     f"{c['latency_reduction_pct']:.1f}", "63.5"]
    assert _row(md, "Parameters reduction %")[1:] == [f"{c['params_reduction_pct']:.1f}", "97.5"]
    assert _row(md, "MACs reduction % (paper: FLOPs)")[1:] == [f"{c['macs_reduction_pct']:.1f}", "96.7"]
    assert _row(md, "Power reduction %")[1:] == ["n/a", "86.2"]
    assert "0.132 [0.128, 0.139] over 10 rounds" in md
    assert _row(md, "Top-1 difference (pts, student - baseline)")[1] == f"{c['top1_delta_pts']:+.1f}"
    # robustness table, host and protocol
    rob = [ln for ln in md.splitlines() if ln.startswith("| resnet8-int8 | motion_blur |")]
    assert rob and f"{a['robustness']['motion_blur']['5']:.1f}" in rob[0]
    assert "| onnxruntime | 1.31.1 |" in md and "rapl: unavailable" in md
    assert "50 warm-up then 200 timed runs" in md and "interleaved over 10 rounds" in md
    assert "| fp32 | 412.00 |" in md
    assert "No power source was readable" in md


def test_markdown_power_section_jetson():
    r = make_run(jetson=True)
    md = render_markdown(r)
    a = r["artifacts"][0]
    row = _row(md, "resnet8-fp32")
    assert row[7] == "parent"  # an FP32 artifact is its compiled children's gate reference
    row = row[:6] + row[8:]
    assert row[19:21] == [f"{a['power']['mean_mW']:,.0f}", f"{a['power']['energy_per_image_mJ']:.3f}"]
    assert "board input (VDD_IN)" in md and "Jetson Xavier NX" in md
    c = r["comparisons"][0]
    assert _row(md, "Power reduction %")[1:] == [f"{c['power_reduction_pct']:.1f}", "86.2"]


def test_pareto_front_hand_example():
    pts = [(1.0, 90.0), (2.0, 95.0), (1.5, 89.0), (3.0, 95.0), (0.5, 80.0), (2.0, 95.0), (4.0, 97.0)]
    # (1.5, 89) is beaten by (1.0, 90); (3.0, 95) by (2.0, 95); the two (2.0, 95) tie and both stay
    assert pareto_front(pts) == [4, 0, 1, 5, 6]
    assert pareto_front([]) == [] and pareto_front([(1.0, 50.0)]) == [0]
    assert pareto_front([(1.0, 90.0), (1.0, 91.0)]) == [1]


def test_plots_written_and_non_trivial(run, tmp_path):
    paths = plot_all(run, tmp_path)
    assert [p.name for p in paths] == ["accuracy_vs_latency.png", "accuracy_vs_macs.png", "size_by_precision.png",
                                       "latency_distributions.png", "robustness.png"]
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 15_000, (p, len(data))
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temp files left
    from PIL import Image

    with Image.open(paths[0]) as im:
        assert im.size[0] > 500 and im.size[1] > 300
    with pytest.raises(EOEdgeError, match="does not exist"):
        plot_all(run, tmp_path / "missing")


def test_write_report_and_load_run(run, tmp_path):
    files = write_report(run, tmp_path / "out")
    assert set(files) == {"report.md", "accuracy_vs_latency.png", "accuracy_vs_macs.png", "size_by_precision.png",
                          "latency_distributions.png", "robustness.png"}
    md = files["report.md"].read_text()
    assert "![Top-1 vs p50 latency, Pareto front dashed](accuracy_vs_latency.png)" in md
    p = write_json(tmp_path / "run.json", run)
    assert load_run(p) == run
    bad = copy.deepcopy(run)
    bad["schema"] = "x"
    with pytest.raises(EOEdgeError, match="not a valid eo-edge-bench/1 run: schema") as e:
        write_report(bad, tmp_path / "bad")
    assert "\n" not in str(e.value)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(EOEdgeError, match="not valid JSON"):
        load_run(tmp_path / "junk.json")
    with pytest.raises(EOEdgeError, match="not found"):
        load_run(tmp_path / "none.json")


def test_print_table(run):
    from rich.console import Console

    con = Console(record=True, width=260, color_system=None)
    print_table(run, con)
    text = con.export_text()
    a = run["artifacts"][2]
    assert "resnet8-int8" in text and f"{a['latency_ms']['p50']:.3f}" in text and "5,200" in text
    assert "resnet8-int8 vs mobilevitv2_100-fp32" in text and "63.5" in text
    assert "FLOPs = 2 x MACs" in text


def test_compare_markdown(run):
    jet = make_run(jetson=True)
    jet["artifacts"] = [a for a in jet["artifacts"] if a["name"] != "resnet16-fp16"]
    md = compare_markdown([run, jet], ["x86", "jetson"])
    row = _row(md, "resnet8-int8")
    a, b = run["artifacts"][2], jet["artifacts"][2]
    ratio = f"{b['latency_ms']['p50'] / a['latency_ms']['p50']:.3f}"
    assert row[1:3] == [f"{a['accuracy']['top1']:.1f}", f"{b['accuracy']['top1']:.1f}"]
    assert row[3:6] == [f"{a['latency_ms']['p50']:.3f}", f"{b['latency_ms']['p50']:.3f}", ratio]
    assert row[6:9] == ["5,200", f"{b['throughput']['images_per_s']:,.0f}",
                        f"{b['throughput']['images_per_s'] / 5200.0:.3f}"]
    assert row[9:11] == ["n/a", f"{b['power']['mean_mW']:,.0f}"]
    assert _row(md, "resnet16-fp16")[2] == "-"  # missing from the Jetson run
    assert "Jetson Xavier NX" in md and "p50 jetson/x86" in md
    assert f"{jet['comparisons'][0]['power_reduction_pct']:.1f}" in md
    with pytest.raises(EOEdgeError, match="labels"):
        compare_markdown([run, jet], ["x86"])
    with pytest.raises(EOEdgeError, match="at least two"):
        compare_markdown([run], ["x86"])


REFERENCE_RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "x86-reference" / "bench.json"


def test_bench_writer_caps_samples_and_still_validates():
    """What bench writes for more timed runs than the schema stores (``--runs 2010``) validates:
    percentiles from all samples, every ``samples_stride``-th of them kept in time order."""
    from eo_edge.measure.timing import latency_record, percentiles
    from eo_edge.schemas import MAX_SAMPLES

    ref = load_run(REFERENCE_RUN)  # a real x86 run, 1,000 samples per artifact
    rng = np.random.default_rng(0)
    for n, stride in ((1000, 1), (MAX_SAMPLES, 1), (MAX_SAMPLES + 10, 2), (2 * MAX_SAMPLES + 1, 3)):
        s = rng.lognormal(0.0, 0.3, n)
        lat = latency_record(s)
        assert lat["n"] == n and lat["samples_stride"] == stride
        assert lat["samples"] == [round(float(v), 5) for v in s[::stride]] and len(lat["samples"]) <= MAX_SAMPLES
        assert {k: lat[k] for k in ("p50", "p90", "p99", "mean", "std")} == \
            {k: v for k, v in percentiles(s).items() if k != "n"}  # of all n samples, not of the kept ones
        run = copy.deepcopy(ref)
        for a in run["artifacts"]:
            a["latency_ms"] = lat
        assert validate(run) == [] and validate(json.loads(json.dumps(run))) == []
    # what bench wrote before the cap: every sample
    run["artifacts"][0]["latency_ms"] = {"batch": 1, **percentiles(s), "samples": [float(v) for v in s]}
    assert any(f"{2 * MAX_SAMPLES + 1} samples; at most {MAX_SAMPLES}" in p for p in validate(run))


def test_calibration_metrics_by_hand_and_temperature_scaling():
    """ECE/NLL/Brier on hand-made logits, and temperature scaling that undoes a known over-confidence."""
    import numpy as np

    from eo_edge.metrics.stats import calibration_metrics, fit_temperature, softmax

    logits = np.log(np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]]))
    y = np.array([0, 1, 0, 0])
    c = calibration_metrics(logits, y, n_bins=10)
    # bins: conf 0.6 (2 images, both right: |1.0 - 0.6|) and conf 0.9 (2 images, one right: |0.5 - 0.9|)
    assert abs(c["ece_pct"] - 100 * (0.5 * 0.4 + 0.5 * 0.4)) < 1e-9
    nll = -(np.log(0.9) + np.log(0.1) + 2 * np.log(0.6)) / 4
    assert abs(c["nll"] - nll) < 1e-9
    # per image: sum over classes of (p - onehot)^2 = 0.02, 1.62, 0.32, 0.32
    assert abs(c["brier"] - (0.02 + 1.62 + 0.32 + 0.32) / 4) < 1e-9
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 5)) * 2.0
    y = np.array([rng.choice(5, p=p) for p in softmax(true_logits)])  # labels drawn from the model's own probabilities
    t = fit_temperature(true_logits * 3.0, y)  # the same model, 3x over-confident
    assert abs(t - 3.0) < 0.3, t
    assert calibration_metrics(true_logits * 3.0, y, temperature=t)["ece_pct"] < calibration_metrics(true_logits * 3.0, y)["ece_pct"]
