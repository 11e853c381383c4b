"""Shared fixtures: the real EuroSAT archive from ../shared, prepared once per session."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EUROSAT_ZIP = SHARED / "data" / "EuroSAT.zip"
SENTRY = SHARED / "weights" / "sentry"
SHIPPED_RESNET8 = ROOT / "models" / "resnet8_eurosat64.pt"

needs_eurosat = pytest.mark.skipif(not EUROSAT_ZIP.is_file(), reason=f"real EuroSAT archive not found at {EUROSAT_ZIP}")
needs_sentry = pytest.mark.skipif(not (SENTRY / "resnet8_dual.pth").is_file(), reason="authors' checkpoints not found")


@pytest.fixture(scope="session")
def home(tmp_path_factory):
    """A session-wide ``EO_EDGE_HOME`` (a temporary folder); the previous value (or its absence)
    is put back when the session ends."""
    h = tmp_path_factory.mktemp("eo-edge-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EO_EDGE_HOME", str(h))
        yield h


@pytest.fixture(autouse=True)
def _torch_global_state():
    """``train()`` sets torch's thread count and global seed: put both back after each test, so
    no test sees another's settings. Only where torch is loaded already (the test modules that
    use it import it at collection; this fixture does not import it for the tests that don't)."""
    torch = sys.modules.get("torch")
    saved = (torch.get_num_threads(), torch.random.get_rng_state()) if torch is not None else None
    yield
    if saved is not None:
        _restore_torch(torch, saved)


def _restore_torch(torch, saved) -> None:
    threads, rng = saved
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    torch.random.set_rng_state(rng)


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
    from eo_edge.train.loop import TrainOptions, train

    import torch

    out = tmp_path_factory.mktemp("run")
    saved = (torch.get_num_threads(), torch.random.get_rng_state())
    try:  # train() sets 2 threads and seeds torch: not for the rest of the session
        res = train(TrainOptions(arch="resnet8", epochs=2, limit_train=2048, batch_size=64, threads=2), prepared,
                    out, progress=False, log=lambda m: None)
    finally:
        _restore_torch(torch, saved)
    assert res["top1"] > 25.0, res["top1"]  # 10 % is chance
    return out / "best.pt"


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``eo-edge ARGS`` in a subprocess (in ``cwd``, default this one); returns the completed
    process (text mode)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "eo_edge.cli", *args], capture_output=True, text=True, env=e,
                          cwd=cwd, timeout=600)


class CliResult(NamedTuple):
    """What :func:`run_inprocess` returns: the fields of a ``CompletedProcess`` that the checks use."""

    returncode: int
    stdout: str
    stderr: str


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# the warning categories a fresh interpreter does not print (Python's default filters)
_HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def run_inprocess(args, monkeypatch, capture) -> CliResult:
    """Run ``eo-edge ARGS`` in this process through the console-script entry point
    (``eo_edge.cli.main``), as :func:`run_cli` does in a subprocess, and return
    ``(exit code, stdout, stderr)``.

    ``capture`` is pytest's ``capfd`` (also catches native libraries writing to fd 2, as a
    subprocess would) or ``capsys``. The CLI's rich Consoles look up ``sys.stdout``/``sys.stderr``
    when they print, so either captures them. What a fresh process would show on stderr and
    pytest would otherwise keep to itself is put there too: warnings (Python's default filters)
    and log records (the root logger's last-resort handler). ``sys.argv`` is set with
    ``monkeypatch``; the caller sets the environment (``EO_EDGE_HOME``, ``EO_EDGE_DEBUG``) with it."""
    from eo_edge.cli import main

    monkeypatch.setattr(sys, "argv", ["eo-edge", *map(str, args)])
    capture.readouterr()  # drop anything printed before the call
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers, root.level = [], logging.WARNING  # a fresh process: records go to stderr
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                if isinstance(e.code, str):
                    sys.stderr.write(e.code + "\n")
    finally:
        root.handlers, root.level = saved_handlers, saved_level
    shown = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line)
                    for w in caught if not issubclass(w.category, _HIDDEN_WARNINGS))
    o, e = capture.readouterr()
    return CliResult(code, _ANSI.sub("", o), shown + _ANSI.sub("", e))


def assert_one_line_error(p: subprocess.CompletedProcess | CliResult, *needles: str) -> None:
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
    from eo_edge.assets import TEST_SUBSET_DIR
    from eo_edge.data.subsets import load_flat_images
    from eo_edge.export import export

    out = tmp_path_factory.mktemp("onnx") / "r8.onnx"
    return out, export(trained_ckpt, out, parity_images=load_flat_images(TEST_SUBSET_DIR, 256)[0])


@pytest.fixture
def cli(monkeypatch, capfd):
    """``cli(*args, env=None, cwd=None)``: :func:`run_cli` in this process (through
    :func:`run_inprocess`), same result fields, no interpreter start-up: for the fast set. The
    environment and working folder it sets are restored after the test."""

    def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> CliResult:
        monkeypatch.delenv("EO_EDGE_DEBUG", raising=False)
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, str(v))
        if cwd is not None:
            monkeypatch.chdir(cwd)
        return run_inprocess(args, monkeypatch, capfd)

    return run
