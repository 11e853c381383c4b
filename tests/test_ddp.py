"""The same `eo-edge train` command runs data-parallel under torchrun (2 CPU processes, gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")


def test_torchrun_two_cpu_processes(prepared, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "eo_edge.cli",
           "train", "--arch", "resnet8", "--epochs", "1", "--limit-train", "512", "--batch-size", "64", "--threads", "1",
           "--device", "cpu", "--out", str(out), "-q"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stderr.count("epoch 1/1") == 1  # only rank 0 logs
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_images"] == 4050 and m["best_epoch"] == 1
    h = json.loads((out / "history.json").read_text())
    assert len(h) == 1 and 0.0 < h[0]["train_loss"] < 10.0
    # the saved weights moved away from a fresh initialisation
    import torch

    from eo_edge.models import create_model
    from eo_edge.models.checkpoint import load_checkpoint

    trained, _, _ = load_checkpoint(out / "best.pt")
    torch.manual_seed(0)
    fresh, _ = create_model("resnet8")
    assert not torch.equal(trained.fc.weight, fresh.fc.weight)
