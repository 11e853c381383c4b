"""Static TensorRT preflight: check an ONNX file against one target of the rule table.

Pure (needs only the ``onnx`` package). Every violation names the node, the rule and its
source, so ``eo-edge check`` can print one line per violation without TensorRT installed.
Rules (ids as printed):

* ``opset``: the default-domain opset is inside the release's range (operators.md, first line);
* ``domain``: nodes of another domain need a TensorRT plugin;
* ``operator``: the operator is supported (operators.md "Supported" = Y);
* ``type``: the data input's tensor type is one the matrix lists for that operator, after the
  release's documented casts (INT64 -> INT32 and DOUBLE -> FLOAT on 8.x);
* ``qdq-scale`` / ``qdq-zero-point`` / ``qdq-per-channel``: Q/DQ scales are build-time constant
  scalars or 1-D tensors of an allowed type, zero points are constant zeros of a quantized type
  the release has, per-channel scales only on constant (weight) tensors, along axis 0 of a Conv
  weight;
* ``initializer``: initializer tensor types the release supports;
* ``io``: network input/output types;
* ``toposort``: nodes in topological order (ONNX IR);
* ``dla-static`` / ``dla-precision`` (with ``dla=True``): no dynamic dimensions, no FP32 network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EOEdgeError
from ..fileio import load_onnx
from . import Target, load_target, target_names

# ONNX TensorProto element type -> the names onnx-tensorrt's operators.md uses
_TYPE_NAMES = {1: "FP32", 2: "UINT8", 3: "INT8", 5: "INT16", 6: "INT32", 7: "INT64", 9: "BOOL", 10: "FP16",
               11: "DOUBLE", 16: "BF16", 17: "FP8", 18: "FP8", 19: "FP8", 20: "FP8", 22: "INT4", 21: "UINT4", 23: "FP4"}
_DEFAULT_DOMAINS = ("", "ai.onnx")
_QDQ = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class Violation:
    """One broken rule: ``rule`` id, the ``node`` name (or tensor / ``"model"``), its ``op_type``
    (``""`` for non-nodes), a one-line ``message`` and the rule's ``source``."""

    rule: str
    node: str
    op_type: str
    message: str
    source: str

    def line(self) -> str:
        """``node 'NAME' (OpType): message [rule]``: one line for a terminal."""
        where = f"node '{self.node}' ({self.op_type})" if self.op_type else self.node
        return f"{where}: {self.message} [{self.rule}]"

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "node": self.node, "op_type": self.op_type, "message": self.message,
                "source": self.source}


def type_name(elem_type: int) -> str:
    """ONNX element type number -> operators.md name (``1`` -> ``"FP32"``; unknown: ``"TYPE<n>"``)."""
    return _TYPE_NAMES.get(int(elem_type), f"TYPE{int(elem_type)}")



def _types(model) -> dict[str, int]:
    """Tensor name -> element type, from inputs, initializers, Constant nodes, outputs and ONNX
    shape inference (value_info)."""
    import onnx

    g = model.graph
    out: dict[str, int] = {}
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False).graph
    except Exception:  # noqa: BLE001 - inference is best effort; unknown types are not checked
        inferred = g
    for vi in list(inferred.value_info) + list(g.input) + list(g.output):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            out[vi.name] = vi.type.tensor_type.elem_type
    for init in g.initializer:
        out[init.name] = init.data_type
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value" and a.t is not None:
                    out[n.output[0]] = a.t.data_type
    return out


def _constants(model) -> dict[str, Any]:
    """Tensor name -> numpy value for initializers and Constant-node outputs."""
    from onnx import numpy_helper

    vals = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    vals[n.output[0]] = numpy_helper.to_array(a.t)
    return vals


def _opset(model) -> int | None:
    for o in model.opset_import:
        if o.domain in _DEFAULT_DOMAINS:
            return int(o.version)
    return None


def _check_toposort(model, t: Target) -> list[Violation]:
    g = model.graph
    known = {i.name for i in g.input} | {i.name for i in g.initializer} | {""}
    produced_later = {o for n in g.node for o in n.output}
    out = []
    for n in g.node:
        for name in n.input:
            if name not in known:
                why = ("is produced by a later node: nodes are not topologically sorted" if name in produced_later
                       else "is not produced by any node")
                out.append(Violation("toposort", n.name or n.output[0], n.op_type, f"input '{name}' {why}",
                                     t.sources["toposort"]))
        known.update(n.output)
    return out


def _check_qdq(n, t: Target, types: dict[str, int], consts: dict[str, Any], consumers: dict[str, list],
               q_of_const: set[str]) -> list[Violation]:
    import numpy as np

    out = []
    name = n.name or n.output[0]

    def v(rule: str, msg: str, src: str = "qdq") -> None:
        out.append(Violation(rule, name, n.op_type, msg, t.sources[src]))

    scale = n.input[1] if len(n.input) > 1 else ""
    if scale not in consts:
        v("qdq-scale", f"scale '{scale}' is not a build-time constant (initializer or Constant)")
        numel = 1
    else:
        s = consts[scale]
        numel = int(s.size)
        if type_name(types.get(scale, 0)) not in t.qdq_scale_types:
            v("qdq-scale", f"scale '{scale}' is {type_name(types.get(scale, 0))}; TensorRT {t.tensorrt} takes "
                           f"{'/'.join(sorted(t.qdq_scale_types))} scales")
        if s.ndim > 1:
            v("qdq-scale", f"scale '{scale}' has rank {s.ndim}; TensorRT takes a scalar (per tensor) or 1-D (per channel)")
    quantized_types = t.operators.get("DequantizeLinear", [])
    if len(n.input) > 2 and n.input[2]:
        zp = n.input[2]
        zt = type_name(types.get(zp, 0))
        if n.op_type == "QuantizeLinear" and zt not in quantized_types:  # DQ: its input type (rule 'type')
            v("qdq-zero-point", f"zero point '{zp}' is {zt}: the quantized type would be {zt}; TensorRT {t.tensorrt} "
                                f"quantizes to {'/'.join(quantized_types)} only", "operators")
        if zp not in consts:
            v("qdq-zero-point", f"zero point '{zp}' is not a build-time constant")
        elif np.any(consts[zp].astype(np.float64) != 0):
            v("qdq-zero-point", f"zero point '{zp}' is not zero (TensorRT quantization is symmetric)", "operators")
    if numel > 1:
        data = n.input[0]
        # a weight: a constant, or the Q of a constant (QuantizeLinear -> DequantizeLinear on a float
        # initializer, the form QAT / ModelOpt exports; TensorRT folds it at build time)
        if data not in consts and data not in q_of_const:
            v("qdq-per-channel", f"per-channel scale ({numel} values) on '{data}', which is not a constant: TensorRT "
                                 "quantizes activations per tensor only", "quant-schemes")
        else:
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            weight = n.output[0]
            for c in consumers.get(weight, []):
                if c.op_type == "Conv" and len(c.input) > 1 and c.input[1] == weight and axis != 0:
                    v("qdq-per-channel", f"per-channel axis {axis} on Conv weight '{data}': TensorRT takes axis 0 "
                                         "(output channels)", "quant-schemes")
    return out


def check_model(model, target: str | Target, *, dla: bool = False) -> list[Violation]:
    """Check a loaded ``onnx.ModelProto`` against a rule-table target.

    Args:
        model: the model (``onnx.load`` result).
        target: a target name (``"tensorrt-8.6"``) or a loaded :class:`~eo_edge.trt_rules.Target`.
        dla: also apply the DLA rules (static shapes, FP16/INT8 network).

    Returns:
        The violations, in graph order (empty: the table finds nothing TensorRT would reject).

    Raises:
        EOEdgeError: unknown target.
    """
    t = load_target(target) if isinstance(target, str) else target
    g = model.graph
    out: list[Violation] = []
    opset = _opset(model)
    if opset is None or opset > t.opset_max or (t.opset_min is not None and opset < t.opset_min):
        rng = f"{t.opset_min or 1} to {t.opset_max}"
        out.append(Violation("opset", "model", "", f"default-domain opset {opset}; TensorRT {t.tensorrt} supports "
                                                   f"opset {rng}", t.sources["operators"]))
    out += _check_toposort(model, t)
    types, consts = _types(model), _constants(model)
    init_names = {i.name for i in g.initializer}
    for init in g.initializer:
        tn = type_name(init.data_type)
        if tn not in t.initializer_types | t.limited_types | set(t.operators.get("DequantizeLinear", [])):
            out.append(Violation("initializer", f"initializer '{init.name}'", "", f"type {tn} is not a type TensorRT "
                                 f"{t.tensorrt} supports in a network", t.sources["types"]))
    for vi in [i for i in g.input if i.name not in init_names] + list(g.output):
        tn = type_name(vi.type.tensor_type.elem_type)
        if tn not in t.io_types:
            out.append(Violation("io", f"network tensor '{vi.name}'", "", f"type {tn} is not a network input/output "
                                 f"type of TensorRT {t.tensorrt}", t.sources["types"]))
    q_of_const = {n.output[0] for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] in consts}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    for n in g.node:
        name = n.name or (n.output[0] if n.output else "?")
        if n.domain not in _DEFAULT_DOMAINS:
            out.append(Violation("domain", name, n.op_type, f"domain '{n.domain}' is not the ONNX default domain "
                                 "(needs a TensorRT plugin)", t.sources["domains"]))
            continue
        if n.op_type not in t.operators:
            why = "listed as unsupported" if n.op_type in t.unsupported else "not in the support matrix"
            out.append(Violation("operator", name, n.op_type, f"{n.op_type} is {why} for TensorRT {t.tensorrt}",
                                 t.sources["operators"]))
            continue
        allowed = t.operators[n.op_type]
        if n.input and n.input[0] and n.input[0] in types and allowed:
            tn = type_name(types[n.input[0]])
            if tn not in allowed and t.cast_down.get(tn) not in allowed:
                out.append(Violation("type", name, n.op_type, f"input '{n.input[0]}' is {tn}; TensorRT {t.tensorrt} "
                                     f"accepts {', '.join(allowed)}", t.sources["operators"]))
        if n.op_type in _QDQ:
            out += _check_qdq(n, t, types, consts, consumers, q_of_const)
    if dla:
        for vi in g.input:
            if vi.name in init_names:
                continue
            dims = vi.type.tensor_type.shape.dim
            if any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
                shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
                out.append(Violation("dla-static", f"network input '{vi.name}'", "", f"has dynamic dimensions {shown}; "
                                     "DLA needs static shapes (export with --static-batch)", t.sources["dla-static"]))
        ops = {n.op_type for n in g.node}
        fp16 = any(i.data_type == 10 for i in g.initializer)
        if not fp16 and not (ops & set(_QDQ)):
            out.append(Violation("dla-precision", "model", "", "an FP32 network; DLA runs FP16 or INT8 only "
                                 "(compile --fp16 or --int8 first)", t.sources["dla-precision"]))
    return out


def check_file(path: str | Path, target: str | Target, *, dla: bool = False) -> list[Violation]:
    """:func:`check_model` on a file.

    Raises:
        EOEdgeError: missing/unreadable file or unknown target (one line).
    """
    return check_model(load_onnx(path), target, dla=dla)


def preflight(path: Path, tensorrt_version: str, *, dla: bool = False, skip: tuple[str, ...] = ()) -> None:
    """Run the rule table for the installed TensorRT before a build (``compile``/``bench
    --backend tensorrt``). ``skip``: rule ids the caller satisfies by construction (the
    TensorRT backend builds DLA engines with min = opt = max, so ``dla-static`` holds).

    Raises:
        EOEdgeError: the file breaks a rule; the message names the first violation and the count.
    """
    from . import target_for_version

    name = target_for_version(tensorrt_version)
    v = [x for x in check_model(load_onnx(path), name, dla=dla) if x.rule not in skip]
    if v:
        raise EOEdgeError(f"{path.name} fails the TensorRT preflight ({name}, {len(v)} violation(s)); first: "
                          f"{v[0].line()}; run `eo-edge check {path} --target {name}` for all")


__all__ = ["Violation", "check_model", "check_file", "load_onnx", "preflight", "type_name"]


def verdict_line(path: Path) -> str:
    """``"TensorRT preflight: pass on tensorrt-8.5, ..., fail on ..."`` for ``compile --int8``'s log."""
    model = load_onnx(path)
    counts = {n: len(check_model(model, n)) for n in target_names()}
    ok = [n.split("-")[1] for n, c in counts.items() if c == 0]
    bad = [f"{n.split('-')[1]} ({c})" for n, c in counts.items() if c]
    parts = ([f"passes TensorRT {', '.join(ok)}"] if ok else []) + ([f"fails TensorRT {', '.join(bad)}"] if bad else [])
    return f"TensorRT preflight ({path.name}): " + "; ".join(parts) + " (eo-edge check for details)"
