"""Onboard decisions: uncertainty of top-1, temperature scaling stored in the model and applied by
every backend, selective classification, `eo-edge calibrate` and `eo-edge predict` on real images."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, run_cli
from eo_edge.metrics.stats import (mcnemar, risk_coverage, selective_at, softmax, threshold_for_accuracy,
                                   wilson_interval)

FAMILY = ("resnet8_eurosat64.pt", "resnet8_eurosat64.onnx", "resnet8_eurosat64.fp16.onnx",
          "resnet8_eurosat64.int8-minmax.onnx", "resnet8_eurosat64.int8-minmax-u8.onnx")


def test_wilson_and_mcnemar_known_values():
    # Wilson 95 % for 0/10 is [0, 27.75 %] and for 10/10 [72.25 %, 100 %] (Brown, Cai & DasGupta 2001, table)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(27.75, abs=0.01)
    lo, hi = wilson_interval(10, 10)
    assert lo == pytest.approx(72.25, abs=0.01) and hi == pytest.approx(100.0)
    lo, hi = wilson_interval(965, 1000)
    assert lo < 96.5 < hi and hi - lo == pytest.approx(2.3, abs=0.1)
    # exact McNemar: 10 discordant images all one way -> p = 2 * 0.5**10
    a = np.r_[np.ones(10, bool), np.ones(90, bool)]
    b = np.r_[np.zeros(10, bool), np.ones(90, bool)]
    m = mcnemar(a, b)
    assert (m["a_only"], m["b_only"]) == (10, 0) and m["p_value"] == pytest.approx(2 * 0.5 ** 10)
    assert m["delta_pts"] == pytest.approx(10.0) and not m["within_noise"]
    assert m["ci95_pts"][0] < 10.0 < m["ci95_pts"][1]
    # thousands of discordant pairs: the exact p-value must not overflow
    big = mcnemar(np.r_[np.ones(1500, bool), np.zeros(1500, bool)], np.r_[np.zeros(1499, bool), np.ones(1501, bool)])
    assert big["within_noise"] and 0.9 < big["p_value"] <= 1.0
    with pytest.raises(ValueError):
        mcnemar(np.ones(3, bool), np.ones(4, bool))


def test_selective_classification_on_a_known_ranking():
    conf = np.linspace(1.0, 0.01, 100)  # most confident first
    correct = np.r_[np.ones(90, bool), np.zeros(10, bool)]  # the 10 least confident are wrong
    t = threshold_for_accuracy(conf, correct, 99.0)
    assert t["reached"] and t["coverage_pct"] == pytest.approx(90.0) and t["accuracy_pct"] == 100.0
    assert selective_at(conf, correct, t["threshold"])["kept"] == 90
    rc = risk_coverage(conf, correct)
    perfect = float(np.mean([max(0, i - 90) / i for i in range(1, 101)]) * 100)
    assert rc["aurc_pct"] == pytest.approx(perfect)
    worst = risk_coverage(conf, correct[::-1])  # the wrong ones are the most confident
    assert worst["aurc_pct"] > 5 * rc["aurc_pct"]
    assert not threshold_for_accuracy(conf, correct[::-1], 99.0)["reached"]


@pytest.fixture(scope="module")
def calibrated(prepared, tmp_path_factory):
    """A copy of the shipped ResNet8 family, calibrated by `eo-edge calibrate` on the val split."""
    d = tmp_path_factory.mktemp("cal")
    for f in FAMILY:
        shutil.copy(ROOT / "models" / f, d / f)
    p = run_cli("calibrate", str(d / FAMILY[0]), "--target-accuracy", "99", "--json", str(d / "cal.json"), "-q")
    assert p.returncode == 0, p.stderr
    return d, json.loads((d / "cal.json").read_text())


def test_calibrate_stores_T_in_every_artifact_and_keeps_the_family_linked(calibrated):
    from eo_edge.artifact.onnx_meta import read_metadata
    from eo_edge.fileio import sha256_file
    from eo_edge.models.checkpoint import load_checkpoint

    d, rec = calibrated
    t, dec = rec["temperature"], rec["decision"]
    assert 0.2 < t < 5 and t != 1.0
    assert sorted(rec["updated"]) == sorted(str(d / f) for f in FAMILY)
    assert dec["val_nll_after"] <= dec["val_nll_before"]  # T minimises the validation NLL
    assert dec["reached"] and dec["val_accuracy_pct"] >= 99.0 and 50 < dec["val_coverage_pct"] < 100
    _, cfg, _ = load_checkpoint(d / FAMILY[0])
    assert cfg.temperature == t and cfg.decision["threshold"] == dec["threshold"]
    onnx_sha = sha256_file(d / FAMILY[1])
    assert read_metadata(d / FAMILY[1])["source_sha256"] == sha256_file(d / FAMILY[0])
    for f in FAMILY[1:]:
        md = read_metadata(d / f)
        assert md["config"]["temperature"] == t and md["config"]["decision"]["threshold"] == dec["threshold"]
        if f != FAMILY[1]:
            assert md["parent_sha256"] == onnx_sha  # bench still finds them beside their parent


def test_every_backend_applies_the_stored_temperature(calibrated, prepared):
    from eo_edge.backends import get_backend
    from eo_edge.data.transforms import preprocess

    d, rec = calibrated
    x = preprocess(prepared.images[:32], 64, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    probs = {}
    for name in ("onnxruntime", "openvino"):
        with get_backend(name).load(d / FAMILY[3]) as r:  # the INT8 (TensorRT-form) artifact
            assert r.temperature == rec["temperature"]
            p = r.probabilities(x)
            np.testing.assert_allclose(p, softmax(r.infer(x), rec["temperature"]), rtol=1e-6)
            assert not np.allclose(p, softmax(r.infer(x), 1.0))  # T really changes the probabilities
            probs[name] = p
    assert (probs["onnxruntime"].argmax(1) == probs["openvino"].argmax(1)).mean() >= 0.95


def test_eval_reports_calibration_before_after_and_the_keep_rule(calibrated, tmp_path, cli):
    d, rec = calibrated
    p = cli("eval", str(d / FAMILY[3]), "--json", str(tmp_path / "e.json"), "-q")
    assert p.returncode == 0, p.stderr
    e = json.loads((tmp_path / "e.json").read_text())
    dq = e["decision"]
    assert dq["temperature"] == rec["temperature"] and e["ece_pct"] != dq["uncalibrated"]["ece_pct"]
    at = dq["at_threshold"]
    assert at["threshold"] == rec["decision"]["threshold"] and 50 < at["coverage_pct"] < 100
    assert at["accuracy_pct"] > e["top1"]  # abstaining on the least confident images raises accuracy
    assert 0 < dq["aurc_pct"] < 100 - e["top1"]  # better than a random ranking (risk = error everywhere)
    assert "keep rule" in p.stdout and "T = " in p.stdout


def test_calibrate_refuses_bad_input_and_dry_run_changes_nothing(calibrated, tmp_path, cli):
    from eo_edge.fileio import sha256_file

    d, _ = calibrated
    p = cli("calibrate", str(d / FAMILY[3]))
    assert_one_line_error(p, "calibrate its FP32 parent")
    p = cli("calibrate", str(d / FAMILY[0]), "--target-accuracy", "101")
    assert_one_line_error(p, "--target-accuracy")
    p = cli("calibrate", str(tmp_path / "none.pt"))
    assert_one_line_error(p, "not found")
    before = {f: sha256_file(d / f) for f in FAMILY}
    p = cli("calibrate", str(d / FAMILY[0]), "--dry-run", "-q")
    assert p.returncode == 0, p.stderr
    assert {f: sha256_file(d / f) for f in FAMILY} == before


def test_predict_writes_jsonl_with_keep_flags_on_real_images(calibrated, tmp_path):
    d, rec = calibrated
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    files = sorted((ROOT / "samples" / "eurosat-test-1000").glob("*.jpg"))[::5]  # 200 real test images
    for f in files:
        shutil.copy(f, imgs / f.name)
    out = tmp_path / "p.jsonl"
    p = run_cli("predict", str(d / FAMILY[3]), str(imgs), "--out", str(out))
    assert p.returncode == 0, p.stderr
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(recs) == 200 and all(r["threshold"] == rec["decision"]["threshold"] for r in recs)
    assert all((r["probability"] >= r["threshold"]) == r["keep"] for r in recs)
    right = [r["class"] == r["image"].rsplit("/", 1)[-1].rsplit("_", 1)[0] for r in recs]
    assert np.mean(right) >= 0.9
    kept = [ok for ok, r in zip(right, recs) if r["keep"]]
    assert kept and np.mean(kept) >= np.mean(right)
    # the same classes on OpenVINO, and a threshold of 1 abstains on (nearly) everything
    p = run_cli("predict", str(d / FAMILY[3]), *map(str, sorted(imgs.iterdir())[:10]), "--backend", "openvino",
                "--threshold", "1.0")
    assert p.returncode == 0, p.stderr
    ov = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["class"] for r in ov] == [r["class"] for r in recs[:10]] and sum(r["keep"] for r in ov) <= 1
    assert "abstained on" in p.stderr


def test_predict_bad_input(calibrated, tmp_path):
    d, _ = calibrated
    img = ROOT / "samples" / "eurosat-test-1000" / "Forest_10.jpg"
    if not img.is_file():
        img = next((ROOT / "samples" / "eurosat-test-1000").glob("*.jpg"))
    p = run_cli("predict", str(d / FAMILY[1]), str(img), "--threshold", "1.5")
    assert_one_line_error(p, "--threshold")
    p = run_cli("predict", str(d / FAMILY[1]), str(tmp_path / "nope.jpg"))
    assert_one_line_error(p, "image not found")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    p = run_cli("predict", str(d / FAMILY[1]), str(bad))
    assert_one_line_error(p, "cannot read image", "broken.jpg")
    ms = sorted((ROOT.parent / "shared" / "data" / "eurosat-ms-sample").glob("*.tif"))[:1]
    if ms:  # a 13-band GeoTIFF for an RGB model: the bands cannot be matched
        p = run_cli("predict", str(d / FAMILY[1]), str(ms[0]))
        assert_one_line_error(p, "13 bands", "takes 3")


def test_keep_previous_run_and_busy_verdict(tmp_path):
    from eo_edge.hostinfo import busy_verdict
    from eo_edge.report.writer import keep_previous_run

    out = tmp_path / "b"
    assert keep_previous_run(out) is None  # nothing there yet
    out.mkdir()
    (out / "bench.json").write_text(json.dumps({"created": "2026-12-02T10:00:00Z"}))
    (out / "report.md").write_text("old report")
    (out / "accuracy_vs_latency.png").write_bytes(b"png")
    kept = keep_previous_run(out)
    assert kept == out / "previous" / "20261202T100000Z"
    assert (kept / "report.md").read_text() == "old report" and not (out / "bench.json").exists()
    (out / "bench.json").write_text(json.dumps({"created": "2026-12-02T10:00:00Z"}))
    assert keep_previous_run(out).name == "20261202T100000Z-2"  # same timestamp: never overwritten
    quiet = {"loadavg": [0.1, 0.1, 0.1], "cores": 2}
    assert not busy_verdict(quiet, quiet, {"a": 1.05})["busy"]
    v = busy_verdict({"loadavg": [3.0, 2.0, 1.0], "cores": 2}, quiet, {"a": 1.05})
    assert v["busy"] and "3.00 before" in v["reasons"][0]
    assert busy_verdict(quiet, quiet, {"a": 1.8, "b": 1.7})["busy"]
    assert not busy_verdict(quiet, quiet, {"a": 3.0, "b": 1.1, "c": 1.1})["busy"]  # one erratic artifact
    assert not busy_verdict(quiet, {"loadavg": [2.0, 1, 1], "cores": 2}, {"a": 1.1})["busy"]  # its own load


@pytest.mark.slow
def test_predict_on_a_tensorrt_engine_carries_the_temperature(calibrated, tmp_path):
    """The engine `eo-edge compile --backend tensorrt` builds (TensorRT test double) carries T and the
    threshold in its sidecar; predict on it agrees with ONNX Runtime on the same images."""
    import subprocess
    import sys

    d, rec = calibrated
    shutil.copy(d / FAMILY[1], tmp_path / FAMILY[1])
    env = {"EO_EDGE_HOME": str(tmp_path / "h")}
    fake = [sys.executable, str(ROOT / "tests" / "fake_trt_cli.py")]
    import os

    e = {**os.environ, **env}
    p = subprocess.run([*fake, "compile", str(tmp_path / FAMILY[1]), "--backend", "tensorrt", "--int8",
                        "--activations", "s8", "-q"], capture_output=True, text=True, env=e, timeout=600)
    assert p.returncode == 0, p.stderr
    engine = tmp_path / "resnet8_eurosat64.int8-minmax.engine"
    imgs = sorted((ROOT / "samples" / "eurosat-test-1000").glob("*.jpg"))[::50]
    p = subprocess.run([*fake, "predict", str(engine), *map(str, imgs), "--backend", "tensorrt"], capture_output=True,
                       text=True, env=e, timeout=600)
    assert p.returncode == 0, p.stderr
    trt = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(trt) == len(imgs) and all(r["threshold"] == rec["decision"]["threshold"] for r in trt)
    assert f"T = {rec['temperature']:.4f}" in p.stderr
    o = run_cli("predict", str(tmp_path / "resnet8_eurosat64.int8-minmax.onnx"), *map(str, imgs))
    assert o.returncode == 0, o.stderr
    ort = [json.loads(line) for line in o.stdout.splitlines()]
    assert [r["class"] for r in trt] == [r["class"] for r in ort]
    np.testing.assert_allclose([r["probability"] for r in trt], [r["probability"] for r in ort], atol=1e-3)
