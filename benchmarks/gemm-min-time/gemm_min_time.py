"""The GEMM peak probe (``eo_edge.measure.probes.gemm_peak``) timed for at least 0.3 s per shape (before
issue 33) and 0.15 s (since), interleaved, 3 times each, FP32 and INT8, ONNX Runtime and OpenVINO, 2 threads:
the peak it reports (GMAC/s, best single run over 6 shapes) and the seconds one probe takes.

    python benchmarks/gemm-min-time/gemm_min_time.py       # about 1.5 min on 2 vCPUs
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from eo_edge.hostinfo import cpu_name
from eo_edge.measure.probes import gemm_peak

peaks: dict[str, list[float]] = {}
secs: dict[float, list[float]] = {}
for _ in range(3):
    for mt in (0.3, 0.15):
        for be in ("onnxruntime", "openvino"):
            for prec in ("fp32", "int8"):
                t0 = time.perf_counter()
                g = gemm_peak(prec, 2, min_time_s=mt, backend=be)["gmacs_per_s"]
                secs.setdefault(mt, []).append(time.perf_counter() - t0)
                peaks.setdefault(f"{be} {prec} {mt:g} s", []).append(round(g, 1))
rows = [{"probe": k, "gmacs_per_s": v, "median": statistics.median(v)} for k, v in sorted(peaks.items())]
for r in rows:
    print(f"{r['probe']:28s} {r['gmacs_per_s']}  median {r['median']:.1f}")
per = {f"{k:g}": round(statistics.mean(v), 2) for k, v in secs.items()}
print("seconds per probe:", per)
rec = {"command": "python benchmarks/gemm-min-time/gemm_min_time.py", "cpu": cpu_name(), "threads": 2,
       "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows, "seconds_per_probe": per}
Path(__file__).with_name("record.json").write_text(json.dumps(rec, indent=1) + "\n")
