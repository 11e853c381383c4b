"""A short real training run on real images, resume, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_line_error

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
    from eo_edge.train.loop import TrainOptions, train

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


def test_train_cli_bad_input(tmp_path, cli):
    p = cli("train", "--arch", "resnet9000", "--data", str(tmp_path))
    assert_one_line_error(p, "unknown model")
    p = cli("train", "--data", str(tmp_path / "missing.zip"))
    assert_one_line_error(p, "not found")


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    """A prepared cache of real EuroSAT chips (the shipped test subset, 64 px), laid out as a root
    with train/ (8 per class) and test/ (2 per class) folders of all 10 classes: the shipped
    models' class names, so they can be teachers; an epoch takes a second."""
    import shutil

    from conftest import ROOT

    from eo_edge.data import prepare
    from eo_edge.data.dataset import EUROSAT_CLASSES

    root = tmp_path_factory.mktemp("tiny")
    for cls in EUROSAT_CLASSES:
        for i, f in enumerate(sorted((ROOT / "samples" / "eurosat-test-1000").glob(f"{cls}_*.jpg"))[:10]):
            d = root / "src" / ("train" if i < 8 else "test") / cls
            d.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, d / f.name)
    prepare(root / "src", root / "cache", progress=False)
    return root / "cache"


EPOCH_LINE = r"epoch (\d+)/(\d+)  train loss \d+\.\d{4}  val top-1 \d+\.\d\d %  lr \d\.\d\de[-+]\d\d  \d+ s"


def _epoch_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("epoch ")]


def test_train_cli_prints_each_epoch_off_a_terminal_and_does_not_redo_a_finished_run(tiny_cache, tmp_path, cli):
    """Captured output (a pipe, not a TTY: no progress bars) gets one line per epoch with loss,
    val top-1, learning rate and elapsed seconds; running the finished run again trains nothing
    and says so (it used to claim "resumed ... at epoch 3"); -q prints no epoch lines."""
    import re

    env = {"EO_EDGE_HOME": str(tmp_path / "home")}
    run = tmp_path / "run"
    args = ("train", "--arch", "resnet8", "--data", str(tiny_cache), "--epochs", "2", "--batch-size", "16",
            "--threads", "1", "--out", str(run))
    p = cli(*args, env=env)
    assert p.returncode == 0, p.stderr
    lines = _epoch_lines(p.stderr)
    assert [re.fullmatch(EPOCH_LINE, ln) is not None for ln in lines] == [True, True], p.stderr
    assert [re.fullmatch(EPOCH_LINE, ln).group(1, 2) for ln in lines] == [("1", "2"), ("2", "2")]
    h = json.loads((run / "history.json").read_text())
    assert f"lr {h[1]['lr']:.2e}" in lines[1] and f"val top-1 {h[1]['val_top1']:.2f} %" in lines[1]
    assert any(ln.startswith("training resnet8 on ") for ln in p.stderr.splitlines())  # before epoch 1
    metrics = (run / "metrics.json").read_bytes()

    again = cli(*args, env=env)
    assert again.returncode == 0, again.stderr
    assert f"run {run} already finished all 2 epochs; nothing to do (use --no-resume to start over)" in again.stderr
    assert "resumed" not in again.stderr and not _epoch_lines(again.stderr)
    assert "best checkpoint" in again.stdout and f"(epoch {json.loads(metrics)['best_epoch']}," in again.stdout
    assert (run / "metrics.json").read_bytes() == metrics  # not evaluated or written again

    quiet = cli(*args[:-1], str(tmp_path / "quiet"), "--epochs", "1", "-q", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert not _epoch_lines(quiet.stderr) and (tmp_path / "quiet" / "metrics.json").is_file()


def test_finished_run_without_metrics_is_evaluated_not_retrained(tiny_cache, tmp_path):
    """A run stopped after its last epoch but before the test evaluation finished (no
    metrics.json): a resume evaluates best.pt on test and trains no epoch."""
    from eo_edge.data import load_prepared
    from eo_edge.train.loop import TrainOptions, train

    data = load_prepared(tiny_cache)
    opts = TrainOptions(arch="resnet8", epochs=1, batch_size=16, threads=1)
    first = train(opts, data, tmp_path, progress=False, log=lambda m: None)
    (tmp_path / "metrics.json").unlink()
    logs: list[str] = []
    res = train(opts, data, tmp_path, progress=False, log=logs.append)
    assert any("already trained all 1 epochs; evaluating its best.pt on the test split" in m for m in logs), logs
    assert not _epoch_lines("\n".join(logs)) and res["top1"] == first["top1"]
    assert (tmp_path / "metrics.json").is_file()


def test_distill_cli_prints_teacher_confidences_each_epoch(tiny_cache, tmp_path, cli):
    """distill's epoch line also carries the teachers' mean confidences, the weights used and
    the rule's branches (the shipped ResNet8 and ResNet16 as teachers)."""
    import re

    from conftest import ROOT

    p = cli("distill", "--student", "resnet8", "--teacher", str(ROOT / "models" / "resnet8_eurosat64.pt"),
                "--teacher", str(ROOT / "models" / "resnet16_eurosat64.pt"), "--data", str(tiny_cache),
                "--epochs", "1", "--batch-size", "16", "--threads", "1", "--out", str(tmp_path / "kd"),
                env={"EO_EDGE_HOME": str(tmp_path / "home")})
    assert p.returncode == 0, p.stderr
    (line,) = _epoch_lines(p.stderr)
    m = re.fullmatch(EPOCH_LINE + r"  teacher conf (\d\.\d{3}), (\d\.\d{3})  weights (\d\.\d{3}), (\d\.\d{3})"
                     r"  branches \w.*", line)
    assert m is not None, line
    h = json.loads((tmp_path / "kd" / "history.json").read_text())[0]
    assert [float(v) for v in m.group(3, 4)] == [round(c, 3) for c in h["teacher_confidence"]]
    assert [float(v) for v in m.group(5, 6)] == [round(w, 3) for w in h["teacher_weight"]]


def test_resume_with_other_options_is_refused_before_any_work(tiny_cache, tmp_path, cli):
    """A run folder holds one run: resuming it with another --lr or --epochs (which would restart
    the cosine schedule mid-run) is refused with one line, last.pt untouched; --threads may differ."""
    env = {"EO_EDGE_HOME": str(tmp_path / "home")}
    run = tmp_path / "run"
    base = ("train", "--arch", "resnet8", "--data", str(tiny_cache), "--batch-size", "16", "--out", str(run), "-q")
    p = cli(*base, "--epochs", "1", "--threads", "1", env=env)
    assert p.returncode == 0, p.stderr
    before = (run / "last.pt").read_bytes()
    bad = cli(*base, "--epochs", "3", "--lr", "0.01", env=env)
    assert_one_line_error(bad, str(run / "last.pt"), "--epochs 1 (now 3)", "--lr 0.003 (now 0.01)", "--no-resume")
    assert (run / "last.pt").read_bytes() == before
    same = cli(*base, "--epochs", "1", "--threads", "2", env=env)  # threads do not shape the result
    assert same.returncode == 0 and "already finished all 1 epochs" in same.stderr, same.stderr


def test_distill_thresholds_shape_the_rule_and_the_run(tiny_cache, tmp_path, cli):
    """--low/--high reach the rule: with both at 0 every teacher counts as confident, so every
    batch takes 'all_confident' (0.5 / 0.5); they are result-shaping, so a resume with another
    --high is refused; bad thresholds are one line before any work."""
    from conftest import ROOT

    env = {"EO_EDGE_HOME": str(tmp_path / "home")}
    base = ("distill", "--student", "resnet8", "--teacher", str(ROOT / "models" / "resnet8_eurosat64.pt"),
            "--teacher", str(ROOT / "models" / "resnet16_eurosat64.pt"), "--data", str(tiny_cache),
            "--epochs", "1", "--batch-size", "16", "--threads", "1", "--out", str(tmp_path / "kd"), "-q")
    p = cli(*base, "--low", "0", "--high", "0", env=env)
    assert p.returncode == 0, p.stderr
    h = json.loads((tmp_path / "kd" / "history.json").read_text())[0]
    assert h["rule_branch_fraction"]["all_confident"] == 1.0 and h["teacher_weight"] == [0.5, 0.5]
    assert_one_line_error(cli(*base, "--low", "0", "--high", "0.5", env=env), "--high 0.0 (now 0.5)")
    assert_one_line_error(cli(*base, "--low", "0.7", "--high", "0.6", "--no-resume", env=env),
                          "need 0 <= --low <= --high <= 1")


def test_threshold_defaults_are_the_papers():
    """TrainOptions and `eo-edge distill --low/--high` default to eo_edge.train.distill's PAPER_LOW /
    PAPER_HIGH (kept as literals where torch is not imported)."""
    import inspect

    from eo_edge.cli.train import distill
    from eo_edge.train.distill import PAPER_HIGH, PAPER_LOW
    from eo_edge.train.loop import TrainOptions

    assert (TrainOptions().low, TrainOptions().high) == (PAPER_LOW, PAPER_HIGH)
    params = inspect.signature(distill).parameters
    assert (params["low"].default, params["high"].default) == (PAPER_LOW, PAPER_HIGH)


def test_img_size_defaults_to_the_datasets_own_size():
    """`train`/`distill` without --img-size use the prepared images' own size (issue 29: a 256 px
    dataset is not silently resized to EuroSAT's 64 px); given, it wins."""
    import types

    import numpy as np

    from eo_edge.app.training import native_size, train_options
    from eo_edge.errors import EOEdgeError

    opts = train_options(arch="resnet8", img_size=None)
    assert opts.img_size is None
    said = []
    ds = types.SimpleNamespace(images=np.zeros((2, 96, 96, 3), np.uint8))
    assert native_size(opts, ds, said.append).img_size == 96 and "96 px, the dataset's own" in said[0]
    assert native_size(train_options(arch="resnet8", img_size=64), ds, said.append).img_size == 64
    with pytest.raises(EOEdgeError, match="--img-size must be between 8 and 1024"):
        train_options(arch="resnet8", img_size=4)
