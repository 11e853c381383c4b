"""Does a shorter sustained-throughput window change the figure? (issue 33: the default bench's wall time)

Every artifact below is opened once per runtime; then, ``--reps`` times over, each window length in
``--windows`` is run for every artifact, interleaved (w1: A B C ..., w2: A B C ..., w1: ...), through
the same ``eo_edge.measure.timing.window_rate`` that ``eo-edge bench`` uses, so host drift hits every
window length alike. Per artifact and window length: the median images/s over the reps and the
round-to-round spread ((max - min) / median); and the ratio of each window's median to the longest
window's median. Writes ``window.json`` beside this file and prints a table.

    python benchmarks/throughput-window/window.py            # about 2 min on 2 vCPUs
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from eo_edge.backends import get_backend
from eo_edge.data.resolve import measurement_data
from eo_edge.data.transforms import preprocess
from eo_edge.hostinfo import host_load, host_record
from eo_edge.measure.timing import window_rate

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = [  # (file, runtime): the fastest and the slowest rows of the default bench, both runtimes
    ("models/resnet8_kd_eurosat64.int8-minmax-u8.onnx", "openvino"),
    ("models/resnet8_kd_eurosat64.int8-minmax.onnx", "onnxruntime"),
    ("models/resnet8_kd_eurosat64.onnx", "onnxruntime"),
    ("models/resnet16_kd_eurosat64.onnx", "openvino"),
    ("models/mobilevitv2_100_eurosat64.onnx", "onnxruntime"),
    ("models/mobilevitv2_100_eurosat64.int8-minmax.onnx", "openvino"),
]


def load_runs(batch: int, threads: int) -> list[tuple[str, object, np.ndarray]]:
    """``(name, runner, batch)`` of every artifact in :data:`ARTIFACTS`: opened, fed the first ``batch``
    shipped test images (float32 (B, C, S, S)), called once."""
    data, _ = measurement_data(None, None, False, log=lambda *_: None)
    runs = []
    for f, be in ARTIFACTS:
        r = get_backend(be).load(ROOT / f, threads=threads)
        cfg = r.metadata["config"]
        x = preprocess(np.asarray(data.images[:batch]), cfg["input_size"], cfg["mean"], cfg["std"])
        x = np.ascontiguousarray(x, dtype=np.float32)
        r.infer(x)  # warm
        runs.append((f"{Path(f).name}@{be}", r, x))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", default="0.5,1,2", help="window lengths, s (the last is the reference)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 4))
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("window.json"))
    a = ap.parse_args()
    windows = [float(w) for w in a.windows.split(",")]
    runs = load_runs(a.batch, a.threads)
    load_before = host_load()
    rates = {name: {w: [] for w in windows} for name, _, _ in runs}
    t0 = time.perf_counter()
    for _ in range(a.reps):
        for w in windows:
            for name, r, x in runs:
                rates[name][w].append(window_rate(r.infer, x, w))
    wall = time.perf_counter() - t0
    ref = windows[-1]
    rows = []
    for name, by_w in rates.items():
        med_ref = float(np.median(by_w[ref]))
        for w, rr in by_w.items():
            med = float(np.median(rr))
            rows.append({"artifact": name, "window_s": w, "median_images_per_s": med, "rates": rr,
                         "spread": (max(rr) - min(rr)) / med, "ratio_to_longest": med / med_ref})
    rec = {"command": "python benchmarks/throughput-window/window.py " + " ".join(
               f"--{k} {v}" for k, v in (("windows", a.windows), ("reps", a.reps))),
           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": host_record(a.threads, {}),
           "host_load": {"before": load_before, "after": host_load()}, "batch": a.batch, "threads": a.threads,
           "data": "shipped test subset", "wall_s": wall, "rows": rows}
    a.out.write_text(json.dumps(rec, indent=1) + "\n")
    print(f"{'artifact':58s} {'window s':>8s} {'images/s':>9s} {'spread':>7s} {'ratio':>6s}")
    for row in rows:
        print(f"{row['artifact']:58s} {row['window_s']:8g} {row['median_images_per_s']:9.0f} "
              f"{row['spread'] * 100:6.1f}% {row['ratio_to_longest']:6.3f}")
    print(f"wall {wall:.0f} s; record {a.out}")


if __name__ == "__main__":
    main()
