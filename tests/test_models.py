"""Model registry, the paper's ResNet8/16, and checkpoint loading both ways."""

from __future__ import annotations

import pytest

from conftest import SENTRY, assert_one_line_error, needs_sentry, run_cli
from eo_edge.errors import EOEdgeError
from eo_edge.models import REGISTRY, create_model

torch = pytest.importorskip("torch")


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def test_resnet8_matches_paper_parameter_count():
    m, cfg = create_model("resnet8")
    assert n_params(m) == 103_642
    assert cfg.input_size == 64 and cfg.num_classes == 10
    m16, _ = create_model("resnet16")
    assert n_params(m16) > n_params(m)


@pytest.mark.parametrize("arch", [a for a in REGISTRY if a not in ("resnet8", "resnet16")])
def test_timm_models_build_offline_and_run(arch):
    m, cfg = create_model(arch)
    m.eval()
    with torch.no_grad():
        y = m(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, 10)
    assert cfg.role in ("teacher", "baseline")


def test_unknown_arch():
    with pytest.raises(EOEdgeError, match="unknown model"):
        create_model("resnet9000")


@pytest.mark.slow
@needs_sentry
@pytest.mark.slow
def test_authors_resnet8_loads_and_classifies_real_images(prepared):
    from eo_edge.data import split_indices
    from eo_edge.metrics.evaluate import evaluate, torch_logit_fn
    from eo_edge.models.checkpoint import load_checkpoint

    model, cfg, info = load_checkpoint(SENTRY / "resnet8_dual.pth")
    assert info["kind"] == "state_dict" and cfg.arch == "resnet8" and cfg.input_size == 224
    assert n_params(model) == 103_642
    te = split_indices(prepared, "test")
    sub = prepared.subset(te[:: 10])  # 405 real test images, every class
    rep = evaluate(torch_logit_fn(model), sub, cfg.input_size, cfg.mean, cfg.std, cfg.class_names, progress=False)
    assert rep["n_images"] == 405
    assert rep["top1"] >= 88.0, rep["top1"]  # 94.05 % on the full test split (see README)


@needs_sentry
def test_untrained_resnet16_is_refused():
    from eo_edge.models.checkpoint import load_checkpoint

    with pytest.raises(EOEdgeError, match="not a trained model"):
        load_checkpoint(SENTRY / "resnet16_dual.pth")
    m, cfg, _ = load_checkpoint(SENTRY / "resnet16_dual.pth", allow_untrained=True)
    assert cfg.arch == "resnet16"


@needs_sentry
def test_cli_eval_refuses_untrained_checkpoint(prepared):
    p = run_cli("eval", str(SENTRY / "resnet16_dual.pth"), "--split", "val", "-q")
    assert_one_line_error(p, "not a trained model", "BatchNorm")


def test_eo_edge_checkpoint_round_trip(tmp_path):
    from eo_edge.models.checkpoint import load_checkpoint, save_checkpoint

    m, cfg = create_model("resnet8", input_size=72)
    with torch.no_grad():  # make BatchNorm statistics "trained"
        m.train()
        m(torch.randn(8, 3, 72, 72))
    m.eval()
    p = save_checkpoint(tmp_path / "r8.pt", m, cfg, meta={"note": "x"})
    m2, cfg2, info = load_checkpoint(p)
    assert cfg2 == cfg and info["kind"] == "eo-edge" and info["meta"]["note"] == "x"
    x = torch.randn(3, 3, 72, 72)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))
    # weights_only loading: the file holds plain containers and tensors only
    obj = torch.load(p, weights_only=True)
    assert obj["config"]["arch"] == "resnet8" and obj["config"]["input_size"] == 72


@needs_sentry
def test_state_dict_that_does_not_match_the_architecture(tmp_path):
    from eo_edge.models.checkpoint import load_checkpoint

    with pytest.raises(EOEdgeError, match="do not match architecture resnet16"):
        load_checkpoint(SENTRY / "resnet8_dual.pth", arch="resnet16")


def test_corrupt_and_missing_checkpoints(tmp_path):
    from eo_edge.models.checkpoint import load_checkpoint

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x04 definitely not a checkpoint")
    with pytest.raises(EOEdgeError, match="cannot read checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(EOEdgeError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    p = run_cli("export", str(bad), "-o", str(tmp_path / "x.onnx"))
    assert_one_line_error(p, "cannot read checkpoint")


def test_shipping_copy_in_float16_predicts_like_the_float32_checkpoint(prepared, tmp_path):
    """ship_checkpoint (teachers in models/): float16 storage about halves the file, loads into
    the float32 model, and keeps the shipped ResNet16 teacher's predictions on real test images;
    a weight that overflows float16 and a non-eo-edge file are refused, nothing written."""
    from conftest import ROOT
    from eo_edge.data import split_indices
    from eo_edge.metrics.evaluate import evaluate, torch_logit_fn
    from eo_edge.models.checkpoint import load_checkpoint, ship_checkpoint

    src = ROOT / "models" / "resnet16_eurosat64.pt"
    r = ship_checkpoint(src, tmp_path / "t.pt")
    assert r["weights_dtype"] == "float16" and 0 < r["max_abs_rounding"] < 1e-2
    assert r["bytes"] < 0.6 * src.stat().st_size
    obj = torch.load(tmp_path / "t.pt", weights_only=True)
    assert obj["state_dict"]["fc.weight"].dtype == torch.float16 and set(obj) == {"format", "config", "state_dict", "meta"}
    assert obj["state_dict"]["bn.num_batches_tracked"].dtype == torch.int64  # integer buffers untouched
    m32, cfg, _ = load_checkpoint(src)
    m16, cfg16, info = load_checkpoint(tmp_path / "t.pt")
    assert cfg16 == cfg and info["meta"]["source_sha256"] == r["source_sha256"]
    assert next(m16.parameters()).dtype == torch.float32
    sub = prepared.subset(split_indices(prepared, "test")[::10])  # 405 real test images
    reps = [evaluate(torch_logit_fn(m), sub, cfg.input_size, cfg.mean, cfg.std, cfg.class_names, progress=False)
            for m in (m32, m16)]
    assert abs(reps[0]["top1"] - reps[1]["top1"]) <= 0.5, (reps[0]["top1"], reps[1]["top1"])  # at most 2 of 405
    assert reps[0]["top1"] > 90.0
    big = tmp_path / "big.pt"
    obj32 = torch.load(src, weights_only=True)
    obj32["state_dict"]["fc.weight"][0, 0] = 1e6
    torch.save(obj32, big)
    with pytest.raises(EOEdgeError, match="overflows float16"):
        ship_checkpoint(big, tmp_path / "out.pt")
    torch.save(obj32["state_dict"], tmp_path / "bare.pt")  # a bare state_dict has no config to ship
    with pytest.raises(EOEdgeError, match="not an eo-edge checkpoint"):
        ship_checkpoint(tmp_path / "bare.pt", tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()
