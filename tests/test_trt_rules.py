"""The TensorRT rule table and the static preflight (`eo-edge check`), on the shipped files,
on a file quantized with ONNX Runtime's defaults (which TensorRT rejects), and on tiny graphs
that each break one rule. The tests' fake TensorRT parser does not read this table: it enforces
onnx-tensorrt's own operators.md (tests/trt_reference.py; tests/test_trt_reference.py checks the
table against it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import ROOT, assert_one_line_error, run_cli
from eo_edge.errors import EOEdgeError
from eo_edge.artifact.onnx_meta import read_metadata
from eo_edge.artifact.forms import format_of_metadata
from eo_edge.trt_rules import load_target, target_for_version, target_names
from eo_edge.trt_rules.check import check_file, check_model, preflight

SHIPPED = sorted((ROOT / "models").glob("*.onnx"))


def _form(path: Path):
    return format_of_metadata(read_metadata(onnx.load(str(path), load_external_data=False)))


def test_every_target_is_sourced():
    names = target_names()
    assert names[0] == "tensorrt-8.5" and "tensorrt-8.6" in names and "tensorrt-10.3" in names
    for n in names:
        t = load_target(n)
        assert t.operators and t.opset_max >= 17
        assert all(src for src in t.sources.values()), n
        assert "onnx/onnx-tensorrt docs/operators.md" in t.sources["operators"]
        assert t.operators["DequantizeLinear"][0] == "INT8" and "INT32" not in t.operators["DequantizeLinear"]
    assert load_target("tensorrt-10.3").notes  # its matrix is borrowed from 10.1: said so
    assert target_for_version("8.6.2.3") == "tensorrt-8.6"
    assert target_for_version("10.3.0") == "tensorrt-10.3" and target_for_version("10.7.0") == "tensorrt-10.3"
    assert target_for_version("8.5.2") == "tensorrt-8.5"
    with pytest.raises(EOEdgeError, match="older than the oldest"):
        target_for_version("8.4.1")
    with pytest.raises(EOEdgeError, match="unknown TensorRT target 'tensorrt-7.1'"):
        load_target("tensorrt-7.1")


def test_shipped_files_pass_onnx_checker_and_tensorrt_forms_pass_every_target():
    assert len(SHIPPED) >= 8
    for path in SHIPPED:
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)  # topologically sorted, typed, valid
        fmt = _form(path)
        for name in target_names():
            v = check_model(model, name)
            if fmt.runs_on("tensorrt"):
                assert v == [], (path.name, name, [x.line() for x in v[:3]])
            else:  # the u8 form is ONNX Runtime's: uint8 zero points are not TensorRT's
                assert v and {x.rule for x in v} >= {"qdq-zero-point"}, (path.name, name)
        if fmt.precision == "int8":  # no DequantizeLinear reads anything but int8/uint8
            init = {i.name: i.data_type for i in model.graph.initializer}
            for n in model.graph.node:
                if n.op_type == "DequantizeLinear" and n.input[0] in init:
                    assert init[n.input[0]] in (TensorProto.INT8, TensorProto.UINT8), (path.name, n.name)


@pytest.fixture(scope="module")
def ort_default_int8(tmp_path_factory) -> Path:
    """The shipped ResNet8 quantized with ``quantize_static``'s defaults (QDQ, int8, biases to int32)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    from eo_edge.assets import CALIBRATION_DIR
    from eo_edge.data.subsets import load_flat_images
    from eo_edge.data.transforms import preprocess

    imgs = load_flat_images(CALIBRATION_DIR, 32)[0]
    x = preprocess(imgs, 64, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": x}])

        def get_next(self):
            return next(self.it, None)

    out = tmp_path_factory.mktemp("ortq") / "r8.ort-default.onnx"
    quantize_static(str(ROOT / "models" / "resnet8_eurosat64.onnx"), str(out), Reader(), quant_format=QuantFormat.QDQ)
    return out


def test_ort_default_quantization_fails_naming_the_node(ort_default_int8):
    v = check_file(ort_default_int8, "tensorrt-8.6")
    dq = [x for x in v if x.rule == "type" and x.op_type == "DequantizeLinear"]
    assert dq, [x.line() for x in v]
    assert "is INT32; TensorRT 8.6 accepts INT8" in dq[0].message and dq[0].node.endswith("_DequantizeLinear")
    assert "8.6-GA" in dq[0].source
    with pytest.raises(EOEdgeError, match=r"fails the TensorRT preflight \(tensorrt-10.3, \d+ violation"):
        preflight(ort_default_int8, "10.3.0")
    shipped = ROOT / "models" / "resnet8_eurosat64.int8-minmax.onnx"
    preflight(shipped, "8.5.2.2")  # the TensorRT form passes


def test_fake_tensorrt_parser_enforces_the_table(ort_default_int8):
    from fake_trt import fake_tensorrt

    for version in ("8.5.2.2", "8.6.2.3", "10.3.0"):
        trt = fake_tensorrt(version)
        builder = trt.Builder(trt.ILogger())
        net = builder.create_network(0)
        parser = trt.OnnxParser(net, trt.ILogger())
        assert not parser.parse_from_file(str(ort_default_int8))
        assert parser.num_errors > 0 and "DequantizeLinear" in parser.get_error(0)
        ok = trt.OnnxParser(builder.create_network(0), trt.ILogger())
        assert ok.parse_from_file(str(ROOT / "models" / "resnet8_eurosat64.int8-minmax.onnx")), ok.errors[:2]


def test_cli_check(ort_default_int8, tmp_path):
    shipped = ROOT / "models" / "resnet8_eurosat64.int8-minmax.onnx"
    p = run_cli("check", str(shipped), "--target", "tensorrt-8.6", "--json", str(tmp_path / "c.json"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "PASS resnet8_eurosat64.int8-minmax.onnx on tensorrt-8.6" in p.stdout
    rec = json.loads((tmp_path / "c.json").read_text())
    assert rec["ok"] is True and rec["results"][0]["n_violations"] == 0
    p = run_cli("check", str(ort_default_int8), "--target", "8.6")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("  node ")]
    assert lines and all("(DequantizeLinear)" in ln or "(QuantizeLinear)" in ln for ln in lines), p.stdout
    assert "FAIL r8.ort-default.onnx on tensorrt-8.6" in p.stdout and "[type]" in p.stdout
    # --dla fails a dynamic-batch model, naming its input
    p = run_cli("check", str(shipped), "--target", "8.6", "--dla")
    assert p.returncode == 1 and "network input 'input': has dynamic dimensions" in p.stdout, p.stdout
    assert_one_line_error(run_cli("check", str(shipped), "--target", "7.0"), "unknown TensorRT target")
    assert_one_line_error(run_cli("check", str(tmp_path / "none.onnx")), "ONNX file not found")


# -- one rule at a time, on tiny graphs -----------------------------------------------------


def _model(nodes, inits, opset=17, x_shape=("N", 4), domain_ops=()):
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domain_ops]
    return helper.make_model(g, opset_imports=ops)


def _qdq(scale, zp, zp_dtype=np.int8, axis=None):
    inits = [numpy_helper.from_array(np.asarray(scale, np.float32), "s"),
             numpy_helper.from_array(np.asarray(zp, zp_dtype), "z")]
    kw = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q", **kw),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq", **kw)]
    return nodes, inits


def _rules(model, target="tensorrt-8.6", **kw):
    return sorted({(v.rule, v.node) for v in check_model(model, target, **kw)})


def test_each_rule_on_a_tiny_graph():
    nodes, inits = _qdq(0.1, 0)
    assert _rules(_model(nodes, inits)) == []  # symmetric per-tensor int8: fine
    assert ("qdq-zero-point", "q") in _rules(_model(*_qdq(0.1, 3)))  # asymmetric
    assert ("qdq-zero-point", "q") in _rules(_model(*_qdq(0.1, 0, np.uint8)))  # uint8 quantized type
    assert ("qdq-per-channel", "q") in _rules(_model(*_qdq([0.1] * 4, [0] * 4, axis=1), x_shape=("N", 4)))
    assert ("opset", "model") in _rules(_model(nodes, inits, opset=18))  # 8.6 stops at opset 17
    assert ("opset", "model") not in _rules(_model(nodes, inits, opset=18), "tensorrt-10.3")
    unsorted = _model(list(reversed(nodes)), inits)
    assert ("toposort", "dq") in _rules(unsorted)
    contrib = _model([helper.make_node("Gelu", ["x"], ["y"], name="g", domain="com.microsoft")], [],
                     domain_ops=("com.microsoft",))
    assert _rules(contrib) == [("domain", "g")]
    det = _model([helper.make_node("Det", ["x"], ["y"], name="det")], [])
    assert ("operator", "det") in _rules(det, "tensorrt-8.6")  # N in 8.6's matrix
    # a per-channel Q -> DQ on a float weight initializer (QAT / ModelOpt form) is a weight: fine
    w = numpy_helper.from_array(np.ones((2, 4, 1, 1), np.float32), "w")
    ws = numpy_helper.from_array(np.full(2, 0.1, np.float32), "ws")
    wz = numpy_helper.from_array(np.zeros(2, np.int8), "wz")
    conv = _model(nodes[:1] + [helper.make_node("DequantizeLinear", ["q", "s", "z"], ["xdq"], name="dq"),
                               helper.make_node("QuantizeLinear", ["w", "ws", "wz"], ["wq"], name="wq", axis=0),
                               helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wdq"], name="wdq", axis=0),
                               helper.make_node("Conv", ["xdq", "wdq"], ["y"], name="conv")],
                  inits + [w, ws, wz], x_shape=("N", 4, 2, 2))
    assert _rules(conv) == [] and _rules(conv, "tensorrt-10.3") == []
    static = _model(nodes, inits, x_shape=(1, 4))
    assert ("dla-static", "network input 'x'") not in _rules(static, dla=True)
    assert ("dla-static", "network input 'x'") in _rules(_model(nodes, inits), dla=True)


def test_fake_builder_refuses_dynamic_dla_profile_and_backend_survives_a_refused_timing_cache(tmp_path, monkeypatch):
    import fake_trt
    import test_tensorrt_backend as tb

    from eo_edge.backends import cuda_mem
    from eo_edge.backends import tensorrt as trt_backend
    from eo_edge.backends import trt_runtime
    from eo_edge.backends.tensorrt import TensorRTBackend

    trt = fake_trt.fake_tensorrt("8.6.2.3", timing_cache_ok=False)
    builder = trt.Builder(trt_runtime._make_logger(trt))
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.DLA
    prof = builder.create_optimization_profile()
    prof.set_shape("input", (1, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8))
    config.add_optimization_profile(prof)
    assert builder.build_serialized_network(None, config) is None
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(cuda_mem, "open_cuda", lambda index=0: fake_trt.FakeCuda())
    monkeypatch.setattr(trt_backend, "read_l4t_release", lambda: "R36.3.0")
    onnx_path = tb._onnx(tmp_path / "m.onnx", "fp32")
    cache = tmp_path / "t.cache"
    cache.write_bytes(b"from-another-device")
    TensorRTBackend().build(onnx_path, tmp_path / "m.engine", timing_cache=cache)
    assert cache.read_bytes() == b"+tuned"  # the refused cache was replaced by a fresh one
    assert trt.BuilderFlag.TF32 not in trt.config.flags  # "fp32" is FP32, not TF32
