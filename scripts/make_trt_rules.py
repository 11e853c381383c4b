"""Regenerate eo_edge/trt_rules/operators-<release>.json from onnx-tensorrt's docs/operators.md.

Usage (from the repository root, with a clone of https://github.com/onnx/onnx-tensorrt):

    python3 scripts/make_trt_rules.py /path/to/onnx-tensorrt

For each release branch in RELEASES it reads ``git show <branch>:docs/operators.md`` and writes
the operator support matrix as data: for every operator the parser supports (column "Supported"
= Y), the tensor types of the "Supported Types" column, and the opset range of the page's first
line. Unsupported operators (N) are listed too. Nothing else of the page is copied.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

# TensorRT release -> onnx-tensorrt branch holding that release's docs/operators.md
RELEASES = {"8.5": "8.5-GA", "8.6": "8.6-GA", "10.0": "10.0-GA", "10.1": "10.1-GA"}
OUT = Path(__file__).resolve().parents[1] / "eo_edge" / "trt_rules"


def parse(text: str) -> dict:
    m = re.search(r"opset (\d+) to opset (\d+)", text) or re.search(r"up to Opset (\d+)", text)
    if m is None:
        raise SystemExit("no opset line found")
    opset = {"min": int(m.group(1)), "max": int(m.group(2))} if m.lastindex == 2 else {"min": None, "max": int(m.group(1))}
    ops, unsupported = {}, []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.fullmatch(r"[A-Z][A-Za-z0-9]*", cells[0]) or cells[0] == "Operator":
            continue
        if cells[1].startswith("Y"):
            types = [t for t in re.split(r"[,\s]+", cells[2] if len(cells) > 2 else "") if t]  # 10.0 Split lacks a comma
            ops[cells[0]] = {"types": types, "restricted": bool(len(cells) > 3 and cells[3])}
        elif cells[1].startswith("N"):
            unsupported.append(cells[0])
    return {"opset": opset, "operators": ops, "unsupported": sorted(unsupported)}


def main(repo: str) -> None:
    for release, branch in RELEASES.items():
        text = subprocess.run(["git", "-C", repo, "show", f"{branch}:docs/operators.md"], check=True,
                              capture_output=True, text=True).stdout
        commit = subprocess.run(["git", "-C", repo, "log", "-1", "--format=%h %ad", "--date=short", branch, "--",
                                 "docs/operators.md"], check=True, capture_output=True, text=True).stdout.split()
        data = {"tensorrt": release,
                "source": f"onnx/onnx-tensorrt docs/operators.md on branch {branch} (commit {commit[0]}, {commit[1]})",
                **parse(text)}
        path = OUT / f"operators-{release}.json"
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"{path}: {len(data['operators'])} supported, {len(data['unsupported'])} unsupported, opset {data['opset']}")


if __name__ == "__main__":
    main(sys.argv[1])
