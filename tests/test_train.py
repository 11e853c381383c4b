"""A short real training run on real images, resume, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli

torch = pytest.importorskip("torch")


def test_short_training_learns_and_writes_artifacts(small_ckpt):
    run = small_ckpt.parent
    m = json.loads((run / "metrics.json").read_text())
    assert m["n_images"] == 4050 and m["top1"] > 25.0  # trained on 2,048 images for 2 epochs; chance is 10 %
    assert set(m["test"]) >= {"top1", "macro_precision", "macro_recall", "macro_f1", "per_class", "confusion"}
    assert np.asarray(m["test"]["confusion"]).sum() == 4050
    h = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in h] == [1, 2] and h[1]["train_loss"] < h[0]["train_loss"]
    assert (run / "confusion.png").stat().st_size > 10_000
    assert m["best_epoch"] == int(np.argmax([e["val_top1"] for e in h])) + 1  # selected on validation


def test_resume_continues_from_last_checkpoint(prepared, tmp_path):
    from eo_edge.train import TrainOptions, train

    logs: list[str] = []
    opts = TrainOptions(arch="resnet8", epochs=1, limit_train=256, batch_size=64, threads=2)
    train(opts, prepared, tmp_path, progress=False, log=logs.append)
    opts.epochs = 2
    res = train(opts, prepared, tmp_path, progress=False, log=logs.append)
    assert any("resumed" in ln and "epoch 2" in ln for ln in logs)
    hist = json.loads((tmp_path / "history.json").read_text())
    assert [e["epoch"] for e in hist] == [1, 2] and res["epochs"] == 2


def test_train_cli_bad_input(tmp_path):
    p = run_cli("train", "--arch", "resnet9000", "--data", str(tmp_path))
    assert_one_line_error(p, "unknown model")
    p = run_cli("train", "--data", str(tmp_path / "missing.zip"))
    assert_one_line_error(p, "not found")
