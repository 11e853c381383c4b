"""TensorRT backend without TensorRT: unavailable message, the pure checks (portability,
L4T release, ONNX precision), and build -> load -> infer against a recording stand-in
of the ``tensorrt`` module and a numpy stand-in of the CUDA calls.

The stand-ins check *our* call sequence (strongly typed vs. builder flags, profile,
timing cache, DLA, sidecar, buffers, chunking, event timing); they cannot check
TensorRT itself - that needs a Jetson (see benchmarks/jetson/README.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from eo_edge.backends import cuda_mem, get_backend
from eo_edge.backends import tensorrt as trt_backend
from eo_edge.backends.cuda_mem import NO_CUDA_BINDING, open_cuda
from eo_edge.backends.trt_runtime import UNAVAILABLE
from eo_edge.backends.tensorrt import TensorRTBackend
from eo_edge.backends.trt_inspect import check_precision, inspect_onnx
from eo_edge.backends.trt_sidecar import (SIDECAR_FORMAT, check_portable, jetpack_major, load_sidecar,
                                          parse_l4t_release, portability_mismatches, read_board_model,
                                          read_l4t_release)
from eo_edge.artifact.forms import sidecar_path
from eo_edge.errors import BackendUnavailable, EOEdgeError
from eo_edge.fileio import sha256_file
from fake_trt import FakeCuda, fake_tensorrt

C, H, W, K = 3, 8, 8, 4
WEIGHTS = (np.arange(C * H * W * K, dtype=np.float32).reshape(C * H * W, K) % 7 - 3) / 10
CONFIG = {"class_names": ["water", "forest", "urban", "crop"], "mean": [0.1, 0.2, 0.3], "input_size": 8}


def _meta(precision: str) -> dict[str, str]:
    """metadata_props as eo_edge.artifact.onnx_meta.set_metadata writes them (strings stored as is)."""
    return {"eo_edge.config": json.dumps(CONFIG), "eo_edge.precision": precision, "other.tool": "kept"}


# -- ONNX fixtures --------------------------------------------------------------------------


def _onnx(
    path: Path, kind: str, input_name: str = "input", meta: dict[str, str] | None = None, batch: int | str = "N"
) -> Path:
    """A tiny classifier: Flatten -> MatMul; ``kind`` fp32 / fp16 (casts) / int8 (Q/DQ)."""
    nodes, inits = [], []
    x = input_name
    if kind == "int8":
        inits += [
            numpy_helper.from_array(np.array(0.05, np.float32), "s"),
            numpy_helper.from_array(np.array(0, np.int8), "z"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", [x, "s", "z"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
        ]
        x = "dq"
    nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
    if kind == "fp16":
        inits.append(numpy_helper.from_array(WEIGHTS.astype(np.float16), "w"))
        nodes += [
            helper.make_node("Cast", ["flat"], ["flat16"], to=TensorProto.FLOAT16),
            helper.make_node("MatMul", ["flat16", "w"], ["y16"]),
            helper.make_node("Cast", ["y16"], ["logits"], to=TensorProto.FLOAT),
        ]
    else:
        inits.append(numpy_helper.from_array(WEIGHTS, "w"))
        nodes.append(helper.make_node("MatMul", ["flat", "w"], ["logits"]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, C, H, W])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, K])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, _meta(kind) if meta is None else meta)
    onnx.save(model, str(path))
    return path


# -- the tensorrt stand-in ------------------------------------------------------------------


@pytest.fixture
def fake_env(monkeypatch):
    """Install a fake ``tensorrt`` (TensorRT 10) and fake CUDA; returns (trt, cudas)."""
    trt = fake_tensorrt()
    cudas: list[FakeCuda] = []

    def opener(index: int = 0) -> FakeCuda:
        cudas.append(FakeCuda())
        trt.cuda = cudas[-1]
        return cudas[-1]

    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(cuda_mem, "open_cuda", opener)
    monkeypatch.setattr(trt_backend, "read_l4t_release", lambda: "R36.4.0")
    monkeypatch.setattr(trt_backend, "read_board_model", lambda: "NVIDIA Jetson AGX Orin Developer Kit")
    return trt, cudas


# -- unavailable ----------------------------------------------------------------------------


def test_unavailable_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    backend = get_backend("tensorrt")
    assert isinstance(backend, TensorRTBackend) and backend.name == "tensorrt"
    assert backend.available() == (False, UNAVAILABLE)
    assert "\n" not in UNAVAILABLE and "--backend onnxruntime" in UNAVAILABLE
    assert backend.versions() == {}
    with pytest.raises(BackendUnavailable) as e:
        backend.build(tmp_path / "m.onnx", tmp_path / "m.engine", precision="fp16")
    assert str(e.value) == UNAVAILABLE
    with pytest.raises(BackendUnavailable, match="'tensorrt' Python package is not installed"):
        backend.load(tmp_path / "m.engine")


def test_no_cuda_binding_is_one_clear_line(monkeypatch):
    for mod in ("pycuda", "pycuda.driver", "cuda", "cuda.bindings", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, mod, None)
    with pytest.raises(BackendUnavailable) as e:
        open_cuda()
    assert str(e.value) == NO_CUDA_BINDING and "\n" not in NO_CUDA_BINDING


# -- pure checks ----------------------------------------------------------------------------


HERE = {"tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7"}


def test_portability_refusal_pure():
    check_portable("m.engine", dict(HERE, l4t_release="R36.3.0"), HERE)  # L4T alone does not matter
    assert portability_mismatches(HERE, HERE) == []
    built = {"tensorrt_version": "8.5.2.2", "gpu_name": "Xavier", "compute_capability": "7.2"}
    with pytest.raises(EOEdgeError) as e:
        check_portable("/x/m.engine", built, HERE)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("TensorRT engine m.engine was built for another machine")
    assert "tensorrt_version: built 8.5.2.2, here 10.3.0" in msg
    assert "gpu_name: built Xavier, here Orin" in msg and "compute_capability: built 7.2, here 8.7" in msg
    assert "rebuild it here" in msg
    with pytest.raises(EOEdgeError, match="gpu_name: built None"):
        check_portable("m.engine", {"tensorrt_version": "10.3.0", "compute_capability": "8.7"}, HERE)
    only_cc = dict(HERE, compute_capability="8.6")
    assert portability_mismatches(only_cc, HERE) == ["compute_capability: built 8.6, here 8.7"]
    # every Orin module is "Orin" / 8.7: the board model tells them apart, when both sides know it
    agx = dict(HERE, board_model="NVIDIA Jetson AGX Orin Developer Kit")
    nano = dict(HERE, board_model="NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super")
    assert portability_mismatches(agx, nano) == [
        "board_model: built NVIDIA Jetson AGX Orin Developer Kit, "
        "here NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
    ]
    assert portability_mismatches(agx, HERE) == [] and portability_mismatches(HERE, nano) == []


def test_board_model(tmp_path):
    f = tmp_path / "model"
    f.write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")  # device-tree strings end in NUL
    assert read_board_model(f) == "NVIDIA Jetson AGX Orin Developer Kit"
    assert read_board_model(tmp_path / "absent") is None


def test_l4t_release(tmp_path):
    # first lines of /etc/nv_tegra_release on JetPack 6.1 (L4T 36.4.0) and on a Jetson Nano
    # with JetPack 4.6.1 (L4T 32.7.1), as quoted in public READMEs
    jp6 = (
        "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, "
        "DATE: Fri Sep 13 04:36:44 UTC 2024"
    )
    jp4 = (
        "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
        "DATE: Sat Feb 19 17:05:08 UTC 2022"
    )
    assert parse_l4t_release(jp6 + "\n# KERNEL_VARIANT: oot\n") == "R36.4.0"
    assert parse_l4t_release(jp4) == "R32.7.1"
    assert parse_l4t_release("Ubuntu 22.04") is None
    assert (jetpack_major("R36.4.0"), jetpack_major("R35.5.0"), jetpack_major("R32.7.1")) == ("6", "5", "4")
    assert jetpack_major(None) is None and jetpack_major("R99.1") is None
    f = tmp_path / "nv_tegra_release"
    f.write_text(jp6)
    assert read_l4t_release(f) == "R36.4.0" and read_l4t_release(tmp_path / "absent") is None


def test_load_sidecar_errors(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(EOEdgeError, match="has no sidecar m.engine.json; rebuild"):
        load_sidecar(engine)
    sidecar_path(engine).write_text('{"format": "something-else"}')
    with pytest.raises(EOEdgeError, match="not an eo-edge TensorRT engine sidecar"):
        load_sidecar(engine)
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(EOEdgeError, match="cannot read engine sidecar"):
        load_sidecar(engine)


def test_inspect_onnx_and_precision_checks(tmp_path):
    fp32, fp16, int8 = (_onnx(tmp_path / f"{k}.onnx", k) for k in ("fp32", "fp16", "int8"))
    info = inspect_onnx(fp32)
    assert info["metadata"] == _meta("fp32") and info["inputs"] == {"input": [-1, C, H, W]}
    assert (info["has_qdq"], info["has_fp16"]) == (False, False)
    assert (inspect_onnx(fp16)["has_fp16"], inspect_onnx(int8)["has_qdq"]) == (True, True)
    for path, precision in ((fp32, "fp32"), (fp16, "fp16"), (int8, "int8")):
        check_precision(precision, inspect_onnx(path), path.name)
    # without eo_edge.precision metadata the graph itself is checked
    bare32, bare16 = (_onnx(tmp_path / f"bare{k}.onnx", k, meta={}) for k in ("fp32", "fp16"))
    msg = r"^precision int8 needs an explicitly quantized \(QDQ\) ONNX, but bare32.onnx is an FP32 ONNX"
    with pytest.raises(EOEdgeError, match=msg):
        check_precision("int8", inspect_onnx(bare32), "bare32.onnx")
    with pytest.raises(EOEdgeError, match="precision fp32 needs an FP32 ONNX, but bare16.onnx is an FP16 ONNX"):
        check_precision("fp32", inspect_onnx(bare16), "bare16.onnx")
    with pytest.raises(EOEdgeError, match="fp16.onnx was exported as fp16, not fp32"):
        check_precision("fp32", inspect_onnx(fp16), "fp16.onnx")
    with pytest.raises(EOEdgeError, match="unknown precision 'bf16'"):
        check_precision("bf16", info)
    declared = _onnx(tmp_path / "declared.onnx", "fp32", meta=_meta("fp16"))  # metadata says fp16
    with pytest.raises(EOEdgeError, match="was exported as fp16, not fp32; build the engine as fp16"):
        check_precision("fp32", inspect_onnx(declared), "declared.onnx")
    no_meta = _onnx(tmp_path / "plain.onnx", "int8", meta={})
    check_precision("int8", inspect_onnx(no_meta), "plain.onnx")  # the graph alone decides
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a model")
    with pytest.raises(EOEdgeError, match="cannot read ONNX file"):
        inspect_onnx(tmp_path / "junk.onnx")


# -- build / load / infer against the stand-ins ---------------------------------------------


def test_build_trt10_strongly_typed_with_profile_and_timing_cache(fake_env, tmp_path):
    trt, cudas = fake_env
    onnx_path = _onnx(tmp_path / "m.onnx", "fp16")
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    record = TensorRTBackend().build(
        onnx_path, tmp_path / "m.engine", precision="fp16", workspace_mb=256, timing_cache=cache,
        min_batch=1, opt_batch=4, max_batch=8,
    )
    calls = dict((c[0], c[1:]) for c in trt.calls)
    assert calls["create_network"] == (1 << 1,)  # STRONGLY_TYPED, no EXPLICIT_BATCH
    assert trt.config.flags == {trt.BuilderFlag.TF32}  # TensorRT's default; precision comes from the ONNX
    assert calls["workspace"] == (256 << 20,)
    assert calls["profile"] == (("input", (1, C, H, W), (4, C, H, W), (8, C, H, W)),)
    assert calls["timing_cache"] == (b"old", False)
    assert cache.read_bytes() == b"old+tuned"  # saved back after the build
    side = json.loads(sidecar_path(tmp_path / "m.engine").read_text())
    assert side == {k: record[k] for k in side}
    assert side["format"] == SIDECAR_FORMAT
    assert (side["tensorrt_version"], side["gpu_name"], side["compute_capability"]) == ("10.3.0", "Orin", "8.7")
    assert (side["l4t_release"], side["jetpack_major"], side["precision"]) == ("R36.4.0", "6", "fp16")
    assert side["strongly_typed"] is True and side["dla_core"] is None
    assert side["board_model"] == "NVIDIA Jetson AGX Orin Developer Kit"
    assert side["input"] == {"name": "input", "chw": [C, H, W], "min_batch": 1, "opt_batch": 4, "max_batch": 8}
    assert side["source_onnx_sha256"] == sha256_file(onnx_path)
    assert side["engine_sha256"] == sha256_file(tmp_path / "m.engine")
    assert side["metadata"] == _meta("fp16")  # every metadata_props entry, as stored
    assert all(c.closed for c in cudas)  # device query only


def test_build_trt8_uses_builder_flags_and_dla(monkeypatch, tmp_path):
    trt = fake_tensorrt("8.5.2.2")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(cuda_mem, "open_cuda", lambda index=0: FakeCuda("Xavier", "7.2"))
    onnx_path = _onnx(tmp_path / "q.onnx", "int8")
    side = TensorRTBackend().build(onnx_path, tmp_path / "q.engine", precision="int8", dla_core=1)
    assert ("create_network", 1 << 0) in trt.calls  # EXPLICIT_BATCH
    # INT8 with FP16 for the layers between Q/DQ pairs (TensorRT 8.x), TF32 left at its default
    assert trt.config.flags == {trt.BuilderFlag.INT8, trt.BuilderFlag.FP16, trt.BuilderFlag.GPU_FALLBACK,
                                trt.BuilderFlag.TF32}
    assert trt.config.profiles == [("input", (1, C, H, W), (1, C, H, W), (1, C, H, W))]  # DLA: min = opt = max
    assert (trt.config.default_device_type, trt.config.DLA_core) == (trt.DeviceType.DLA, 1)
    assert side["strongly_typed"] is False and side["dla_core"] == 1 and side["tensorrt_version"] == "8.5.2.2"
    with pytest.raises(EOEdgeError, match="no DLA core 2 on this device"):
        TensorRTBackend().build(onnx_path, tmp_path / "q2.engine", precision="int8", dla_core=2)
    with pytest.raises(EOEdgeError, match="DLA runs only FP16 or INT8"):
        TensorRTBackend().build(_onnx(tmp_path / "f.onnx", "fp32"), tmp_path / "f.engine", dla_core=0)


def test_build_refusals(fake_env, tmp_path, monkeypatch):
    backend = TensorRTBackend()
    fp32 = _onnx(tmp_path / "m.onnx", "fp32")
    with pytest.raises(EOEdgeError, match="m.onnx was exported as fp32, not int8; build the engine as fp32"):
        backend.build(fp32, tmp_path / "m.engine", precision="int8")
    with pytest.raises(EOEdgeError, match="1 <= min <= opt <= max"):
        backend.build(fp32, tmp_path / "m.engine", min_batch=4, opt_batch=2)
    with pytest.raises(EOEdgeError, match="unknown TensorRT build option"):
        backend.build(fp32, tmp_path / "m.engine", int8_calibrator="x")
    with pytest.raises(EOEdgeError, match="output folder does not exist"):
        backend.build(fp32, tmp_path / "nope" / "m.engine")
    other = _onnx(tmp_path / "o.onnx", "fp32", input_name="images")
    with pytest.raises(EOEdgeError, match=r"no input named 'input' \(inputs: images\)"):
        backend.build(other, tmp_path / "o.engine")
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(fail_build=True))
    with pytest.raises(EOEdgeError) as e:
        backend.build(fp32, tmp_path / "m.engine")
    assert str(e.value) == "TensorRT could not build an engine from m.onnx: Network validation failed."
    assert not (tmp_path / "m.engine").exists()


def test_load_infer_chunks_timing_and_metadata(fake_env, tmp_path):
    trt, cudas = fake_env
    backend = TensorRTBackend()
    backend.build(_onnx(tmp_path / "m.onnx", "fp32"), tmp_path / "m.engine", opt_batch=2, max_batch=4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, C, H, W)).astype(np.float32)
    with backend.load(tmp_path / "m.engine") as runner:
        assert runner.backend == "tensorrt" and runner.timing() is None
        # decoded like the ONNX Runtime runner's metadata: eo_edge.* keys, prefix stripped
        assert runner.metadata == {"config": CONFIG, "precision": "fp32"}
        y = runner.infer(x)
        assert y.dtype == np.float32 and y.shape == (10, K)
        np.testing.assert_allclose(y, x.reshape(10, -1) @ WEIGHTS, rtol=1e-5, atol=1e-5)
        assert [b for _s, b in trt.enqueued] == [4, 4, 2]  # max_batch chunks on one stream
        assert {s for s, _b in trt.enqueued} == {0xBEEF}
        t = runner.timing()
        assert (t["h2d_ms"], t["gpu_ms"], t["d2h_ms"], t["latency_ms"]) == (3.0, 3.0, 3.0, 9.0)  # 3 chunks
        assert t["host_ms"] > 0
        np.testing.assert_allclose(runner.infer(x[:1].astype(np.float64)), y[:1], rtol=1e-5)
        with pytest.raises(EOEdgeError, match=r"input must have shape \(N, 3, 8, 8\), got \(2, 3, 4, 4\)"):
            runner.infer(np.zeros((2, 3, 4, 4), np.float32))
        assert runner.infer(np.zeros((0, C, H, W), np.float32)).shape == (0, K)
    assert cudas[-1].closed
    with pytest.raises(EOEdgeError, match="runner is closed"):
        runner.infer(x)


def test_load_refuses_foreign_or_tampered_engines(fake_env, tmp_path):
    trt, cudas = fake_env
    backend = TensorRTBackend()
    engine = tmp_path / "m.engine"
    backend.build(_onnx(tmp_path / "m.onnx", "fp32"), engine)
    side = json.loads(sidecar_path(engine).read_text())
    foreign = dict(side, gpu_name="Xavier", compute_capability="7.2")
    sidecar_path(engine).write_text(json.dumps(foreign))
    with pytest.raises(EOEdgeError, match="was built for another machine .*gpu_name: built Xavier, here Orin"):
        backend.load(engine)
    assert not any(c[0] == "deserialize" for c in trt.calls)  # refused before deserializing
    assert cudas[-1].closed
    sidecar_path(engine).write_text(json.dumps(side))
    engine.write_bytes(engine.read_bytes() + b" ")
    with pytest.raises(EOEdgeError, match=r"m.engine.json does not describe m.engine \(sha256 differs\)"):
        backend.load(engine)
    with pytest.raises(EOEdgeError, match="is an ONNX file"):
        backend.load(tmp_path / "m.onnx")
    with pytest.raises(EOEdgeError, match="engine not found"):
        backend.load(tmp_path / "absent.engine")


def test_static_batch_export_builds_and_runs_in_chunks_of_one(fake_env, tmp_path, caplog):
    trt, _cudas = fake_env
    backend = TensorRTBackend()
    side = backend.build(_onnx(tmp_path / "s.onnx", "fp32", batch=1), tmp_path / "s.engine")  # max_batch 32 asked
    assert side["input"] == {"name": "input", "chw": [C, H, W], "min_batch": 1, "opt_batch": 1, "max_batch": 1}
    assert not any(c[0] == "profile" for c in trt.calls)  # no optimization profile for a static shape
    assert "fixed batch of 1" in caplog.text
    x = np.random.default_rng(1).standard_normal((3, C, H, W)).astype(np.float32)
    with backend.load(tmp_path / "s.engine") as runner:
        np.testing.assert_allclose(runner.infer(x), x.reshape(3, -1) @ WEIGHTS, rtol=1e-5, atol=1e-5)
    assert [b for _s, b in trt.enqueued] == [1, 1, 1]
