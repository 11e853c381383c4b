"""What TensorRT's ONNX parser rejects, read from upstream text, not from eo-edge's rule table.

The tests' TensorRT double (``tests/fake_trt.py``) rejects what this module rejects. It must not
be derived from :mod:`eo_edge.trt_rules` (which it is used to test), so nothing here imports
``eo_edge``. Two sources:

* onnx-tensorrt's ``docs/operators.md`` per release, vendored byte for byte under
  ``tests/data/onnx-tensorrt/`` (commits and licence in ``SOURCES.md``), parsed here by
  :func:`parse_page`: the opset range of the first lines, the data-type notes, and the operator
  support matrix (operator, Supported Y/N, Supported Types, Restrictions);
* the few rules that are not on that page, written below from the TensorRT documentation's
  wording (each rule cites it): Q/DQ scales (Operators reference, Quantize / Dequantize) and
  quantization granularity (Developer Guide, Quantization Schemes).

:func:`violations` applies them to an ONNX model. :func:`table_differences` compares one of
eo-edge's ``operators-<release>.json`` files with a parsed page, row by row: a wrong row of the
table is a difference.

Deliberately not enforced (TensorRT does not reject these at parse time): node order (the
importer topologically sorts the graph; onnx-tensorrt 8.5-GA ModelImporter.cpp), and the DLA
restrictions (the double's builder applies those).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "onnx-tensorrt"

# ---------------------------------------------------------------------------------------------
# the page


@dataclass(frozen=True)
class Row:
    """One row of the page's "Operator Support Matrix"."""

    op: str
    supported: bool  # column "Supported": Y / N
    types: tuple[str, ...]  # column "Supported Types", as written (split at commas and spaces)
    restrictions: str  # column "Restrictions" ("" when absent or empty)


@dataclass(frozen=True)
class Page:
    """One release's ``docs/operators.md``, parsed."""

    release: str  # from the file name: "8.5", "10.1", ...
    opset_min: int | None  # None: the page gives only an upper bound ("up to Opset 17")
    opset_max: int
    data_types: frozenset[str]  # "TensorRT supports the following ONNX data types: ..." (matrix names)
    limited_types: frozenset[str]  # "There is limited support for ... types"
    cast_down: dict[str, str]  # "TensorRT will attempt to cast down INT64 to INT32 ..."
    quantized_types: frozenset[str]  # "... are treated as `Quantized Types`" (10.x)
    io_only_types: frozenset[str]  # "... is only supported as network input or output tensor types" (10.x)
    rows: dict[str, Row] = field(default_factory=dict)

    @property
    def major(self) -> int:
        return int(self.release.split(".")[0])


# the header sentences spell types as ONNX does; the matrix uses short names
_HEADER_NAMES = {"FLOAT": "FP32", "FLOAT32": "FP32", "FLOAT16": "FP16", "BFLOAT16": "BF16"}


def _type_list(text: str) -> list[str]:
    """``"DOUBLE, FLOAT32, ... and BOOL"`` -> matrix names ``["DOUBLE", "FP32", ..., "BOOL"]``."""
    words = re.findall(r"[A-Z][A-Z0-9]+", text)
    return [_HEADER_NAMES.get(w, w) for w in words]


def parse_page(text: str, release: str) -> Page:
    """Parse one ``docs/operators.md``.

    Raises:
        ValueError: the page lacks the opset sentence or the matrix, or a row's "Supported" cell
        is neither Y nor N (an upstream format change must not pass silently).
    """
    m = re.search(r"inclusive range of opset (\d+) to opset (\d+)", text, re.IGNORECASE)
    if m:
        opset_min, opset_max = int(m.group(1)), int(m.group(2))
    else:
        m = re.search(r"supports operators up to opset (\d+)", text, re.IGNORECASE)
        if not m:
            raise ValueError(f"operators.md {release}: no opset sentence")
        opset_min, opset_max = None, int(m.group(1))

    data_types: list[str] = []
    limited: list[str] = []
    cast: dict[str, str] = {}
    quantized: list[str] = []
    io_only: list[str] = []
    for line in text.splitlines():
        if m := re.search(r"supports the following ONNX data types:(.*)", line):
            data_types = _type_list(m.group(1))
        if m := re.search(r"limited support for (.*?) types?\b", line):
            limited = _type_list(m.group(1))
        if "cast" in line and line.lstrip().startswith(">"):
            # "cast down INT64 to INT32 and DOUBLE down to FLOAT" / "cast DOUBLE down to FLOAT"
            for src, dst in re.findall(r"\b([A-Z][A-Z0-9]+) (?:down )?to ([A-Z][A-Z0-9]+)", line):
                cast[_HEADER_NAMES.get(src, src)] = _HEADER_NAMES.get(dst, dst)
        if m := re.search(r"Note: (.*?) are treated as `Quantized Types`", line):
            quantized = _type_list(m.group(1))
        if m := re.search(r"Note: (.*?) is only supported as network input or output", line):
            io_only = _type_list(m.group(1))
    if not data_types:
        raise ValueError(f"operators.md {release}: no data-type sentence")

    rows: dict[str, Row] = {}
    lines = text.splitlines()
    head = next((i for i, ln in enumerate(lines) if ln.startswith("|") and "Supported Types" in ln), None)
    if head is None:
        raise ValueError(f"operators.md {release}: no operator matrix")
    cols = [c.strip() for c in lines[head].strip().strip("|").split("|")]
    i_op, i_sup, i_types = cols.index("Operator"), cols.index("Supported"), cols.index("Supported Types")
    i_restr = cols.index("Restrictions")
    for ln in lines[head + 1:]:
        if not ln.startswith("|"):
            break  # end of the table
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        if all(set(c) <= set("-: ") for c in cells):
            continue  # the |---|---| line
        cells += [""] * (len(cols) - len(cells))  # short rows: "| Bernoulli | N |"
        sup = cells[i_sup]
        if sup not in ("Y", "N"):
            raise ValueError(f"operators.md {release}: row {cells[i_op]!r} has Supported = {sup!r}")
        types = tuple(t for t in re.split(r"[,\s]+", cells[i_types]) if t)
        restr = " | ".join(c for c in cells[i_restr:] if c)
        rows[cells[i_op]] = Row(cells[i_op], sup == "Y", types, restr)
    return Page(release, opset_min, opset_max, frozenset(data_types), frozenset(limited), cast,
                frozenset(quantized), frozenset(io_only), rows)


def releases() -> list[str]:
    """The vendored releases, oldest first (``["8.5", "8.6", "10.0", "10.1"]``)."""
    found = [p.stem.split("-", 1)[1] for p in DATA.glob("operators-*.md")]
    return sorted(found, key=lambda r: tuple(int(x) for x in r.split(".")))


@functools.cache
def page(release: str) -> Page:
    """The parsed page of one vendored release (``page("8.6")``)."""
    return parse_page((DATA / f"operators-{release}.md").read_text(encoding="utf-8"), release)


def release_for_version(version: str) -> str:
    """The page for an installed TensorRT version: the newest vendored release not newer than it
    (``"10.3.0"`` -> ``"10.1"``: there is no 10.3 page, and 10.3 has at least 10.1's operators).

    Raises:
        ValueError: the version is older than every vendored page.
    """
    want = tuple(int(x) for x in version.split(".")[:2])
    ok = [r for r in releases() if tuple(int(x) for x in r.split(".")) <= want]
    if not ok:
        raise ValueError(f"no onnx-tensorrt operators.md vendored for TensorRT {version} or older")
    return ok[-1]


# ---------------------------------------------------------------------------------------------
# rules from the TensorRT documentation (not on the page)

# Q/DQ scale types. TensorRT 8.6.1 Operators reference, Quantize / Dequantize: "scale float32,
# a build-time constant scalar or 1-D tensor"; TensorRT 10 Operators reference, Quantize /
# Dequantize: "scale a build-time constant, scalar (per-tensor) or 1-D (per-channel; 2-D block
# only for INT4), float32/float16/bfloat16". 8.5 has no such page; its operators.md row
# restrictions are the same as 8.6's, so 8.6's wording is applied to 8.x.
SCALE_TYPES = {8: frozenset({"FP32"}), 10: frozenset({"FP32", "FP16", "BF16"})}
SCALE_SOURCE = {8: "TensorRT 8.6.1 Operators reference, Quantize/Dequantize",
                10: "TensorRT 10 Operators reference, Quantize/Dequantize"}
# Developer Guide, Working with Quantized Types > Quantization Schemes: "activations are
# quantized per tensor, weights (build-time constants) per channel along the output-channel axis
# (K, axis 0 of a Conv weight)".
SCHEMES_SOURCE = "TensorRT Developer Guide, Quantization Schemes"

# ONNX TensorProto element type -> the matrix's type names
_ONNX_TYPES = {1: "FP32", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64", 8: "STRING",
               9: "BOOL", 10: "FP16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 16: "BF16", 17: "FP8", 18: "FP8",
               19: "FP8", 20: "FP8", 21: "UINT4", 22: "INT4"}


def onnx_type(elem_type: int) -> str:
    """ONNX element type number -> matrix name (``10`` -> ``"FP16"``)."""
    return _ONNX_TYPES.get(int(elem_type), f"ONNX-TYPE-{int(elem_type)}")


@dataclass(frozen=True)
class Rejection:
    """Why the parser would fail: ``rule``, where (``node`` name, ``op``), ``message``."""

    rule: str
    node: str
    op: str
    message: str
    source: str

    def line(self) -> str:
        where = f"node '{self.node}' ({self.op})" if self.op else self.node
        return f"{where}: {self.message} [{self.rule}; {self.source}]"


def _facts(model) -> tuple[dict[str, str], dict[str, Any]]:
    """(tensor -> matrix type name, tensor -> numpy value of constants)."""
    import onnx
    from onnx import numpy_helper

    g = model.graph
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False).graph
    except Exception:  # noqa: BLE001 - an invalid graph: use what is declared
        inferred = g
    types: dict[str, str] = {}
    for vi in [*inferred.value_info, *g.input, *g.output]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            types[vi.name] = onnx_type(vi.type.tensor_type.elem_type)
    values: dict[str, Any] = {}
    for t in g.initializer:
        types[t.name] = onnx_type(t.data_type)
        values[t.name] = numpy_helper.to_array(t)
    for n in g.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            for a in n.attribute:
                if a.name == "value":
                    types[n.output[0]] = onnx_type(a.t.data_type)
                    values[n.output[0]] = numpy_helper.to_array(a.t)
    return types, values


def violations(model, p: Page) -> list[Rejection]:
    """Everything in ``model`` (an ``onnx.ModelProto``) the page ``p`` and the cited documentation
    say TensorRT ``p.release`` rejects, in graph order (empty: accepted)."""
    import numpy as np

    src = f"onnx-tensorrt operators.md {p.release}"
    out: list[Rejection] = []
    g = model.graph

    # opset: "supports operators up to Opset 17" / "in the inclusive range of opset 9 to opset 20"
    opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or opset > p.opset_max or (p.opset_min is not None and opset < p.opset_min):
        lo = p.opset_min if p.opset_min is not None else 1
        out.append(Rejection("opset", "model", "", f"ONNX opset {opset}; TensorRT {p.release} parses opset "
                                                   f"{lo} to {p.opset_max}", src))

    types, values = _facts(model)

    # tensor types: the page's data types, plus the limited ones it casts down; UINT8 only as a
    # network input/output (10.x); quantized types only through Q/DQ, never as a network input
    usable = (p.data_types | p.limited_types) - p.io_only_types
    io_ok = (p.data_types | p.limited_types) - p.quantized_types
    for t in g.initializer:
        tn = onnx_type(t.data_type)
        if tn not in usable:
            out.append(Rejection("initializer", f"initializer '{t.name}'", "", f"{tn} is not an ONNX data type "
                                 f"TensorRT {p.release} supports in a network", src))
    inits = {t.name for t in g.initializer}
    for vi in [*(i for i in g.input if i.name not in inits), *g.output]:
        tn = onnx_type(vi.type.tensor_type.elem_type)
        if tn not in io_ok:
            out.append(Rejection("io", f"network tensor '{vi.name}'", "", f"{tn} is not a network input/output "
                                 f"type of TensorRT {p.release}", src))

    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    dq_types = p.rows["DequantizeLinear"].types if "DequantizeLinear" in p.rows else ()

    for n in g.node:
        name = n.name or (n.output[0] if n.output else "?")

        def reject(rule: str, msg: str, source: str = src) -> None:
            out.append(Rejection(rule, name, n.op_type, msg, source))  # noqa: B023 - used at once

        if n.domain not in ("", "ai.onnx"):
            # the page is the ONNX operator set (onnx/onnx docs/Operators.md); other domains
            # need a plugin
            reject("domain", f"op of domain '{n.domain}', not in the ONNX operator set the parser imports")
            continue
        row = p.rows.get(n.op_type)
        if row is None or not row.supported:
            reject("operator", f"{n.op_type} is {'N' if row else 'absent'} in the TensorRT {p.release} "
                               "support matrix")
            continue
        data = n.input[0] if n.input else ""
        if data and data in types and row.types:
            tn = types[data]
            if tn not in row.types and p.cast_down.get(tn) not in row.types:
                reject("type", f"input '{data}' is {tn}; the matrix lists {', '.join(row.types)}")
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue

        # --- Q/DQ: scale (Operators reference) ---
        scale = n.input[1] if len(n.input) > 1 else ""
        numel = 1
        if scale not in values:
            reject("qdq-scale", f"scale '{scale}' is computed at run time; TensorRT takes a build-time constant",
                   SCALE_SOURCE[p.major])
        else:
            sv = values[scale]
            numel = int(sv.size)
            if types[scale] not in SCALE_TYPES[p.major]:
                reject("qdq-scale", f"scale '{scale}' is {types[scale]}, not "
                                    f"{'/'.join(sorted(SCALE_TYPES[p.major]))}", SCALE_SOURCE[p.major])
            if sv.ndim > 1:
                reject("qdq-scale", f"scale '{scale}' has rank {sv.ndim}: neither a scalar nor 1-D",
                       SCALE_SOURCE[p.major])
        # --- zero point: the row's restriction "`y_zero_point` must be 0" / "`x_zero_point` must be zero"
        zp = n.input[2] if len(n.input) > 2 else ""
        if zp:
            if n.op_type == "QuantizeLinear" and types.get(zp) not in dq_types:
                # Q's output type is its zero point's; it must be one DequantizeLinear reads
                reject("qdq-zero-point", f"zero point '{zp}' is {types.get(zp)}, so the output would be; "
                                         f"DequantizeLinear reads {', '.join(dq_types)}")
            if re.search(r"zero_point` must be (0|zero)", row.restrictions):
                if zp not in values:
                    reject("qdq-zero-point", f"zero point '{zp}' is not a constant; the matrix: {row.restrictions}")
                elif np.any(values[zp].astype(np.float64) != 0):
                    reject("qdq-zero-point", f"zero point '{zp}' is not all zeros; the matrix: {row.restrictions}")
        # --- granularity (Quantization Schemes): per channel only for weights, along axis 0 of Conv
        if numel > 1:
            src_tensor = n.input[0]
            is_weight = src_tensor in values or any(
                q.op_type == "QuantizeLinear" and q.output[0] == src_tensor and q.input[0] in values for q in g.node)
            if not is_weight:
                reject("qdq-per-channel", f"{numel} scales on '{src_tensor}', an activation: activations are "
                                          "quantized per tensor", SCHEMES_SOURCE)
            else:
                axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
                for c in consumers.get(n.output[0], []):
                    if c.op_type == "Conv" and len(c.input) > 1 and c.input[1] == n.output[0] and axis != 0:
                        reject("qdq-per-channel", f"Conv weight '{src_tensor}' quantized along axis {axis}: "
                                                  "weights are quantized per output channel (axis 0)", SCHEMES_SOURCE)
    return out


def violations_for_file(path: str | Path, version: str) -> list[Rejection]:
    """:func:`violations` of an ONNX file for an installed TensorRT ``version``."""
    import onnx

    return violations(onnx.load(str(path), load_external_data=False), page(release_for_version(version)))


# ---------------------------------------------------------------------------------------------
# comparing eo-edge's rule table with the page


def table_differences(table: dict, p: Page) -> list[str]:
    """Every way ``table`` (an ``operators-<release>.json`` as loaded) differs from page ``p``:
    opset range, each supported operator's types and restricted flag, each unsupported operator,
    and operators only one of them has. Empty: they agree."""
    diffs: list[str] = []
    want_opset = {"min": p.opset_min, "max": p.opset_max}
    if table.get("opset") != want_opset:
        diffs.append(f"opset: table {table.get('opset')}, page {want_opset}")
    ops, unsupported = table.get("operators", {}), set(table.get("unsupported", []))
    for name, row in sorted(p.rows.items()):
        if row.supported:
            if name not in ops:
                diffs.append(f"{name}: page Y, table {'N' if name in unsupported else 'absent'}")
                continue
            have = ops[name].get("types", [])
            if sorted(have) != sorted(row.types):
                diffs.append(f"{name}: types: table {have}, page {list(row.types)}")
            if bool(ops[name].get("restricted")) != bool(row.restrictions):
                diffs.append(f"{name}: restricted: table {bool(ops[name].get('restricted'))}, page "
                             f"{row.restrictions!r}")
        else:
            if name in ops:
                diffs.append(f"{name}: page N, table Y {ops[name].get('types')}")
            elif name not in unsupported:
                diffs.append(f"{name}: page N, table absent")
    for name in sorted((set(ops) | unsupported) - set(p.rows)):
        diffs.append(f"{name}: in the table, not on the page")
    return diffs


def target_differences(target: dict, p: Page) -> list[str]:
    """How one ``targets.json`` target's page-derived fields (cast-downs, limited types, and the
    types allowed in a network) differ from page ``p``. Empty: they agree."""
    diffs = []
    if dict(target.get("cast_down", {})) != p.cast_down:
        diffs.append(f"cast_down: table {target.get('cast_down')}, page {p.cast_down}")
    if set(target.get("limited_types", [])) != set(p.limited_types):
        diffs.append(f"limited_types: table {sorted(target.get('limited_types', []))}, page {sorted(p.limited_types)}")
    net = set(target.get("initializer_types", [])) | set(target.get("limited_types", []))
    want = set((p.data_types | p.limited_types) - p.io_only_types)
    if net != want:
        diffs.append(f"initializer+limited types: table {sorted(net)}, page {sorted(want)}")
    return diffs


__all__ = ["Page", "Rejection", "Row", "onnx_type", "page", "parse_page", "release_for_version", "releases",
           "table_differences", "target_differences", "violations", "violations_for_file"]
