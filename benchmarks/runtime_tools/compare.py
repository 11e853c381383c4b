"""eo-edge's throughput and batch-1 latency beside each runtime's own tool, same file, same threads.

- OpenVINO: `benchmark_app` (ships with the openvino wheel), latency hint, f32 inference precision,
  the same thread count, batch 64 (throughput) and 1 (median latency).
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


def eo_edge_figures(path: Path, backend: str, threads: int, batch: int, window_s: float) -> dict:
    from eo_edge.backends import get_backend
    from eo_edge.measure.timing import interleaved_latency, percentiles, sustained_throughput

    r = get_backend(backend).load(path, threads=threads)
    xb = np.random.default_rng(0).normal(size=(batch, 3, 64, 64)).astype(np.float32)
    x1 = np.ascontiguousarray(xb[:1])
    rates = sustained_throughput([r.infer], [xb], window_s, 3)[0]
    lat = interleaved_latency([lambda: r.infer(x1)], warmup=50, runs=1000, rounds=5)[0]
    return {"images_per_s": float(np.median(rates)), "rounds": rates, "p50_ms": percentiles(np.concatenate(lat))["p50"]}


def ort_direct(path: Path, threads: int, batch: int, window_s: float) -> dict:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    xb = np.random.default_rng(0).normal(size=(batch, 3, 64, 64)).astype(np.float32)
    x1 = np.ascontiguousarray(xb[:1])
    rates = []
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < window_s:
            s.run(None, {"input": xb})
            n += batch
        rates.append(n / (time.perf_counter() - t0))
    for _ in range(50):
        s.run(None, {"input": x1})
    lat = []
    for _ in range(1000):
        t0 = time.perf_counter_ns()
        s.run(None, {"input": x1})
        lat.append((time.perf_counter_ns() - t0) / 1e6)
    return {"tool": "onnxruntime.InferenceSession.run, called directly (onnxruntime_perf_test is not in the PyPI "
                    "wheel)", "images_per_s": float(np.median(rates)), "rounds": rates, "p50_ms": float(np.median(lat))}


def benchmark_app(path: Path, threads: int, batch: int, seconds: int) -> dict:
    def run(b: int) -> str:
        cmd = ["benchmark_app", "-m", str(path), "-d", "CPU", "-hint", "latency", "-nthreads", str(threads),
               "-infer_precision", "f32", "-shape", f"input[{b},3,64,64]", "-t", str(seconds)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError((p.stderr or p.stdout).strip().splitlines()[-1])
        return p.stdout

    out_b = run(batch)
    fps = float(re.search(r"Throughput:\s+([\d.]+)\s+FPS", out_b).group(1))
    out_1 = run(1)
    med = float(re.search(r"Median:\s+([\d.]+)\s+ms", out_1).group(1))
    return {"tool": f"benchmark_app -hint latency -nthreads {threads} -infer_precision f32 -shape input[B,3,64,64] "
                    f"-t {seconds}", "images_per_s": fps, "p50_ms": med}


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
    for backend, tool in (("openvino", lambda: benchmark_app(a.onnx, a.threads, a.batch, 10)),
                          ("onnxruntime", lambda: ort_direct(a.onnx, a.threads, a.batch, a.window_s))):
        ours = eo_edge_figures(a.onnx, backend, a.threads, a.batch, a.window_s)
        theirs = tool()
        rows.append({"backend": backend, "eo_edge": ours, "runtime_tool": theirs,
                     "throughput_ratio": ours["images_per_s"] / theirs["images_per_s"],
                     "p50_ratio": ours["p50_ms"] / theirs["p50_ms"]})
    rec = {"file": str(a.onnx.relative_to(ROOT)) if a.onnx.is_relative_to(ROOT) else str(a.onnx), "threads": a.threads,
           "batch": a.batch, "host": cpu_name(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "command": "python benchmarks/runtime_tools/compare.py", "rows": rows}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "compare.json").write_text(json.dumps(rec, indent=1) + "\n")
    lines = ["# eo-edge beside each runtime's own tool (issue 31)", "",
             f"`{rec['command']}` on {rec['host']}, {rec['created']}: `{rec['file']}`, {a.threads} threads, "
             f"throughput at batch {a.batch}, latency at batch 1. Goal: eo-edge within 10 % of the runtime's tool.", "",
             "| backend | runtime's tool | eo-edge images/s | tool images/s | ratio | eo-edge p50 ms | tool p50 ms | ratio |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['runtime_tool']['tool']} | {r['eo_edge']['images_per_s']:,.0f} | "
                     f"{r['runtime_tool']['images_per_s']:,.0f} | {r['throughput_ratio']:.3f} | {r['eo_edge']['p50_ms']:.3f} | "
                     f"{r['runtime_tool']['p50_ms']:.3f} | {r['p50_ratio']:.3f} |")
    lines += ["", "eo-edge's figures are the bench's own code: sustained throughput (median of 3 rounds of "
              f"{a.window_s:g} s of back-to-back `Runner.infer` calls on one preallocated batch) and the median of "
              "1,000 batch-1 `Runner.infer` calls. The timed region of `Runner.infer` is: a no-op contiguity/dtype "
              "check, the shape check against the artifact's config, the runtime's call (OpenVINO with "
              "`share_inputs=True`: no input copy) and one copy of the logits out of the runtime's buffer.", ""]
    (a.out / "README.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
