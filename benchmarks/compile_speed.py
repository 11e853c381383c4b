"""Benchmark: wall time of export + FP16 + INT8 compile (512 calibration images) of a checkpoint.

Issue target: under 60 s on the 2-core CI-class machine for ResNet8. Runs the real CLI in
subprocesses, as a user would, in a fresh EO_EDGE_HOME (cold calibration cache, no prepared
dataset), and records the wall time of each command plus the phase times each command reports
in its JSON. With no prepared dataset the accuracy gate is skipped (it is measured separately:
it evaluates each artifact and its FP32 parent on the 4,050 validation images).

Usage: python benchmarks/compile_speed.py models/resnet8_eurosat64.pt [--out benchmarks/compile_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "eo_edge.cli", *args], capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: eo-edge {' '.join(args)}\n{p.stderr}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("compile_speed.json"))
    a = ap.parse_args()
    env = dict(os.environ)
    rows = {}
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        env["EO_EDGE_HOME"] = str(td / "home")  # cold calibration cache, no prepared data: no gate
        onnx = td / "m.onnx"
        rows["export_s"] = run(["export", str(a.ckpt), "-o", str(onnx), "--parity-images", "512", "-q",
                                "--json", str(td / "e.json")], env)
        rows["compile_fp16_int8_s"] = run(["compile", str(onnx), "--fp16", "--int8", "--calib-size", "512", "-q",
                                           "--json", str(td / "c.json")], env)
        rec = json.loads((td / "c.json").read_text())
        rows["phases_s"] = {r["precision"]: r["seconds"] for r in rec["artifacts"]}
        rows["total_s"] = rows["export_s"] + rows["compile_fp16_int8_s"]
        exp = json.loads((td / "e.json").read_text())
        rows["export_record"] = {k: exp[k] for k in ("nodes", "opset", "exporter", "simplifier", "parity")}
    from eo_edge.hostinfo import cpu_name

    rows.update({"ckpt": str(a.ckpt), "host": cpu_name(), "cpus": os.cpu_count(),
                 "command": f"python benchmarks/compile_speed.py {a.ckpt}",
                 "note": "export includes the 512-image parity check; compile includes no accuracy gate (no dataset "
                         "prepared in the fresh home), only artifact creation with calibration on 512 images"})
    a.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
