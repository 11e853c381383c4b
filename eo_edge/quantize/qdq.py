"""Q/DQ graph surgery on a QDQ INT8 ONNX: which activations are quantized, keeping some in float, Q/DQ placement by op type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..artifact.onnx_meta import read_metadata, set_metadata
from ..errors import EOEdgeError
from ..fileio import atomic_path


def activation_qdq(model) -> dict[str, tuple[Any, list[Any]]]:
    """The activation Q/DQ pairs of a QDQ ONNX model.

    Returns:
        ``{float tensor name: (QuantizeLinear node, [DequantizeLinear nodes reading it])}`` for
        every QuantizeLinear whose input is an activation (weights are stored quantized and have
        no QuantizeLinear).
    """
    inits = {i.name for i in model.graph.initializer}
    dqs: dict[str, list[Any]] = {}
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear":
            dqs.setdefault(n.input[0], []).append(n)
    pairs = {}
    for n in model.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] not in inits and dqs.get(n.output[0]):
            pairs[n.input[0]] = (n, dqs[n.output[0]])
    return pairs


def save_float_activations(qdq, tensors: list[str], out: Path) -> None:
    """Write a copy of the QDQ ``ModelProto`` ``qdq`` with ``tensors`` kept in float
    (:func:`keep_activations_float`) to ``out``, atomically, its ``eo_edge.calibration``
    metadata naming them. ``qdq`` itself is not changed, so the auto-fallback search quantizes
    once and writes each candidate from the same fully quantized model.

    Raises:
        EOEdgeError: a tensor without an activation Q/DQ pair.
    """
    import copy

    m = copy.deepcopy(qdq)
    keep_activations_float(m, tensors)
    cal = read_metadata(m).get("calibration") or {}
    set_metadata(m, {"eo_edge.calibration": {**cal, "float_activations": list(tensors)}})
    with atomic_path(out, suffix=".onnx") as tmp:
        tmp.write_bytes(m.SerializeToString())


def keep_activations_float(model, tensors: list[str]) -> None:
    """Remove the Q/DQ pairs of ``tensors`` from a QDQ ONNX model, in place: every node that read
    the dequantized copy reads the float tensor instead, and initializers left unused (the
    pairs' scales and zero points) are dropped.

    This is exact "keep this activation in float"; ``quantize_static(nodes_to_exclude=...)`` is
    not: excluding a node leaves its input quantized when the producer quantizes its own output.

    Raises:
        EOEdgeError: a tensor without an activation Q/DQ pair.
    """
    if not tensors:
        return
    pairs = activation_qdq(model)
    missing = [t for t in tensors if t not in pairs]
    if missing:
        raise EOEdgeError(f"no activation Q/DQ pair for tensor {missing[0]!r}")
    outputs = {o.name for o in model.graph.output}
    drop, rename = set(), {}  # node outputs identify nodes (unique in a valid graph)
    for t in tensors:
        q, ds = pairs[t]
        drop.add(q.output[0])
        # a pair in front of a graph output (the logits): the float tensor takes the output's name
        g = next((d.output[0] for d in ds if d.output[0] in outputs), None)
        if g is not None:
            rename[t] = g
        for d in ds:
            drop.add(d.output[0])
            rename[d.output[0]] = g or t
    keep = [n for n in model.graph.node if n.output[0] not in drop]
    def final(name: str) -> str:  # follow chained renames (Q/DQ -> Q/DQ) to the tensor that remains
        seen = set()
        while name in rename and name not in seen and rename[name] != name:
            seen.add(name)
            name = rename[name]
        return name

    for n in keep:
        for j, i in enumerate(n.input):
            if i in rename:
                n.input[j] = final(i)
        for j, o in enumerate(n.output):
            if o in rename and o not in drop:
                n.output[j] = final(o)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    used = {i for n in model.graph.node for i in n.input}
    live = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(live)


WEIGHTED_OPS = ["Conv", "ConvTranspose", "Gemm", "MatMul"]


def resolve_op_types(op_types: str | list[str]) -> list[str] | None:
    """``"all"`` -> None (ONNX Runtime's default set), ``"weighted"`` -> :data:`WEIGHTED_OPS`,
    ``"Conv,MatMul"`` or a list -> that list.

    Raises:
        EOEdgeError: an empty list.
    """
    if isinstance(op_types, str):
        if op_types == "all":
            return None
        if op_types == "weighted":
            return list(WEIGHTED_OPS)
        op_types = [t.strip() for t in op_types.split(",") if t.strip()]
    if not op_types:
        raise EOEdgeError("--quantize-ops: give all, weighted, or a comma-separated list of ONNX op types")
    return list(op_types)
