"""The bad-input sweep as a table: each case is a command line, the bad input it builds, the
expected exit code and `error:` line, and the files that must be unchanged afterwards (sha256).

Cases run in a subprocess each, on small inputs (shipped models, a few real images), so the
whole table stays fast."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, assert_one_line_error, run_cli

R8 = ROOT / "models" / "resnet8_eurosat64"


def _setup(tmp: Path) -> dict[str, Path]:
    f = {"onnx": tmp / "m.onnx", "pt": tmp / "c.pt", "link": tmp / "link.onnx", "cfg_int4": tmp / "int4.json"}
    shutil.copy(f"{R8}.onnx", f["onnx"])
    shutil.copy(f"{R8}.pt", f["pt"])
    f["link"].symlink_to(f["onnx"])
    f["cfg_int4"].write_text(json.dumps({"models": [str(f["onnx"])], "precisions": ["int4"]}))
    return f


# (id, argv with {placeholders}, expected exit code, needles of the error line)
CASES = [
    ("compile-o-is-input", ["compile", "{onnx}", "--fp16", "-o", "{onnx}"], 2, ["is the input"]),
    ("compile-o-symlink-to-input", ["compile", "{onnx}", "--int8", "-o", "{link}"], 2, ["is the input"]),
    ("compile-json-is-input", ["compile", "{onnx}", "--fp16", "--json", "{onnx}"], 2, ["is the input"]),
    ("export-o-is-input", ["export", "{pt}", "-o", "{pt}"], 2, ["is the input"]),
    ("export-json-is-input", ["export", "{pt}", "-o", "{tmp}/x.onnx", "--json", "{pt}"], 2, ["is the input"]),
    ("eval-json-is-input", ["eval", "{onnx}", "--json", "{onnx}"], 2, ["is the input"]),
    ("max-drop-nan", ["compile", "{onnx}", "--int8", "--max-drop", "nan"], 2, ["--max-drop must be a finite"]),
    ("max-drop-inf", ["compile", "{onnx}", "--int8", "--max-drop", "inf"], 2, ["--max-drop must be a finite"]),
    ("max-drop-negative", ["compile", "{onnx}", "--int8", "--max-drop=-1"], 2, ["--max-drop must be a finite"]),
    ("calib-size-0", ["compile", "{onnx}", "--int8", "--calib-size", "0"], 2, ["--calib-size must be at least 1"]),
    ("eval-batch-0", ["eval", "{onnx}", "--batch-size", "0"], 2, ["--batch-size must be at least 1"]),
    ("eval-batch-negative", ["eval", "{onnx}", "--batch-size=-5"], 2, ["--batch-size must be at least 1"]),
    ("train-batch-0", ["train", "--batch-size", "0"], 2, ["--batch-size must be at least 1"]),
    ("train-lr-negative", ["train", "--lr=-1"], 2, ["--lr must be a positive"]),
    ("train-img-size-0", ["train", "--img-size", "0"], 2, ["--img-size must be between"]),
    ("train-device-nonsense", ["train", "--device", "nonsense"], 2, ["unknown --device"]),
    ("train-limit-train-0", ["train", "--limit-train", "0"], 2, ["--limit-train must be at least 1"]),
    ("json-into-missing-folder", ["eval", "{onnx}", "--json", "{tmp}/no/such/r.json"], 2, ["output folder does not exist"]),
    ("json-is-a-folder", ["eval", "{onnx}", "--json", "{tmp}"], 2, ["is a folder"]),
    ("bench-config-int4", ["bench", "--config", "{cfg_int4}", "--out", "{tmp}/b"], 2, ["unknown precision", "'int4'"]),
    ("bench-precisions-int4", ["bench", "{onnx}", "--precisions", "fp32,int4", "--out", "{tmp}/b"], 2, ["'int4'"]),
    ("compile-tensorrt-u8", ["compile", "{onnx}", "--int8", "--activations", "u8", "--backend", "tensorrt"], 2,
     ["TensorRT"]),
]


@pytest.mark.slow  # the table takes ~35 s in all on 2 cores; CI runs it
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, tmp_path):
    _, argv, code, needles = case
    files = _setup(tmp_path)
    subs = {**{k: str(v) for k, v in files.items()}, "tmp": str(tmp_path)}
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files.values()}
    listing = sorted(p.name for p in tmp_path.iterdir())
    p = run_cli(*[a.format(**subs) for a in argv], "-q", env={"EO_EDGE_HOME": str(tmp_path / "home")})
    assert p.returncode == code, (p.returncode, p.stderr)
    assert_one_line_error(p, *needles)
    assert {q: hashlib.sha256(q.read_bytes()).hexdigest() for q in files.values()} == before
    assert sorted(q.name for q in tmp_path.iterdir() if q.name != "home") == listing  # nothing written beside
