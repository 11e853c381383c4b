"""``eo-edge faults``: exact bit flips on a hand-made model, seeded sampling, one real run, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, run_cli

R8 = ROOT / "models" / "resnet8_eurosat64"
DEFAULT_CACHE = Path.home() / ".cache" / "eo-edge" / "datasets" / "eurosat"


def _tiny_model():
    """Y = X @ W32 + float(half(X) @ W16) + X @ dequant(Wq): one float32, one float16 and one
    int8 weight (4 x 4 each), every element of W32 and W16 = 1.0, Wq = 3 (scale 0.5, zp 0)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w32 = np.ones((4, 4), np.float32)
    w16 = np.ones((4, 4), np.float16)
    wq = np.full((4, 4), 3, np.int8)
    inits = [numpy_helper.from_array(w32, "W32"), numpy_helper.from_array(w16, "W16"),
             numpy_helper.from_array(wq, "Wq"), numpy_helper.from_array(np.array(0.5, np.float32), "Wq_scale"),
             numpy_helper.from_array(np.array(0, np.int8), "Wq_zp")]
    nodes = [helper.make_node("MatMul", ["X", "W32"], ["y32"]),
             helper.make_node("Cast", ["X"], ["x16"], to=TensorProto.FLOAT16),
             helper.make_node("MatMul", ["x16", "W16"], ["y16h"]),
             helper.make_node("Cast", ["y16h"], ["y16"], to=TensorProto.FLOAT),
             helper.make_node("DequantizeLinear", ["Wq", "Wq_scale", "Wq_zp"], ["wdq"]),
             helper.make_node("MatMul", ["X", "wdq"], ["yq"]),
             helper.make_node("Add", ["y32", "y16"], ["s"]),
             helper.make_node("Add", ["s", "yq"], ["Y"])]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 4])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _as_bits(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1).view({1: np.uint8, 2: np.uint16, 4: np.uint32}[a.dtype.itemsize])


def _inits(data: bytes) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(data).graph.initializer}


def _run(data: bytes, x: np.ndarray) -> np.ndarray:
    from eo_edge.measure.faults import session_from_bytes

    s = session_from_bytes(data, threads=1)
    return s.run(None, {"X": x})[0]


# (dtype, class, bit, expected new value of an element 1.0 (floats) or 3 (int8))
EXACT = [
    ("float32", "sign", 31, -1.0),
    ("float32", "exponent", 23, 0.5),  # 1.0 = 0x3F800000: exponent 127 -> 126
    ("float32", "exponent", 30, np.inf),  # exponent 127 -> 255, mantissa 0
    ("float32", "mantissa", 22, 1.5),
    ("float32", "mantissa", 0, float(np.nextafter(np.float32(1), np.float32(2)))),
    ("float16", "sign", 15, -1.0),
    ("float16", "exponent", 10, 0.5),  # 1.0 = 0x3C00: exponent 15 -> 14
    ("float16", "exponent", 14, np.inf),  # exponent 15 -> 31
    ("float16", "mantissa", 9, 1.5),
    ("int8", "msb", 7, -125),
    ("int8", "lsb", 0, 2),
]


@pytest.mark.parametrize("dtype,cls,bit,new", EXACT, ids=[f"{d}-{c}-bit{b}" for d, c, b, _ in EXACT])
def test_one_flip_changes_exactly_one_weight(dtype, cls, bit, new):
    from eo_edge.measure.faults import BIT_CLASSES, FaultModel

    assert bit in BIT_CLASSES[dtype][cls]
    m = _tiny_model()
    before = m.SerializeToString()
    fm = FaultModel(m, (dtype,))
    assert [w.dtype for w in fm.weights] == [dtype] and fm.n_elements == 16
    assert cls in fm.classes()
    pos = [(0, 6, bit)]  # element (1, 2)
    data = fm.faulted_bytes(pos)
    assert m.SerializeToString() == before  # the held model is restored
    old, got = _inits(before), _inits(data)
    name = fm.weights[0].name
    for k in old:  # every other initializer unchanged, bit for bit
        if k != name:
            assert np.array_equal(_as_bits(old[k]), _as_bits(got[k])), k
    changed = np.flatnonzero(_as_bits(old[name]) != _as_bits(got[name]))
    assert changed.tolist() == [6]
    assert got[name].reshape(-1)[6] == new
    assert np.array_equal(np.delete(got[name].reshape(-1), 6), np.delete(old[name].reshape(-1), 6))
    # exactly one bit differs
    assert bin(int(_as_bits(old[name])[6]) ^ int(_as_bits(got[name])[6])).count("1") == 1
    # the effect record, dequantized for int8 (scale 0.5): 3 -> -125 is 1.5 -> -62.5
    eff = fm.effects(pos)[0]
    scale = 0.5 if dtype == "int8" else 1.0
    assert eff["old"] == (3 if dtype == "int8" else 1.0) * scale and eff["new"] == float(new) * scale
    # ONNX Runtime runs the flipped weight: with X = e_1 only output column 2 moves, by the expected amount
    if np.isfinite(new):
        x = np.eye(4, dtype=np.float32)[1:2]
        delta = _run(data, x) - _run(before, x)
        expect = np.zeros((1, 4), np.float32)
        expect[0, 2] = eff["new"] - eff["old"]
        np.testing.assert_allclose(delta, expect, atol=1e-6)


def test_flip_bits_function():
    from eo_edge.errors import EOEdgeError
    from eo_edge.measure.faults import flip_bits

    a = np.array([1.0, 2.0, -3.0], np.float32)
    b = flip_bits(a, [0, 2], [31, 31])
    assert b.tolist() == [-1.0, 2.0, 3.0] and a.tolist() == [1.0, 2.0, -3.0]
    assert flip_bits(np.array([3], np.uint8), [0], [7]).tolist() == [131]
    assert flip_bits(np.array([-1], np.int8), [0], [7]).tolist() == [127]
    with pytest.raises(EOEdgeError, match="outside a 8-bit"):
        flip_bits(np.array([3], np.int8), [0], [8])
    with pytest.raises(EOEdgeError, match="no bit layout"):
        flip_bits(np.array([3], np.int64), [0], [1])
    with pytest.raises(EOEdgeError, match="outside a tensor"):
        flip_bits(a, [3], [0])


def test_find_weights_of_shipped_files():
    import onnx

    from eo_edge.measure.faults import FaultModel

    fp32 = FaultModel(onnx.load(f"{R8}.onnx"), ("float32",))
    fp16 = FaultModel(onnx.load(f"{R8}.fp16.onnx"), ("float16",))
    int8 = FaultModel(onnx.load(f"{R8}.int8-minmax.onnx"), ("int8", "uint8"))
    assert fp32.n_elements == fp16.n_elements  # the same Conv/Gemm weights and biases
    assert {w.consumer for w in fp32.weights} == {"Conv.W", "Conv.B", "Gemm.B", "Gemm.C"}
    assert {w.consumer for w in int8.weights} == {"DequantizeLinear.x"}
    assert all(w.scale is not None for w in int8.weights)
    # INT8: the stored weights only; scales, zero points and the float biases are listed, not flipped
    assert int8.n_elements < fp32.n_elements
    assert any("zero_point" in s["name"] or "scale" in s["name"] for s in int8.not_flipped)
    float_biases = [s for s in int8.not_flipped if s["dtype"] == "float32" and "not the file's weight dtype" in s["why"]]
    assert len(float_biases) == 10  # 9 Conv biases + the Gemm bias stay float32 in the QDQ file
    assert int8.n_elements + sum(s["n_elements"] for s in float_biases) == fp32.n_elements
    assert fp32.classes() == ["sign", "exponent", "mantissa", "any"] and int8.classes() == ["msb", "lsb", "any"]


def test_seeded_sampling_is_reproducible_and_distinct():
    import onnx

    from eo_edge.measure.faults import FaultModel, sample_positions, trial_rng

    fm = FaultModel(onnx.load(f"{R8}.int8-minmax.onnx"), ("int8", "uint8"))
    a = fm.sample(100, "any", trial_rng(0, "any", 100, 0))
    b = fm.sample(100, "any", trial_rng(0, "any", 100, 0))
    c = fm.sample(100, "any", trial_rng(1, "any", 100, 0))
    d = fm.sample(100, "any", trial_rng(0, "any", 100, 1))
    assert a == b and a != c and a != d
    assert len({(t, i) for t, i, _ in a}) == 100  # k distinct elements
    assert all(0 <= b_ < 8 for _, _, b_ in a) and all(0 <= i < fm.sizes[t] for t, i, _ in a)
    assert len({t for t, _, _ in a}) > 1  # spread over the tensors
    # the serialized model has exactly those 100 elements changed, one bit each
    before = {w.name: w.array for w in fm.weights}
    after = _inits(fm.faulted_bytes(a))
    n_changed = 0
    for t, w in enumerate(fm.weights):
        diff = _as_bits(before[w.name]) ^ _as_bits(after[w.name])
        idx = np.flatnonzero(diff)
        assert sorted(idx.tolist()) == sorted(i for tt, i, _ in a if tt == t)
        assert all(bin(int(v)).count("1") == 1 for v in diff[idx])
        n_changed += len(idx)
    assert n_changed == 100
    # uniform over elements: the largest tensor gets about its share (Generator(0), 20,000 draws)
    sizes = np.array([10, 30, 60])
    pos = sample_positions(sizes, 50, (0,), np.random.default_rng(0))
    assert len(pos) == 50 and len(set(pos)) == 50
    counts = np.zeros(3)
    rng = np.random.default_rng(0)
    for _ in range(400):
        for t, _, _ in sample_positions(sizes, 50, (0,), rng):
            counts[t] += 1
    np.testing.assert_allclose(counts / counts.sum(), sizes / sizes.sum(), atol=0.02)


def _data_arg(request) -> str:
    if (DEFAULT_CACHE / "manifest.json").is_file():
        return str(DEFAULT_CACHE)
    return str(request.getfixturevalue("prepared").root)


@pytest.mark.slow  # ~35 s on 2 busy cores
def test_cli_end_to_end_on_shipped_resnet8(tmp_path, request):
    """fp32 and int8 ResNet8 on 200 real test images: rows present, clean top-1 = eval's top-1."""
    from eo_edge.data.resolve import measurement_data
    from eo_edge.metrics.evaluate import evaluate
    from eo_edge.app.loading import open_model

    data = _data_arg(request)
    js, md = tmp_path / "f.json", tmp_path / "f.md"
    files = [f"{R8}.onnx", f"{R8}.int8-minmax.onnx"]
    p = run_cli("faults", *files, "--images", "200", "--bits", "1,100", "--repeats", "2", "--classes",
                "exponent,msb,lsb", "--data", data, "--threads", "2", "--json", str(js), "--md", str(md), "-q")
    assert p.returncode == 0, p.stderr
    res = json.loads(js.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert res["schema"] == "eo-edge-faults/1" and res["command"].startswith("eo-edge faults")
    assert [Path(f["file"]).name for f in res["files"]] == [Path(f).name for f in files]
    sub, _ = measurement_data(Path(data), None, False, n=200)
    assert len(sub) == 200 and len(set(sub.labels.tolist())) == 10  # a sample of all classes, not the first 200
    for f, path in zip(res["files"], files):
        assert f["data"]["n_images"] == 200
        want = [("exponent", 1), ("exponent", 100)] if f["precision"] == "fp32" else \
            [("msb", 1), ("msb", 100), ("lsb", 1), ("lsb", 100)]
        assert [(r["class"], r["k"]) for r in f["rows"]] == want
        for r in f["rows"]:
            assert len(r["trials"]) == 2 and r["min_top1"] <= r["mean_top1"] <= r["max_top1"]
            assert 0 <= r["min_top1"] <= 100
        fn, cfg, _ = open_model(Path(path))
        rep = evaluate(fn, sub, cfg.input_size, cfg.mean, cfg.std, cfg.class_names, progress=False)
        assert f["clean_top1"] == pytest.approx(rep["top1"], abs=1e-9), (path, f["clean_top1"], rep["top1"])
        assert f["clean_top1"] > 85
    fp32 = res["files"][0]["rows"]
    # 100 exponent flips in FP32 weights include bit 30 of small weights -> ~1e38: the model breaks
    assert fp32[1]["mean_top1"] < 50
    assert all(t["max_abs_delta"] == "inf" or float(t["max_abs_delta"]) > 1e30 for t in fp32[1]["trials"])
    # int8 LSB flips move a weight by one quantization step: bounded, harmless at k = 1
    lsb1 = res["files"][1]["rows"][2]
    assert lsb1["class"] == "lsb" and lsb1["k"] == 1 and lsb1["min_top1"] >= res["files"][1]["clean_top1"] - 2
    text = md.read_text()
    assert "| file | precision | position class | k bits |" in text and "eo-edge faults" in text
    assert text.count("\n| resnet8_eurosat64") == 6
    assert "worst top-1" in p.stdout


BAD = [
    ("not-onnx", ["{pt}"], ["is not an ONNX file"]),
    ("no-metadata", ["{tiny}"], ["carries no eo-edge metadata"]),
    ("corrupt-onnx", ["{junk}"], ["cannot read ONNX file"]),
    ("missing", ["{tmp}/nope.onnx"], ["model not found"]),
    ("bits-text", ["{onnx}", "--bits", "1,ten"], ["--bits must be comma-separated"]),
    ("bits-zero", ["{onnx}", "--bits", "0,10"], ["--bits must be comma-separated counts >= 1"]),
    ("bits-too-many", ["{onnx}", "--bits", "10000000"], ["exceeds the", "weight elements"]),
    ("classes-unknown", ["{onnx}", "--classes", "sign,bogus"], ["unknown --classes bogus"]),
    ("classes-not-applicable", ["{onnx}", "--classes", "msb"], ["none applies", "float32"]),
    ("repeats-zero", ["{onnx}", "--repeats", "0"], ["--repeats must be at least 1"]),
    ("images-negative", ["{onnx}", "--images=-1"], ["--images must be >= 0"]),
    ("json-missing-folder", ["{onnx}", "--json", "{tmp}/no/such/f.json"], ["output folder does not exist"]),
    ("md-is-input", ["{onnx}", "--md", "{onnx}"], ["is the input"]),
]


@pytest.mark.parametrize("case,argv,needles", BAD, ids=[c for c, _, _ in BAD])
def test_bad_inputs_one_line(case, argv, needles, tmp_path):
    import shutil

    import onnx

    f = {"tmp": str(tmp_path), "onnx": str(tmp_path / "m.onnx"), "pt": str(tmp_path / "m.pt"),
         "tiny": str(tmp_path / "tiny.onnx"), "junk": str(tmp_path / "junk.onnx")}
    shutil.copy(f"{R8}.onnx", f["onnx"])
    shutil.copy(f"{R8}.pt", f["pt"])
    onnx.save(_tiny_model(), f["tiny"])
    Path(f["junk"]).write_bytes(b"\x00not a protobuf" * 10)
    before = Path(f["onnx"]).read_bytes()
    p = run_cli("faults", *[a.format(**f) for a in argv], "-q")
    assert_one_line_error(p, *needles)
    assert Path(f["onnx"]).read_bytes() == before
