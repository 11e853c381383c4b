"""The first call of a throughput window after the other artifacts ran, against the window's steady calls.

The same six artifacts as ``window.py``, interleaved (A B C ... A B C ...), ``--reps`` windows of
``--window`` s each at batch 64; per artifact the median of each window's first call and of its
other calls' median (ms). Why ``window_rate`` makes one untimed call before its timed window.
Writes ``first_call.json`` beside this file.

    python benchmarks/throughput-window/first_call.py        # about 30 s on 2 vCPUs
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from window import load_runs

from eo_edge.hostinfo import cpu_name

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--reps", type=int, default=8)
ap.add_argument("--window", type=float, default=0.5)
a = ap.parse_args()
runs = load_runs(64, 2)
first: dict[str, list[float]] = {n: [] for n, _, _ in runs}
steady: dict[str, list[float]] = {n: [] for n, _, _ in runs}
for _ in range(a.reps):
    for n, r, x in runs:
        ts, t_end = [], time.perf_counter() + a.window
        while time.perf_counter() < t_end or len(ts) < 2:
            t0 = time.perf_counter()
            r.infer(x)
            ts.append((time.perf_counter() - t0) * 1e3)
        first[n].append(ts[0])
        steady[n].append(float(np.median(ts[1:])))
rows = [{"artifact": n, "first_call_ms": float(np.median(first[n])), "steady_call_ms": float(np.median(steady[n])),
         "ratio": float(np.median(first[n]) / np.median(steady[n]))} for n in first]
for row in rows:
    print(f"{row['artifact']:58s} first {row['first_call_ms']:8.1f} ms  steady {row['steady_call_ms']:8.1f} ms  "
          f"ratio {row['ratio']:.2f}")
rec = {"command": f"python benchmarks/throughput-window/first_call.py --reps {a.reps} --window {a.window}",
       "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpu": cpu_name(), "batch": 64, "threads": 2,
       "rows": rows}
Path(__file__).with_name("first_call.json").write_text(json.dumps(rec, indent=1) + "\n")
