"""docs/jetson.md's procedure, run on x86: every command of its tested block, in order, with the
test double of TensorRT (tests/fake_trt.py: its parser enforces onnx-tensorrt's operators.md, its engines compute
what their ONNX computes) and a stand-in tegrastats replaying real Orin Nano lines at their
interval. Docker itself is not run: the image's default command and environment are read from
Dockerfile.jetson, and the volume mounts are mapped to a temporary folder."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from test_tegrastats import ORIN_NANO_IDLE, ORIN_NANO_LOAD, _fake_tegrastats

DOC = ROOT / "docs" / "jetson.md"
DOCKERFILE = ROOT / "Dockerfile.jetson"
FAST = ["--runs", "20", "--rounds", "2", "--warmup", "2", "--settle-s", "0.05", "--idle-s", "0.3",
        "--power-window-s", "0.5", "--no-memory", "-q"]


def procedure() -> list[str]:
    text = DOC.read_text()
    block = text[text.index("<!-- procedure:start -->"):text.index("<!-- procedure:end -->")]
    lines = [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.startswith(("```", "<!--"))]
    assert lines and not any("..." in ln for ln in lines), lines  # complete commands only
    return lines


def image() -> tuple[list[str], dict[str, str]]:
    """The image's CMD and ENV from Dockerfile.jetson."""
    text = DOCKERFILE.read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    env = dict(re.findall(r"^ENV ([A-Z_]+)=(\S+)$", text, re.M))
    return cmd, env


def test_procedure_is_complete_and_matches_the_image():
    cmd, env = image()
    assert cmd == ["eo-edge", "bench", "--backend", "tensorrt", "--out", "/work/eo-edge-bench"]
    assert env["EO_EDGE_HOME"] == "/work"
    steps = procedure()
    assert steps[0].startswith("sudo nvpmodel") and any(s.startswith("docker build -f Dockerfile.jetson") for s in steps)
    assert steps[-1].startswith("cat ") and steps[-1].endswith('eo-edge-bench/report.md"')
    assert "r35" not in DOCKERFILE.read_text().split("ARG L4T_JETPACK_TAG=")[1].splitlines()[0]


@pytest.mark.slow
def test_procedure_runs_on_x86_with_the_strict_double(tmp_path):
    work_host = tmp_path / "home" / "eo-edge-work"
    script, phase, _ = _fake_tegrastats(tmp_path, {"idle": ORIN_NANO_IDLE, "load": ORIN_NANO_LOAD})
    cmd_default, image_env = image()
    runs = []
    for step in procedure():
        words = shlex.split(step.replace("$HOME", str(tmp_path / "home")))
        if words[0] == "sudo":
            continue  # board settings (nvpmodel, jetson_clocks): nothing to emulate on x86
        if words[:2] == ["docker", "build"]:
            assert (ROOT / words[words.index("-f") + 1]).is_file()
            continue
        if words[0] == "mkdir":
            Path(words[-1]).mkdir(parents=True, exist_ok=True)
            continue
        if words[0] == "cat":
            report = Path(words[1])
            assert report.is_file(), report
            md = report.read_text()
            assert "tensorrt" in md and "## Power" in md
            continue
        assert words[:2] == ["docker", "run"], step
        mounts = dict(w.split(":")[:2][::-1] for i, w in enumerate(words) if i and words[i - 1] == "-v")
        assert mounts.get("/work") == str(work_host)
        i = words.index("eo-edge:jetson")
        cmd = words[i + 1:] or cmd_default
        cmd = [c.replace("/work", str(work_host)) for c in cmd]
        assert cmd[0] == "eo-edge"
        env = {**os.environ, **{k: v.replace("/work", str(work_host)) for k, v in image_env.items()}}
        if "/usr/bin/tegrastats" in mounts:  # the host's tegrastats mounted in: our stand-in
            env["PATH"] = f"{script.parent}{os.pathsep}{env.get('PATH', '')}"
        extra = FAST if cmd[1] == "bench" else []
        p = subprocess.run([sys.executable, str(ROOT / "tests" / "fake_trt_cli.py"), *cmd[1:], *extra],
                           capture_output=True, text=True, env=env, timeout=900)
        assert p.returncode == 0, (step, p.stdout[-2000:], p.stderr[-3000:])
        runs.append((cmd[1], p))
    assert [r[0] for r in runs] == ["check", "bench"]
    check = json.loads((work_host / "check.json").read_text())
    from eo_edge.app.preflight import shipped_tensorrt_files

    assert check["ok"] and len(check["results"]) == len(shipped_tensorrt_files()) >= 8  # shipped TensorRT forms
    run = json.loads((work_host / "eo-edge-bench" / "bench.json").read_text())
    from eo_edge.report import validate

    assert validate(run) == []
    arts = run["artifacts"]
    assert run["failed"] == [] and len(arts) >= 8
    assert {a["backend"] for a in arts} == {"tensorrt"}
    for a in arts:
        assert a["accuracy"]["n_images"] == 1000 and a["accuracy"]["top1"] > 90.0  # real logits via the double
        assert a["engine_size_mb"] > 0 and {"h2d", "d2h", "p50"} <= set(a["device_latency_ms"])
        assert a["device_memory_mb"] > 1.0  # the engine's 1 MiB plus the batch-64 I/O buffers
        pw = a["power"]
        assert pw["source"] == "tegrastats" and pw["scope"] == "VDD_IN" and pw["duration_s"] >= 0.5
        assert pw["n_samples"] >= 1 and "warning" in pw  # far fewer than the protocol's 100 samples
        assert pw["energy_per_image_mJ"] > 0 and pw["protocol"]["window_s"] == 0.5
    engines = sorted((work_host / "engines").glob("*.engine"))
    assert len(engines) == len(arts)
    # a second run reuses every engine (sidecar: same source sha256, TensorRT version, device)
    p = subprocess.run([sys.executable, str(ROOT / "tests" / "fake_trt_cli.py"), "bench", "--backend", "tensorrt",
                        "--out", str(work_host / "again"), *FAST], capture_output=True, text=True,
                       env={**os.environ, "EO_EDGE_HOME": str(work_host)}, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "building TensorRT engine" not in p.stderr
    # ...and rebuilds for another TensorRT version, instead of loading an engine it cannot run
    p = subprocess.run([sys.executable, str(ROOT / "tests" / "fake_trt_cli.py"), "--trt-version", "8.6.2.3", "bench",
                        str(ROOT / "models" / "resnet8_eurosat64.int8-minmax.onnx"), "--backend", "tensorrt",
                        "--out", str(work_host / "trt8"), *FAST], capture_output=True, text=True,
                       env={**os.environ, "EO_EDGE_HOME": str(work_host)}, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    err = " ".join(p.stderr.split())
    assert "rebuilding resnet8_eurosat64.int8-minmax." in err and "tensorrt_version: built 10.3.0, here 8.6.2.3" in err


@pytest.mark.slow
def test_bench_keeps_going_when_an_engine_fails_to_build(tmp_path):
    """A file TensorRT rejects becomes a 'Not measured' row with the reason; the others are measured."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    bad = tmp_path / "r8.ort-default.onnx"
    import numpy as np

    from eo_edge.assets import CALIBRATION_DIR
    from eo_edge.data.subsets import load_flat_images
    from eo_edge.data.transforms import preprocess

    x = preprocess(load_flat_images(CALIBRATION_DIR, 16)[0], 64, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": x.astype(np.float32)}])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(ROOT / "models" / "resnet8_eurosat64.onnx"), str(bad), Reader(), quant_format=QuantFormat.QDQ)
    import onnx

    from eo_edge.artifact.onnx_meta import set_metadata

    m = onnx.load(str(bad))  # quantize_static keeps the metadata; mark it int8-s8 as compile would
    set_metadata(m, {"eo_edge.precision": "int8", "eo_edge.int8_activations": "s8"})
    onnx.save(m, str(bad))
    good = ROOT / "models" / "resnet8_eurosat64.int8-minmax.onnx"
    p = subprocess.run([sys.executable, str(ROOT / "tests" / "fake_trt_cli.py"), "bench", str(bad), str(good),
                        "--backend", "tensorrt", "--out", str(tmp_path / "b"), *FAST],
                       capture_output=True, text=True, env={**os.environ, "EO_EDGE_HOME": str(tmp_path / "h")},
                       timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    run = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert [a["path"] for a in run["artifacts"]] == [str(good)]
    assert len(run["failed"]) == 1 and "fails the TensorRT preflight" in run["failed"][0]["error"]
    md = (tmp_path / "b" / "report.md").read_text()
    assert "## Not measured" in md and "r8.ort-default.onnx" in md
