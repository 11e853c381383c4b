"""Shared fixtures: the real EuroSAT archive from ../shared, prepared once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EUROSAT_ZIP = SHARED / "data" / "EuroSAT.zip"
SENTRY = SHARED / "weights" / "sentry"
SHIPPED_RESNET8 = ROOT / "models" / "resnet8_eurosat64.pt"

needs_eurosat = pytest.mark.skipif(not EUROSAT_ZIP.is_file(), reason=f"real EuroSAT archive not found at {EUROSAT_ZIP}")
needs_sentry = pytest.mark.skipif(not (SENTRY / "resnet8_dual.pth").is_file(), reason="authors' checkpoints not found")


@pytest.fixture(scope="session")
def home(tmp_path_factory) -> Path:
    h = tmp_path_factory.mktemp("eo-edge-home")
    os.environ["EO_EDGE_HOME"] = str(h)
    return h


@pytest.fixture(scope="session")
def prepared(home):
    """The full real EuroSAT set, decoded once into the test home (``HOME/datasets/eurosat``)."""
    if not EUROSAT_ZIP.is_file():
        pytest.skip("real EuroSAT archive not found")
    from eo_edge.data import load_prepared, prepare

    dest = home / "datasets" / "eurosat"
    prepare(EUROSAT_ZIP, dest, progress=False)
    return load_prepared(dest)


@pytest.fixture(scope="session")
def trained_ckpt(tmp_path_factory) -> Path:
    """A copy of the shipped ResNet8 (``models/resnet8_eurosat64.pt``, trained by ``eo-edge train``
    for 18 epochs, test top-1 96.52 %): a real trained checkpoint that costs no training.
    Tests of the deploy side use it; tests of training itself use :func:`small_ckpt`."""
    import shutil

    dst = tmp_path_factory.mktemp("shipped") / SHIPPED_RESNET8.name
    shutil.copy(SHIPPED_RESNET8, dst)
    return dst


@pytest.fixture(scope="session")
def small_ckpt(prepared, tmp_path_factory) -> Path:
    """A ResNet8 really trained for 2 short epochs on 2,048 real training images (minutes on
    2 CPU cores: only ``slow`` tests use it)."""
    from eo_edge.train import TrainOptions, train

    out = tmp_path_factory.mktemp("run")
    res = train(TrainOptions(arch="resnet8", epochs=2, limit_train=2048, batch_size=64, threads=2), prepared, out,
                progress=False, log=lambda m: None)
    assert res["top1"] > 25.0, res["top1"]  # 10 % is chance
    return out / "best.pt"


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``eo-edge ARGS`` in a subprocess; returns the completed process (text mode)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "eo_edge.cli", *args], capture_output=True, text=True, env=e,
                          timeout=600)


def assert_one_line_error(p: subprocess.CompletedProcess, *needles: str) -> None:
    """Non-zero exit, no traceback, one 'error:' line on stderr containing each needle."""
    assert p.returncode != 0, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error:"), p.stderr
    joined = " ".join(lines)
    for n in needles:
        assert n in joined, (n, p.stderr)


@pytest.fixture(scope="session")
def exported(trained_ckpt, tmp_path_factory):
    """``(path, record)`` of the trained ResNet8 (:func:`trained_ckpt`) freshly exported to ONNX
    (parity-checked on real test images)."""
    from eo_edge.data.subsets import TEST_SUBSET_DIR, load_flat_images
    from eo_edge.export import export

    out = tmp_path_factory.mktemp("onnx") / "r8.onnx"
    return out, export(trained_ckpt, out, parity_images=load_flat_images(TEST_SUBSET_DIR, 256)[0])
