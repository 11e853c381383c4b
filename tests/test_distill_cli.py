"""Distillation end to end on real images: exact teacher-logit cache, per-epoch logging, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli

torch = pytest.importorskip("torch")


@pytest.mark.slow
def test_teacher_cache_is_exactly_the_online_teacher(trained_ckpt, prepared, tmp_path):
    from conftest import ROOT
    from eo_edge.data import split_indices
    from eo_edge.train.d4 import augment_batch
    from eo_edge.models.checkpoint import load_checkpoint
    from eo_edge.train.teacher_cache import build_teacher_cache

    rows = split_indices(prepared, "train")[:96]
    cache = build_teacher_cache([trained_ckpt], prepared, rows, tmp_path, progress=False, log=lambda m: None)
    assert cache.logits.shape == (1, 96, 8, 10)
    model, cfg, _ = load_checkpoint(trained_ckpt)
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
    # the cache is per teacher: a pair that includes this teacher reuses its file, computes the other
    logs: list[str] = []
    pair = build_teacher_cache([trained_ckpt, ROOT / "models" / "resnet16_eurosat64.pt"], prepared, rows, tmp_path,
                               progress=False, log=logs.append)
    assert any("cache hit for" in m and trained_ckpt.name in m for m in logs)
    assert any("resnet16_eurosat64.pt done" in m for m in logs)
    assert np.array_equal(pair.logits[0], cache.logits[0]) and not np.allclose(pair.logits[1], pair.logits[0])


@pytest.mark.slow
def test_distill_cli_two_teachers_follow_the_rule(trained_ckpt, prepared, tmp_path):
    """Two different teachers (ResNet8 and ResNet16): their logged confidences differ, and the
    weights are the ones the paper's rule gives in the branch that the log says fired."""
    from conftest import ROOT

    out = tmp_path / "kd"
    p = run_cli("distill", "--student", "resnet8", "--teacher", str(trained_ckpt),
                "--teacher", str(ROOT / "models" / "resnet16_eurosat64.pt"),
                "--epochs", "1", "--limit-train", "512", "--batch-size", "64", "--threads", "2", "--out", str(out),
                "--json", str(tmp_path / "kd.json"))  # no -q: -q also hides the epoch lines
    assert p.returncode == 0, p.stderr
    assert "teacher conf" in p.stderr and "weights" in p.stderr and "branches" in p.stderr
    h = json.loads((out / "history.json").read_text())[0]
    c, w, br = h["teacher_confidence"], h["teacher_weight"], h["rule_branch_fraction"]
    assert len(c) == 2 and abs(c[0] - c[1]) > 1e-3  # two different teachers
    assert abs(sum(br.values()) - 1.0) < 1e-9
    if br["all_below_high"] == 1.0 and min(c) > 0.25:
        # branch 2 in every batch: w_k = max(0.5 - (0.6 - c_k), 0.1) = c_k - 0.1 (linear above 0.2),
        # so the epoch means obey it exactly
        assert all(abs(wk - (ck - 0.1)) < 1e-6 for wk, ck in zip(w, c)), (w, c)
    elif br["all_confident"] == 1.0:
        assert w == [0.5, 0.5]
    else:
        assert w[0] != w[1]
    res = json.loads((tmp_path / "kd.json").read_text())
    assert res["n_images"] == 4050 and res["options"]["weighting"] == "batch"


def test_distill_cli_bad_input(tmp_path):
    p = run_cli("distill", "--teacher", str(tmp_path / "missing.pt"))
    assert_one_line_error(p, "teacher checkpoint not found")
    p = run_cli("distill", "--teacher", str(tmp_path / "missing.pt"), "--weighting", "fancy")
    assert_one_line_error(p, "unknown --weighting")
