"""Distillation end to end on real images: exact teacher-logit cache, per-epoch logging, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli

torch = pytest.importorskip("torch")


def test_teacher_cache_is_exactly_the_online_teacher(small_ckpt, prepared, tmp_path):
    from eo_edge.data import split_indices
    from eo_edge.distill_train import build_teacher_cache
    from eo_edge.models.checkpoint import load_checkpoint
    from eo_edge.train import augment_batch

    rows = split_indices(prepared, "train")[:96]
    cache = build_teacher_cache([small_ckpt], prepared, rows, tmp_path, progress=False, log=lambda m: None)
    assert cache.logits.shape == (1, 96, 8, 10)
    model, cfg, _ = load_checkpoint(small_ckpt)
    gen = torch.Generator().manual_seed(3)
    x8 = torch.from_numpy(np.ascontiguousarray(prepared.images[rows[:32]])).permute(0, 3, 1, 2).float() / 255
    aug, tids = augment_batch(x8, gen)
    assert len(set(tids.tolist())) > 4  # several views drawn
    mean = torch.tensor(cfg.mean).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        online = model((aug - mean) / std).numpy()
    cached = cache.get(rows[:32], tids.numpy())[0].numpy()
    assert np.abs(online - cached).max() < 1e-4
    # a second build with the same inputs is a cache hit
    logs: list[str] = []
    build_teacher_cache([small_ckpt], prepared, rows, tmp_path, progress=False, log=logs.append)
    assert any("cache hit" in m for m in logs)


def test_distill_cli_logs_confidences_and_weights(small_ckpt, prepared, tmp_path):
    out = tmp_path / "kd"
    p = run_cli("distill", "--student", "resnet8", "--teacher", str(small_ckpt), "--teacher", str(small_ckpt),
                "--epochs", "1", "--limit-train", "512", "--batch-size", "64", "--threads", "2", "--out", str(out),
                "--json", str(tmp_path / "kd.json"), "-q")
    assert p.returncode == 0, p.stderr
    assert "teacher conf" in p.stderr and "weights" in p.stderr
    hist = json.loads((out / "history.json").read_text())
    c, w = hist[0]["teacher_confidence"], hist[0]["teacher_weight"]
    assert len(c) == 2 and abs(c[0] - c[1]) < 1e-6 and 0.1 <= c[0] <= 1.0  # the same teacher twice
    assert len(w) == 2 and abs(w[0] - w[1]) < 1e-9
    res = json.loads((tmp_path / "kd.json").read_text())
    assert res["n_images"] == 4050 and res["options"]["weighting"] == "batch"


def test_distill_cli_bad_input(tmp_path):
    p = run_cli("distill", "--teacher", str(tmp_path / "missing.pt"))
    assert_one_line_error(p, "teacher checkpoint not found")
    p = run_cli("distill", "--teacher", str(tmp_path / "missing.pt"), "--weighting", "fancy")
    assert_one_line_error(p, "unknown --weighting")
