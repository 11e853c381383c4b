"""A wheel installed non-editable, outside the checkout, runs the default `eo-edge bench` to a
report: the shipped models, calibration images and test samples travel as data files
(pyproject `data-files` -> <prefix>/share/eo-edge, found by eo_edge/assets.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_non_editable_wheel_runs_the_default_bench(tmp_path):
    wheels = tmp_path / "wheels"
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(wheels), str(ROOT)], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    wheel = next(wheels.glob("eo_edge-*.whl"))
    venv = tmp_path / "venv"  # the dependencies come from this interpreter's site-packages
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    p = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], capture_output=True,
                       text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    where = tmp_path / "elsewhere"
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("EO_EDGE_HOME", "EO_EDGE_ASSETS", "PYTHONPATH")}
    env["EO_EDGE_HOME"] = str(tmp_path / "home")
    probe = subprocess.run([str(py), "-c", "import eo_edge, eo_edge.assets as a; print(eo_edge.__file__); "
                            "print(a.MODELS_DIR)"], capture_output=True, text=True, cwd=where, env=env, timeout=120)
    assert probe.returncode == 0, probe.stderr
    src, assets = probe.stdout.split()
    assert src.startswith(str(venv)) and assets.startswith(str(venv)), probe.stdout  # not the checkout
    p = subprocess.run([str(venv / "bin" / "eo-edge"), "bench", "--runs", "20", "--rounds", "2", "--warmup", "2", "--throughput-s", "0.2",
                        "--no-peak", "--no-memory", "-q", "--out", "report"], capture_output=True, text=True,
                       cwd=where, env=env, timeout=1800)
    assert p.returncode == 0, p.stderr[-3000:]
    run = json.loads((where / "report" / "bench.json").read_text())
    shipped = {f.name for f in (ROOT / "models").glob("*.onnx")}
    measured = {a["path"].rsplit("/", 1)[-1] for a in run["artifacts"]}
    assert run["data"]["kind"] == "shipped test subset" and len(run["artifacts"]) >= 12
    assert shipped <= measured, shipped - measured  # every shipped ONNX, found in <prefix>/share/eo-edge
    assert (where / "report" / "report.md").read_text().count("| resnet8_") >= 6  # two ResNet8s, named by file
