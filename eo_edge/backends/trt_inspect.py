"""What TensorRT is asked to build, checked before any build: the ONNX file's inputs and precision form (:func:`inspect_onnx`, :func:`check_precision`) and the batch profile (:func:`check_batches`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..artifact.forms import PRECISIONS
from ..artifact.onnx_meta import decode_metadata
from ..errors import EOEdgeError
from ..fileio import load_onnx


def inspect_onnx(onnx_path: str | Path) -> dict[str, Any]:
    """What the TensorRT build needs to know about an ONNX file, without TensorRT.

    Returns:
        ``{"metadata": {key: str}`` (all ``metadata_props``, values as stored, e.g.
        ``"eo_edge.config"``, ``"eo_edge.precision"``),
        ``"inputs": {name: [dims]}`` (``-1`` for symbolic dims), ``"has_qdq": bool``
        (QuantizeLinear/DequantizeLinear nodes: explicit INT8), ``"has_fp16": bool``
        (FLOAT16 initializers or Casts to FLOAT16)``}``.

    Raises:
        EOEdgeError: the file is missing or not a readable ONNX model.
    """
    import onnx  # type: ignore[import-not-found]

    model = load_onnx(onnx_path)
    graph = model.graph
    init_names = {i.name for i in graph.initializer}
    inputs = {}
    for vi in graph.input:
        if vi.name in init_names:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
        inputs[vi.name] = dims
    fp16 = onnx.TensorProto.FLOAT16
    ops = {n.op_type for n in graph.node}
    has_fp16 = any(i.data_type == fp16 for i in graph.initializer) or any(
        n.op_type == "Cast" and any(a.name == "to" and a.i == fp16 for a in n.attribute) for n in graph.node
    )
    return {
        "metadata": {p.key: p.value for p in model.metadata_props},
        "inputs": inputs,
        "has_qdq": bool(ops & {"QuantizeLinear", "DequantizeLinear"}),
        "has_fp16": has_fp16,
    }



def check_precision(precision: str, info: dict[str, Any], onnx_name: str = "the ONNX file") -> None:
    """Refuse a build whose requested precision is not the one the ONNX carries.

    Pure function. With a strongly typed network (TensorRT >= 10) precision comes only
    from the graph, so a mismatch would silently build another precision.

    Args:
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        info: :func:`inspect_onnx` result.

    Raises:
        EOEdgeError: unknown precision, or the ONNX carries another one (one line).
    """
    if precision not in PRECISIONS:
        raise EOEdgeError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    meta = decode_metadata(info.get("metadata", {}))
    declared = meta.get("precision")
    if isinstance(declared, str) and declared in PRECISIONS and declared != precision:
        raise EOEdgeError(f"{onnx_name} was exported as {declared}, not {precision}; build the engine as {declared}")
    qdq, fp16 = bool(info.get("has_qdq")), bool(info.get("has_fp16"))
    carried = "int8" if qdq else ("fp16" if fp16 else "fp32")
    if carried != precision:
        what = {"int8": "an explicitly quantized (QDQ) ONNX", "fp16": "an FP16 ONNX", "fp32": "an FP32 ONNX"}
        raise EOEdgeError(
            f"precision {precision} needs {what[precision]}, but {onnx_name} is {what[carried]}; "
            + (f"make one with `eo-edge compile --{precision}`" if precision != "fp32" else "use the FP32 file from `eo-edge export`")
        )


def check_batches(min_batch: int, opt_batch: int, max_batch: int) -> None:
    """Pure check ``1 <= min_batch <= opt_batch <= max_batch``.

    Raises:
        EOEdgeError: otherwise (one line).
    """
    if not (1 <= min_batch <= opt_batch <= max_batch):
        raise EOEdgeError(
            f"batch sizes must satisfy 1 <= min <= opt <= max, got min={min_batch} opt={opt_batch} max={max_batch}"
        )
