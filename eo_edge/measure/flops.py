"""Count multiply-accumulates (MACs), FLOPs and parameters of an ONNX graph.

Works on the very artifacts that are benchmarked: FP32, FP16 (``Cast`` nodes at the
graph's edges) and QDQ INT8 (``DequantizeLinear`` feeding the Conv/Gemm weights) ONNX
files all give the same MACs and parameters for the same network.

Convention (also returned as ``convention``):

* **MACs** (multiply-accumulates) are counted for the matrix ops only, at the input
  shape ``batch x C x S x S``:

  - ``Conv`` / ``ConvInteger`` / ``QLinearConv`` (grouped and depthwise included):
    ``N * Cout * prod(out_spatial) * (Cin / groups) * prod(kernel)``
    = ``numel(Y) * numel(W) / Cout``;
  - ``ConvTranspose``: ``N * Cin * prod(in_spatial) * (Cout / groups) * prod(kernel)``
    = ``numel(X) * numel(W) / Cin``;
  - ``Gemm``: ``M * N * K``; ``MatMul`` / ``MatMulInteger`` / ``QLinearMatMul`` (batched,
    with broadcasting): ``numel(Y) * K`` with ``K`` the last dimension of ``A``.

  Bias additions inside Conv/Gemm are not counted (as in ``torch.utils.flop_counter``,
  fvcore and most papers).
* **FLOPs** = ``2 x MACs`` exactly (one multiply + one add per MAC), so FLOPs are
  comparable with ``torch.utils.flop_counter.FlopCounterMode`` and with papers that use
  that convention.
* **other_flops** (reported separately, never added to ``flops``; indicative only):
  element-wise ops (``Add``, ``Sub``, ``Mul``, ``Div``, ``Relu``, ``Sigmoid``, ``Softmax``,
  ``Erf``, ``Sqrt``, ...) and normalisations (``BatchNormalization``, ``LayerNormalization``,
  ...) count one FLOP per output element; reductions and global pools (``ReduceMean``,
  ``GlobalAveragePool``, ...) one FLOP per input element; windowed pools (``AveragePool``,
  ``MaxPool``) one FLOP per output element per kernel tap. Precision conversions
  (``Cast``, ``QuantizeLinear``, ``DequantizeLinear``) and data movement (``Reshape``,
  ``Transpose``, ``Concat``, ...) count zero, so FP32/FP16/INT8 files of one network get
  the same ``other_flops`` too.
* **params**: number of elements of the weight initializers (and ``Constant`` node
  tensors) that feed a compute input. Not counted: int64/bool/string tensors (shapes,
  axes, indices), inputs used only as shapes/axes/pads, quantization scales and zero
  points (so a QDQ INT8 weight is counted once, as its int8 tensor; an int32 bias once),
  scalar (1-element) operator constants, and initializers nothing consumes. Note this is
  what the *file* holds: an exported graph whose BatchNorms were folded into the convs
  has ``C`` bias elements per conv instead of BN's ``2C`` (gamma, beta), so ResNet8's
  graph holds 103,306 parameters where PyTorch counts 103,642.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import EOEdgeError
from ..fileio import load_onnx

#: ops whose MACs are counted
MAC_OPS = ("Conv", "ConvInteger", "QLinearConv", "ConvTranspose", "Gemm", "MatMul", "MatMulInteger", "QLinearMatMul")

#: one FLOP per output element (other_flops)
ELEMENTWISE_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Exp", "Log", "Erf", "Tanh", "Sigmoid", "HardSigmoid",
    "HardSwish", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu", "Mish", "Softplus", "Softsign", "Clip",
    "Neg", "Abs", "Sign", "Max", "Min", "Sum", "Mean", "Softmax", "LogSoftmax", "Hardmax", "Sin", "Cos",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization", "LpNormalization",
})
#: one FLOP per input element (other_flops)
REDUCE_OPS = frozenset({
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare",
    "ReduceLogSum", "ReduceLogSumExp", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
})
#: one FLOP per output element per kernel tap (other_flops)
WINDOW_OPS = frozenset({"AveragePool", "MaxPool", "LpPool"})

# Inputs (by position) that carry shapes/axes/indices/quantization parameters, not weights.
_NON_WEIGHT_INPUTS: dict[str, frozenset[int]] = {
    "Reshape": frozenset({1}), "Expand": frozenset({1}), "Tile": frozenset({1}), "Slice": frozenset({1, 2, 3, 4}),
    "Unsqueeze": frozenset({1}), "Squeeze": frozenset({1}), "Pad": frozenset({1, 2, 3}),
    "Resize": frozenset({1, 2, 3}), "Upsample": frozenset({1}), "ConstantOfShape": frozenset({0}),
    "Split": frozenset({1}), "TopK": frozenset({1}), "Range": frozenset({0, 1, 2}), "OneHot": frozenset({1, 2}),
    "Gather": frozenset({1}), "GatherElements": frozenset({1}), "GatherND": frozenset({1}),
    "ScatterND": frozenset({1}), "CumSum": frozenset({1}), "Clip": frozenset({1, 2}),
    "QuantizeLinear": frozenset({1, 2}), "DequantizeLinear": frozenset({1, 2}),
    "QLinearConv": frozenset({1, 2, 4, 5, 6, 7}), "QLinearMatMul": frozenset({1, 2, 4, 5, 6, 7}),
    "ConvInteger": frozenset({2, 3}), "MatMulInteger": frozenset({2, 3}),
    **{op: frozenset({1}) for op in REDUCE_OPS if op.startswith("Reduce")},
}
_PASS_THROUGH = ("DequantizeLinear", "QuantizeLinear", "Cast", "Identity")
_COUNTED_DTYPES = None  # filled lazily (needs onnx)


def _counted_dtypes() -> frozenset[int]:
    global _COUNTED_DTYPES
    if _COUNTED_DTYPES is None:
        from onnx import TensorProto as T

        _COUNTED_DTYPES = frozenset({T.FLOAT, T.FLOAT16, T.BFLOAT16, T.DOUBLE, T.INT8, T.UINT8, T.INT16, T.UINT16,
                                     T.INT32, T.UINT32, getattr(T, "INT4", -1), getattr(T, "UINT4", -1),
                                     getattr(T, "FLOAT8E4M3FN", -1), getattr(T, "FLOAT8E5M2", -1)})
    return _COUNTED_DTYPES


def _load(model: Any):
    import onnx

    if isinstance(model, onnx.ModelProto):
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
        return proto
    return load_onnx(model, external_data=True)


def _graph_inputs(graph) -> list:
    inits = {i.name for i in graph.initializer}
    return [i for i in graph.input if i.name not in inits]


def _fix_input_shapes(graph, batch: int, input_size: int | None) -> list[int] | None:
    """Set the symbolic batch dim of every graph input to ``batch`` and, for the 4-D image
    input, H and W to ``input_size``; return the image input's resulting shape."""
    image_shape = None
    for inp in _graph_inputs(graph):
        tt = inp.type.tensor_type
        if not tt.HasField("shape"):
            continue
        dims = tt.shape.dim
        if len(dims) >= 1 and not dims[0].HasField("dim_value"):
            dims[0].dim_value = batch
        elif len(dims) >= 1 and dims[0].dim_value != batch:
            raise EOEdgeError(f"graph input {inp.name!r} has a fixed batch of {dims[0].dim_value}; "
                              f"count at batch {dims[0].dim_value} or export with a dynamic batch")
        if len(dims) == 4 and image_shape is None:
            if input_size is not None:
                for d in dims[2:]:
                    if d.HasField("dim_value") and d.dim_value != input_size:
                        raise EOEdgeError(
                            f"graph input {inp.name!r} has a fixed size {dims[2].dim_value}x{dims[3].dim_value}; "
                            f"export the model at {input_size} px to count MACs at that size")
                    d.dim_value = input_size
            image_shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return image_shape


def _toposort(graph) -> None:
    """Reorder ``graph.node`` topologically, in place (some tools, e.g. the FP16 converter,
    append their Cast nodes at the end; ONNX shape inference walks nodes in list order)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    nodes = list(graph.node)
    ordered, pending = [], nodes
    while pending:
        rest = []
        for n in pending:
            if all(i in available for i in n.input):
                ordered.append(n)
                available.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):  # a cycle or an input from an outer scope: keep the order
            ordered.extend(rest)
            break
        pending = rest
    if [id(n) for n in ordered] != [id(n) for n in nodes]:
        copies = [type(n)() for n in ordered]
        for c, n in zip(copies, ordered):
            c.CopyFrom(n)
        del graph.node[:]
        graph.node.extend(copies)


def _attr(node, name: str, default: Any = None) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


class _Shapes:
    """name -> static shape (list of ints) or None, after shape inference."""

    def __init__(self, graph):
        import onnx

        self.shapes: dict[str, list[int] | None] = {}
        self.producer = {o: n for n in graph.node for o in n.output}
        for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
            tt = vi.type.tensor_type
            if tt.HasField("shape"):
                dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
                self.shapes[vi.name] = None if any(d is None for d in dims) else dims
        for init in graph.initializer:
            self.shapes[init.name] = list(init.dims)
        for n in graph.node:
            if n.op_type == "Constant":
                t = _attr(n, "value")
                if isinstance(t, onnx.TensorProto):
                    self.shapes[n.output[0]] = list(t.dims)

    def get(self, name: str) -> list[int] | None:
        """Shape of ``name``, looking through DequantizeLinear/Cast/Identity when unknown."""
        seen = 0
        while name and seen < 8:
            s = self.shapes.get(name)
            if s is not None:
                return s
            prod = self.producer.get(name)
            if prod is None or prod.op_type not in _PASS_THROUGH:
                return None
            name, seen = prod.input[0], seen + 1
        return None


def _prod(xs) -> int:
    return int(math.prod(int(x) for x in xs))


def _node_macs(node, sh: _Shapes) -> int | None:
    """MACs of one MAC op (see module docstring), None if a needed shape is unknown."""
    op = node.op_type
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        y, w = sh.get(node.output[0]), sh.get(node.input[3 if op == "QLinearConv" else 1])
        return None if y is None or w is None else _prod(y) * _prod(w[1:])
    if op == "ConvTranspose":
        x, w = sh.get(node.input[0]), sh.get(node.input[1])
        return None if x is None or w is None else _prod(x) * _prod(w[1:])
    if op == "Gemm":
        a, y = sh.get(node.input[0]), sh.get(node.output[0])
        if a is None or y is None or len(a) != 2:
            return None
        k = a[0] if _attr(node, "transA", 0) else a[1]
        return _prod(y) * int(k)
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        a, y = sh.get(node.input[0]), sh.get(node.output[0])
        if a is None or y is None or not a:
            return None
        return _prod(y) * int(a[-1])
    return 0


def _node_other_flops(node, sh: _Shapes) -> int | None:
    op = node.op_type
    if op in ELEMENTWISE_OPS:
        y = sh.get(node.output[0])
        return None if y is None else _prod(y)
    if op in REDUCE_OPS:
        x = sh.get(node.input[0])
        return None if x is None else _prod(x)
    if op in WINDOW_OPS:
        y, k = sh.get(node.output[0]), _attr(node, "kernel_shape")
        return None if y is None or not k else _prod(y) * _prod(k)
    return 0


def count_params(graph) -> int:
    """Parameter elements held by ``graph`` (an ``onnx.GraphProto``); see the module docstring."""
    import onnx

    tensors: dict[str, Any] = {i.name: i for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            t = _attr(n, "value")
            if isinstance(t, onnx.TensorProto):
                tensors[n.output[0]] = t
    weight_use: set[str] = set()
    for n in graph.node:
        skip = _NON_WEIGHT_INPUTS.get(n.op_type, frozenset())
        for i, name in enumerate(n.input):
            if name in tensors and i not in skip:
                weight_use.add(name)
    ok = _counted_dtypes()
    total = 0
    for name in weight_use:
        t = tensors[name]
        numel = _prod(t.dims)
        if t.data_type in ok and numel > 1:
            total += numel
    return total


def count_macs(model: str | Path | Any, input_size: int | None = None, batch: int = 1) -> dict[str, Any]:
    """Count MACs, FLOPs and parameters of an ONNX graph (FP32, FP16 or QDQ INT8).

    The symbolic batch dimension is fixed to ``batch`` and, if given, the image input's H
    and W to ``input_size`` before ``onnx.shape_inference.infer_shapes``. The caller's
    ``ModelProto`` is not modified.

    Args:
        model: path of an ``.onnx`` file or an ``onnx.ModelProto``.
        input_size: square input size in pixels to count at (default: the graph's own,
            which must then be static).
        batch: batch size N (MACs scale linearly with it).

    Returns:
        ``macs`` (int, multiply-accumulates per forward pass of N images), ``flops`` (int,
        = 2 x macs), ``other_flops`` (int, element-wise/normalisation/pooling FLOPs, not in
        ``flops``), ``params`` (int, weight elements), ``by_op`` (``{op_type: {"nodes": int,
        "macs": int, "other_flops": int}}``), ``input_size`` (px or None), ``input_shape``
        (e.g. ``[1, 3, 64, 64]``), ``batch``, ``unresolved`` (``"op_type name"`` of nodes whose
        shapes could not be inferred: their MACs are missing, so ``macs`` is then a lower
        bound) and ``convention`` (one line, e.g. ``"MACs of Conv/Gemm/MatMul at 1x3x64x64;
        FLOPs = 2 x MACs (+ other_flops listed separately)"``).

    Raises:
        EOEdgeError: unreadable file, bad ``batch``/``input_size``, or a batch or input size
            that contradicts a fixed-shape graph.
    """
    import onnx

    if not isinstance(batch, int) or batch < 1:
        raise EOEdgeError(f"batch must be a positive integer, got {batch!r}")
    if input_size is not None and (not isinstance(input_size, int) or input_size < 1):
        raise EOEdgeError(f"input size must be a positive integer (pixels), got {input_size!r}")
    proto = _load(model)
    graph = proto.graph
    image_shape = _fix_input_shapes(graph, batch, input_size)
    _toposort(graph)
    del graph.value_info[:]  # stale (symbolic-batch) shapes would fight the fixed ones
    for out in graph.output:  # let inference recompute the outputs' shapes
        if out.type.tensor_type.HasField("shape"):
            out.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=True)
    except Exception as e:  # noqa: BLE001
        raise EOEdgeError(f"ONNX shape inference failed: {str(e).strip().splitlines()[0][:200]}") from None
    sh = _Shapes(inferred.graph)
    by_op: dict[str, dict[str, int]] = {}
    unresolved: list[str] = []
    macs = other = 0
    for node in inferred.graph.node:
        m = _node_macs(node, sh)
        f = _node_other_flops(node, sh)
        if m is None or f is None:
            unresolved.append(f"{node.op_type} {node.name}".strip())
        m, f = m or 0, f or 0
        if node.op_type in MAC_OPS or f or node.op_type in ELEMENTWISE_OPS | REDUCE_OPS | WINDOW_OPS:
            rec = by_op.setdefault(node.op_type, {"nodes": 0, "macs": 0, "other_flops": 0})
            rec["nodes"] += 1
            rec["macs"] += m
            rec["other_flops"] += f
        macs += m
        other += f
    shape = image_shape
    size = input_size if input_size is not None else (shape[2] if shape and shape[2] else None)
    shape_txt = "x".join(str(d) if d else "?" for d in shape) if shape else "?"
    return {
        "macs": int(macs), "flops": int(2 * macs), "other_flops": int(other), "params": count_params(graph),
        "by_op": dict(sorted(by_op.items(), key=lambda kv: (-kv[1]["macs"], -kv[1]["other_flops"], kv[0]))),
        "input_size": size, "input_shape": shape, "batch": batch, "unresolved": unresolved,
        "convention": f"MACs of Conv/Gemm/MatMul at {shape_txt}; FLOPs = 2 x MACs (+ other_flops listed separately)",
    }
