"""A short real training run on real images, resume, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli

torch = pytest.importorskip("torch")


@pytest.mark.slow  # small_ckpt trains for minutes
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


def _small_eurosat(prepared, n_train: int = 64, every: int = 20):
    """A slice of the real data: ``n_train`` training images spread over all classes and every
    ``every``-th validation and test image. The committed split still applies; evaluations
    are ``every`` times cheaper."""
    from eo_edge.data import split_indices

    tr, va, te = (split_indices(prepared, s) for s in ("train", "val", "test"))
    tr = tr[:: len(tr) // n_train][:n_train]
    return prepared.subset(np.sort(np.concatenate([tr, va[::every], te[::every]])))


def test_resume_restores_weights_and_optimizer(prepared, tmp_path):
    """A 2-epoch run interrupted after epoch 1 and resumed ends exactly where an uninterrupted
    2-epoch run ends: same weights and BatchNorm statistics, same AdamW state (step count,
    both moments), same LR-schedule position, same history."""
    from eo_edge.train import TrainOptions, train

    data = _small_eurosat(prepared)
    opts = TrainOptions(arch="resnet8", epochs=2, batch_size=16, threads=1)  # 64 images: 4 steps per epoch
    straight = train(opts, data, tmp_path / "straight", progress=False, log=lambda m: None)

    class Interrupted(Exception):
        pass

    def stop_after_epoch_1(msg: str) -> None:  # raised at the end of epoch 2, before it is saved
        if msg.startswith("epoch 2/2"):
            raise Interrupted

    run = tmp_path / "resumed"
    with pytest.raises(Interrupted):
        train(opts, data, run, progress=False, log=stop_after_epoch_1)
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 0 and not (run / "metrics.json").exists()
    logs: list[str] = []
    res = train(opts, data, run, progress=False, log=logs.append)
    assert any("resumed" in ln and "epoch 2" in ln for ln in logs)
    assert not any(ln.startswith("epoch 1/2") for ln in logs)  # epoch 1 is not trained again

    a, b = (torch.load(d / "last.pt", weights_only=True) for d in (tmp_path / "straight", run))
    assert a["epoch"] == b["epoch"] == 1
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys() and len(sa) == len(list(_resnet8().parameters()))
    for i in sa:
        assert float(sa[i]["step"]) == float(sb[i]["step"]) == 8, i  # 2 epochs x 4 steps, counted across the resume
        assert torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) and torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]), i
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 8
    ha, hb = (json.loads((d / "history.json").read_text()) for d in (tmp_path / "straight", run))
    assert [e["epoch"] for e in hb] == [1, 2] and res["epochs"] == 2
    for ea, eb in zip(ha, hb):
        assert (ea["train_loss"], ea["val_top1"], ea["lr"]) == (eb["train_loss"], eb["val_top1"], eb["lr"])
    assert res["top1"] == straight["top1"] and res["best_epoch"] == straight["best_epoch"]


def _resnet8():
    from eo_edge.models import create_model

    return create_model("resnet8")[0]


def test_train_cli_bad_input(tmp_path):
    p = run_cli("train", "--arch", "resnet9000", "--data", str(tmp_path))
    assert_one_line_error(p, "unknown model")
    p = run_cli("train", "--data", str(tmp_path / "missing.zip"))
    assert_one_line_error(p, "not found")
