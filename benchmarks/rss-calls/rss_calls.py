"""Peak RSS of the memory probe with 3 inferences (the default since issue 33) against 10 (before), per
file of the built-in default set and runtime: the probe's figure must not change with the count.

    python benchmarks/rss-calls/rss_calls.py      # about 1.5 min on 2 vCPUs
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import eo_edge.measure.probes as probes
from eo_edge.assets import default_inputs
from eo_edge.hostinfo import cpu_name

rows = []
files = [p for p in default_inputs() if p.suffix == ".onnx"]
jobs = [(p, be) for be in ("onnxruntime", "openvino") for p in files]
got = {}
for calls in (3, 10):
    probes.RSS_CALLS = calls
    got[calls] = probes.peak_rss_many(jobs, 64, 2)
for (p, be), a, b in zip(jobs, got[3], got[10]):
    rows.append({"file": p.name, "backend": be, "rss_mb_3_calls": a, "rss_mb_10_calls": b,
                 "diff_pct": None if not (a and b) else round((a - b) / b * 100, 2)})
    print(f"{p.name:50s} {be:12s} {a:8.1f} {b:8.1f} {rows[-1]['diff_pct']:+6.2f} %")
d = [abs(r["diff_pct"]) for r in rows if r["diff_pct"] is not None]
rec = {"command": "python benchmarks/rss-calls/rss_calls.py", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "cpu": cpu_name(), "batch": 64, "threads": 2, "rows": rows, "max_abs_diff_pct": max(d)}
Path(__file__).with_name("record.json").write_text(json.dumps(rec, indent=1) + "\n")
print(f"largest difference {max(d):.2f} %")
