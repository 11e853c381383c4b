"""MAC / FLOP / parameter counting on real exported ResNet8 graphs (FP32, FP16, QDQ INT8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from eo_edge.errors import EOEdgeError  # noqa: E402
from eo_edge.measure.flops import count_macs, count_params  # noqa: E402

# ResNet8 (CIFAR-style, 3x3 convs, 16/32/64 channels) at 64x64, per conv:
# Hout * Wout * Cout * (Cin * 3 * 3)
HAND_CONV_MACS_64 = (
    64 * 64 * 16 * (3 * 9)        # stem conv 3->16 at 64x64
    + 64 * 64 * 16 * (16 * 9)     # layer1 conv1 16->16 at 64x64
    + 64 * 64 * 16 * (16 * 9)     # layer1 conv2 16->16
    + 32 * 32 * 32 * (16 * 9)     # layer2 conv1 16->32 stride 2 -> 32x32
    + 32 * 32 * 32 * (32 * 9)     # layer2 conv2 32->32
    + 32 * 32 * 32 * (16 * 9)     # layer2 downsample 3x3 16->32 stride 2
    + 16 * 16 * 64 * (32 * 9)     # layer3 conv1 32->64 stride 2 -> 16x16
    + 16 * 16 * 64 * (64 * 9)     # layer3 conv2 64->64
    + 16 * 16 * 64 * (32 * 9)     # layer3 downsample 3x3 32->64 stride 2
)
HAND_FC_MACS = 576 * 10           # Linear(64*3*3 -> 10)
HAND_MACS_64 = HAND_CONV_MACS_64 + HAND_FC_MACS  # 58,398,336
# PyTorch counts 103,642 parameters; the exported graph has each BatchNorm folded into its conv,
# so BN's gamma+beta (2 x C) become one conv bias (C): 336 BN channels fewer.
TORCH_PARAMS = 103_642
BN_CHANNELS = 16 + 16 + 16 + 32 * 3 + 64 * 3  # 336
GRAPH_PARAMS = TORCH_PARAMS - BN_CHANNELS     # 103,306


def _resnet8(size: int):
    from eo_edge.export import replace_adaptive_pools
    from eo_edge.models import create_model

    with torch.random.fork_rng(devices=[]):  # the seed stays here (module fixture: outlives any one test)
        torch.manual_seed(0)
        m, _ = create_model("resnet8")
        # non-trivial BatchNorm statistics, as after training (fresh BNs fold to identical zero
        # biases, which the exporter de-duplicates)
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(torch.randn(c) * 0.1)
                mod.running_var.copy_(torch.rand(c) + 0.5)
                mod.weight.data.copy_(torch.rand(c) + 0.5)
                mod.bias.data.copy_(torch.randn(c) * 0.1)
    m.eval()
    replace_adaptive_pools(m, size)
    return m


def _export(m, size: int, path: Path) -> Path:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, torch.zeros(1, 3, size, size), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return path


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    d = tmp_path_factory.mktemp("flops")
    m64 = _resnet8(64)
    return {"m64": m64, "p64": _export(m64, 64, d / "r8_64.onnx"),
            "m224": (m224 := _resnet8(224)), "p224": _export(m224, 224, d / "r8_224.onnx"), "dir": d}


def test_resnet8_64_matches_hand_count(graphs):
    r = count_macs(graphs["p64"])
    assert HAND_MACS_64 == 58_398_336
    assert r["macs"] == HAND_MACS_64
    assert r["flops"] == 2 * HAND_MACS_64
    assert r["by_op"]["Conv"] == {"nodes": 9, "macs": HAND_CONV_MACS_64, "other_flops": 0}
    assert r["by_op"]["Gemm"]["macs"] == HAND_FC_MACS
    assert r["params"] == GRAPH_PARAMS == 103_306
    assert sum(p.numel() for p in graphs["m64"].parameters()) == TORCH_PARAMS
    assert r["input_size"] == 64 and r["input_shape"] == [1, 3, 64, 64] and r["unresolved"] == []
    assert r["convention"] == "MACs of Conv/Gemm/MatMul at 1x3x64x64; FLOPs = 2 x MACs (+ other_flops listed separately)"
    # element-wise: 7 ReLUs + 3 residual Adds (one FLOP per output element), AveragePool 6x6 taps
    relu = 3 * 64 * 64 * 16 + 2 * 32 * 32 * 32 + 2 * 16 * 16 * 64
    add = 64 * 64 * 16 + 32 * 32 * 32 + 16 * 16 * 64
    assert r["by_op"]["Relu"]["other_flops"] == relu
    assert r["by_op"]["Add"]["other_flops"] == add
    assert r["by_op"]["AveragePool"]["other_flops"] == 3 * 3 * 64 * 36
    assert r["other_flops"] == relu + add + 3 * 3 * 64 * 36


def test_batch_scales_linearly_and_input_is_not_modified(graphs):
    proto = onnx.load(str(graphs["p64"]))
    before = proto.SerializeToString()
    r4 = count_macs(proto, batch=4)
    assert proto.SerializeToString() == before
    assert r4["macs"] == 4 * HAND_MACS_64 and r4["input_shape"] == [4, 3, 64, 64]
    assert r4["params"] == GRAPH_PARAMS


def test_resnet8_224_scales_as_expected(graphs):
    r = count_macs(graphs["p224"], input_size=224)
    # every conv output is (224/64)^2 = 12.25 x larger; the classifier is unchanged
    assert r["by_op"]["Conv"]["macs"] * 64 * 64 == HAND_CONV_MACS_64 * 224 * 224
    assert r["by_op"]["Gemm"]["macs"] == HAND_FC_MACS
    # at 224 px the adaptive pool 56x56 -> 3x3 has non-uniform bins and is exported as
    # P_h (3x56) @ x (1,64,56,56) @ P_w^T (56x3): two MatMuls
    pool = 64 * 3 * 56 * 56 + 64 * 3 * 56 * 3
    assert r["by_op"]["MatMul"]["macs"] == pool
    assert r["macs"] == HAND_CONV_MACS_64 * 49 // 4 + HAND_FC_MACS + pool
    # the averaging matrices are constants the file holds: 2 x 168 elements
    assert r["params"] == GRAPH_PARAMS + 2 * 3 * 56


def test_fixed_size_graph_refuses_other_size(graphs):
    with pytest.raises(EOEdgeError, match="export the model at 224"):
        count_macs(graphs["p64"], input_size=224)
    with pytest.raises(EOEdgeError, match="not found"):
        count_macs(graphs["dir"] / "missing.onnx")
    fixed = onnx.load(str(graphs["p64"]))
    fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    assert count_macs(fixed)["macs"] == HAND_MACS_64
    with pytest.raises(EOEdgeError, match="fixed batch of 1"):
        count_macs(fixed, batch=8)


def test_dynamic_spatial_input(graphs):
    """A graph with symbolic H, W (global pooling) is counted at the requested size."""
    from torch import nn

    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8, padding=1),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    p = graphs["dir"] / "dyn.onnx"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, torch.zeros(1, 3, 32, 32), str(p), dynamo=False, opset_version=17,
                          input_names=["input"], dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}})
    for s in (32, 100):
        r = count_macs(p, input_size=s)
        # conv 3->8 (27 taps per output) + depthwise 3x3 (9 taps per output, groups=8) + Linear
        assert r["macs"] == s * s * 8 * 27 + s * s * 8 * 9 + 8 * 4
        assert r["by_op"]["GlobalAveragePool"]["other_flops"] == 8 * s * s
    assert r["params"] == (8 * 27 + 8) + (8 * 9 + 8) + (4 * 8 + 4)


def test_cross_check_with_torch_flop_counter(graphs):
    from torch.utils.flop_counter import FlopCounterMode

    for key, size in (("64", 64), ("224", 224)):
        m = graphs[f"m{key}"]
        fc = FlopCounterMode(display=False)
        with fc, torch.no_grad():
            m(torch.zeros(1, 3, size, size))
        r = count_macs(graphs[f"p{key}"])
        assert fc.get_total_flops() == r["flops"] == 2 * r["macs"]


def test_mobilevitv2_matches_torch_flop_counter(graphs):
    """The baseline (convs, SiLU, GroupNorm as InstanceNormalization, linear attention)."""
    pytest.importorskip("timm")
    from torch.utils.flop_counter import FlopCounterMode

    from eo_edge.export import replace_adaptive_pools
    from eo_edge.models import create_model

    m, cfg = create_model("mobilevitv2_100")
    m.eval()
    replace_adaptive_pools(m, cfg.input_size)
    p = _export(m, cfg.input_size, graphs["dir"] / "mv2.onnx")
    fc = FlopCounterMode(display=False)
    with fc, torch.no_grad():
        m(torch.zeros(1, 3, cfg.input_size, cfg.input_size))
    r = count_macs(p)
    assert r["unresolved"] == []
    assert r["flops"] == fc.get_total_flops() > 0
    assert {"Softmax", "InstanceNormalization", "Sigmoid"} <= set(r["by_op"])


def test_fp16_and_qdq_int8_same_macs_and_params(graphs):
    ort = pytest.importorskip("onnxruntime")  # noqa: F841
    import warnings

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.transformers.float16 import convert_float_to_float16

    ref = count_macs(graphs["p64"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp16 = convert_float_to_float16(onnx.load(str(graphs["p64"])), keep_io_types=True)
    assert any(n.op_type == "Cast" for n in fp16.graph.node)
    r16 = count_macs(fp16)
    assert (r16["macs"], r16["params"], r16["other_flops"]) == (ref["macs"], ref["params"], ref["other_flops"])

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.batches = iter([{"input": rng.standard_normal((4, 3, 64, 64)).astype(np.float32)} for _ in range(3)])

        def get_next(self):
            return next(self.batches, None)

    q = graphs["dir"] / "r8_64.int8.onnx"
    quantize_static(str(graphs["p64"]), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    qp = onnx.load(str(q))
    ops = {n.op_type for n in qp.graph.node}
    assert {"DequantizeLinear", "QuantizeLinear", "Conv"} <= ops
    dq_inputs = {n.input[0] for n in qp.graph.node if n.op_type == "DequantizeLinear"}
    int8_weights = [i for i in qp.graph.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4]
    assert len(int8_weights) == 9 and all(w.name in dq_inputs for w in int8_weights)
    rq = count_macs(q)
    assert rq["macs"] == ref["macs"] == HAND_MACS_64
    assert rq["params"] == ref["params"] == GRAPH_PARAMS
    assert rq["other_flops"] == ref["other_flops"]
    assert count_params(qp.graph) == GRAPH_PARAMS


def test_bad_arguments(graphs, tmp_path):
    with pytest.raises(EOEdgeError, match="batch"):
        count_macs(graphs["p64"], batch=0)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(EOEdgeError, match="cannot read ONNX"):
        count_macs(bad)
