"""eo-edge's throughput and batch-1 latency beside each runtime's own tool, same file, same threads.

- OpenVINO: `benchmark_app` (ships with the openvino wheel), one stream, synchronous requests, f32
  inference precision, the same thread count, batch 64 (throughput) and 1 (median latency).
- ONNX Runtime: `onnxruntime_perf_test` is a C++ tool built from the onnxruntime sources, not in
  the PyPI wheel, so the cross-check is ONNX Runtime's own Python API called directly
  (`InferenceSession.run` in a loop, nothing else), same session options.
- eo-edge: the bench's own code (`measure.timing.sustained_throughput` over `Runner.infer`, and
  batch-1 latency through `Runner.infer`), one process.

Usage: python benchmarks/runtime_tools/compare.py [ONNX] [--threads 2] [--out benchmarks/runtime_tools]
Writes compare.json and README.md (ratios eo-edge / runtime tool; the goal is within 10 %).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def side_by_side(path: Path, backend: str, threads: int, batch: int, window_s: float) -> dict:
    """eo-edge's Runner.infer and the runtime's own Python API called directly (same file, options and
    threads), interleaved in one process with the bench's own protocol: sustained throughput rounds
    and interleaved batch-1 latency rounds."""
    from eo_edge.backends import get_backend
    from eo_edge.measure.timing import interleaved_latency, sustained_throughput

    r = get_backend(backend).load(path, threads=threads)
    if backend == "onnxruntime":
        import onnxruntime as ort

        from eo_edge.backends.onnxruntime import session_options

        sess = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])

        def direct(x):
            return sess.run(None, {"input": x})[0]
        api = "onnxruntime.InferenceSession.run (the same SessionOptions)"
    else:
        import openvino as ov

        core = ov.Core()
        c = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                                   "PERFORMANCE_HINT": "LATENCY",
                                                                   "INFERENCE_NUM_THREADS": threads})
        req = c.create_infer_request()

        def direct(x):
            return req.infer({0: x}, share_inputs=True)[c.output(0)]
        api = "openvino InferRequest.infer(share_inputs=True) (the same compile config)"
    xb = np.random.default_rng(0).normal(size=(batch, 3, 64, 64)).astype(np.float32)
    x1 = np.ascontiguousarray(xb[:1])
    rates = sustained_throughput([r.infer, direct], [xb, xb], window_s, 3, agree=0.0)  # 3 rounds each
    lat = interleaved_latency([lambda: r.infer(x1), lambda: direct(x1)], warmup=50, runs=1000, rounds=5)
    return {"eo_edge": {"images_per_s": float(np.median(rates[0])), "rounds": rates[0],
                        "p50_ms": float(np.median(np.concatenate(lat[0])))},
            "direct": {"tool": api, "images_per_s": float(np.median(rates[1])), "rounds": rates[1],
                       "p50_ms": float(np.median(np.concatenate(lat[1])))}}


def benchmark_app(path: Path, threads: int, batch: int, seconds: int) -> dict:
    def run(b: int) -> str:
        cmd = ["benchmark_app", "-m", str(path), "-d", "CPU", "-hint", "none", "-nstreams", "1", "-nthreads", str(threads),
               "-api", "sync",
               "-infer_precision", "f32", "-shape", f"input[{b},3,64,64]", "-t", str(seconds)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError((p.stderr or p.stdout).strip().splitlines()[-1])
        return p.stdout

    out_b = run(batch)
    fps = float(re.search(r"Throughput:\s+([\d.]+)\s+FPS", out_b).group(1))
    out_1 = run(1)
    m = re.search(r"Median:\s+([\d.]+)\s+(ms|us)", out_1)
    med = float(m.group(1)) / (1000.0 if m.group(2) == "us" else 1.0)
    return {"tool": f"benchmark_app -hint none -nstreams 1 -nthreads {threads} -api sync -infer_precision f32 "
                    f"-shape input[B,3,64,64] -t {seconds} (one stream, synchronous: what eo-edge's latency hint "
                    "at that thread count compiles)", "images_per_s": fps, "p50_ms": med}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx", nargs="?", type=Path, default=ROOT / "models" / "resnet8_kd_eurosat64.int8-minmax.onnx")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--window-s", type=float, default=2.0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runtime_tools")
    a = ap.parse_args()
    from eo_edge.hostinfo import cpu_name

    rows = []
    for backend in ("openvino", "onnxruntime"):
        sb = side_by_side(a.onnx, backend, a.threads, a.batch, a.window_s)
        row = {"backend": backend, **sb,
               "throughput_ratio": sb["eo_edge"]["images_per_s"] / sb["direct"]["images_per_s"],
               "p50_ratio": sb["eo_edge"]["p50_ms"] / sb["direct"]["p50_ms"]}
        if backend == "openvino":
            row["benchmark_app"] = benchmark_app(a.onnx, a.threads, a.batch, 10)
            row["throughput_ratio_benchmark_app"] = sb["eo_edge"]["images_per_s"] / row["benchmark_app"]["images_per_s"]
            row["p50_ratio_benchmark_app"] = sb["eo_edge"]["p50_ms"] / row["benchmark_app"]["p50_ms"]
        else:
            row["onnxruntime_perf_test"] = "not available: a C++ tool built from the onnxruntime sources, not in the PyPI wheel"
        rows.append(row)
    rec = {"file": str(a.onnx.relative_to(ROOT)) if a.onnx.is_relative_to(ROOT) else str(a.onnx), "threads": a.threads,
           "batch": a.batch, "host": cpu_name(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "command": "python benchmarks/runtime_tools/compare.py", "rows": rows}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "compare.json").write_text(json.dumps(rec, indent=1) + "\n")
    lines = ["# eo-edge beside each runtime's own tool (issue 31)", "",
             f"`{rec['command']}` on {rec['host']}, {rec['created']}: `{rec['file']}`, {a.threads} threads, "
             f"throughput at batch {a.batch}, latency at batch 1. Goal: eo-edge within 10 % of the runtime's tool.", "",
             "| backend | compared with | eo-edge images/s | theirs images/s | ratio | eo-edge p50 ms | theirs p50 ms | ratio |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['direct']['tool']}, interleaved in one process | "
                     f"{r['eo_edge']['images_per_s']:,.0f} | {r['direct']['images_per_s']:,.0f} | {r['throughput_ratio']:.3f} | "
                     f"{r['eo_edge']['p50_ms']:.3f} | {r['direct']['p50_ms']:.3f} | {r['p50_ratio']:.3f} |")
        if "benchmark_app" in r:
            t = r["benchmark_app"]
            lines.append(f"| {r['backend']} | {t['tool']} | {r['eo_edge']['images_per_s']:,.0f} | {t['images_per_s']:,.0f} | "
                         f"{r['throughput_ratio_benchmark_app']:.3f} | {r['eo_edge']['p50_ms']:.3f} | {t['p50_ms']:.3f} | "
                         f"{r['p50_ratio_benchmark_app']:.3f} |")
        else:
            lines.append(f"| {r['backend']} | onnxruntime_perf_test: {r['onnxruntime_perf_test']} | | | | | | |")
    lines += ["", "Where a ratio is off 1.0 by more than 10 %: benchmark_app is C++, so its batch-1 latency carries no "
              "Python call overhead (about 0.1 ms per call here: compare the direct Python call's p50 with "
              "benchmark_app's); against the runtime's own Python call eo-edge is the like-for-like figure.", "",
              "eo-edge's figures are the bench's own code: sustained throughput (median of 3 rounds of "
              f"{a.window_s:g} s of back-to-back `Runner.infer` calls on one preallocated batch) and the median of "
              "1,000 batch-1 `Runner.infer` calls. The timed region of `Runner.infer` is: a no-op contiguity/dtype "
              "check, the shape check against the artifact's config, the runtime's call (OpenVINO with "
              "`share_inputs=True`: no input copy) and one copy of the logits out of the runtime's buffer.", ""]
    (a.out / "README.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
