"""The same `eo-edge train` command runs data-parallel under torchrun (2 CPU processes, gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytest.importorskip("torch")


@pytest.mark.slow
def test_torchrun_two_cpu_processes(prepared, tmp_path):
    out, probe = tmp_path / "ddp", tmp_path / "probe"
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "tests" / "ddp_probe.py"), str(probe),
           "train", "--arch", "resnet8", "--epochs", "1", "--limit-train", "512", "--batch-size", "64", "--threads", "1",
           "--device", "cpu", "--out", str(out)]  # no -q: it hides the epoch line counted below
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stderr.count("epoch 1/1") == 1  # only rank 0 logs
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_images"] == 4050 and m["best_epoch"] == 1
    h = json.loads((out / "history.json").read_text())
    assert len(h) == 1 and 0.0 < h[0]["train_loss"] < 10.0
    import torch

    from eo_edge.models import create_model
    from eo_edge.models.checkpoint import load_checkpoint

    r0, r1 = (torch.load(probe / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    # each rank trained on its own half of every global batch: 512 // 64 = 8 steps, different data per step
    assert len(r0["batches"]) == len(r1["batches"]) == 8
    assert all(a != b for a, b in zip(r0["batches"], r1["batches"]))
    assert len(set(r0["batches"]) | set(r1["batches"])) == 16
    # ...and yet both ranks end with bitwise identical parameters: only averaged (all-reduced)
    # gradients can do that; ranks training alone on their shards would drift apart
    assert r0["params"].keys() == r1["params"].keys() and len(r0["params"]) > 10
    differ = [n for n in r0["params"] if not torch.equal(r0["params"][n], r1["params"][n])]
    assert differ == [], differ
    # the saved checkpoint is that shared model, and it moved away from a fresh initialisation
    trained, _, _ = load_checkpoint(out / "best.pt")
    for n, t in trained.named_parameters():
        assert torch.equal(t.detach(), r1["params"][n]), n
    with torch.random.fork_rng(devices=[]):  # the seed stays in this test
        torch.manual_seed(0)
        fresh, _ = create_model("resnet8")
    assert not torch.equal(trained.fc.weight, fresh.fc.weight)
