"""The TensorRT double's rejections come from upstream text, not from eo-edge's rule table (issue 30).

``tests/trt_reference.py`` parses onnx-tensorrt's ``docs/operators.md`` (vendored per release
under ``tests/data/onnx-tensorrt/``) and implements the documented Q/DQ rules without importing
``eo_edge``; ``tests/fake_trt.py``'s parser rejects what it rejects. Here:

* every row of ``eo_edge/trt_rules/operators-<release>.json`` (and the page-derived fields of
  ``targets.json``) agrees with the vendored page, so a wrong row of the table fails;
* the double and ``eo_edge.trt_rules.check`` agree (accept / reject) on the shipped ONNX files and
  on small graphs TensorRT rejects;
* the comparison is not circular: a corrupted table row is reported, and a corrupted table changes
  ``check`` but not the double.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from importlib import resources

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import trt_reference as ref
from conftest import ROOT
from eo_edge.trt_rules import load_target, target_for_version, target_names
from eo_edge.trt_rules.check import check_model

SHIPPED = sorted((ROOT / "models").glob("*.onnx"))
# one installed version per rule-table target (10.3 has no page of its own: 10.1's applies)
VERSIONS = ("8.5.2.2", "8.6.2.3", "10.0.1", "10.1.0", "10.3.0")
RELEASES = ("8.5", "8.6", "10.0", "10.1")

# Differences between the rule table and the vendored pages that are known and reported, not
# fixed here (eo_edge/ is not this test's to edit). Remove an entry once the table is fixed; the
# test fails if an entry no longer occurs, so a fix cannot go unnoticed.
KNOWN_TABLE_DIFFERENCES: dict[str, list[str]] = {}  # none: 10.0 Split's missing comma is handled by scripts/make_trt_rules.py


def _table(release: str) -> dict:
    return json.loads(resources.files("eo_edge.trt_rules").joinpath(f"operators-{release}.json").read_text())


def _targets() -> dict:
    return json.loads(resources.files("eo_edge.trt_rules").joinpath("targets.json").read_text())["targets"]


# -- the vendored pages -----------------------------------------------------------------------


def _sources() -> dict[str, dict[str, str]]:
    """SOURCES.md's table: file -> {branch, tip, file_commit, blob}."""
    out = {}
    for ln in (ref.DATA / "SOURCES.md").read_text().splitlines():
        m = re.match(r"\| (operators-[\d.]+\.md) \| (\S+) \| ([0-9a-f]{40}) \(.*?\) \| ([0-9a-f]{40}) \(.*?\) \| "
                     r"([0-9a-f]{40}) \|$", ln)
        if m:
            out[m.group(1)] = dict(zip(("branch", "tip", "file_commit", "blob"), m.groups()[1:]))
    return out


def test_vendored_pages_are_the_cited_upstream_files():
    assert ref.releases() == list(RELEASES)
    src = _sources()
    assert sorted(src) == sorted(f"operators-{r}.md" for r in RELEASES)
    lic = (ref.DATA / "LICENSE").read_text()
    assert "Apache License" in lic and "Version 2.0, January 2004" in lic
    for r in RELEASES:
        path = ref.DATA / f"operators-{r}.md"
        data = path.read_bytes()
        assert data.startswith(b"<!--- SPDX-License-Identifier: Apache-2.0 -->")
        # byte for byte the upstream blob SOURCES.md names (git's object id of the file)
        assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == src[path.name]["blob"], path.name
        # ...and the branch / commit the rule table says it was generated from
        table_src = _table(r)["source"]
        m = re.search(r"on branch (\S+) \(commit ([0-9a-f]+),", table_src)
        assert m, table_src
        assert m.group(1) == src[path.name]["branch"] and src[path.name]["file_commit"].startswith(m.group(2))


def test_parser_reads_the_markdown_itself():
    text = ("TensorRT 9.9 supports operators in the inclusive range of opset 9 to opset 21.\n"
            "TensorRT supports the following ONNX data types: FLOAT32, FLOAT16, and BOOL\n"
            "> Note: There is limited support for DOUBLE type. TensorRT will attempt to cast DOUBLE down to FLOAT.\n"
            "| Operator | Supported | Supported Types | Restrictions |\n|---|---|---|---|\n"
            "| Foo | Y | FP32, FP16 INT32, , BOOL | must be 2D |\n| Bar | N |\n| Baz | Y | FP32 |\n\nafter\n| Qux | N |\n")
    p = ref.parse_page(text, "9.9")
    assert (p.opset_min, p.opset_max, p.cast_down) == (9, 21, {"DOUBLE": "FP32"})
    assert p.data_types == {"FP32", "FP16", "BOOL"} and p.limited_types == {"DOUBLE"}
    assert p.rows == {"Foo": ref.Row("Foo", True, ("FP32", "FP16", "INT32", "BOOL"), "must be 2D"),
                      "Bar": ref.Row("Bar", False, (), ""), "Baz": ref.Row("Baz", True, ("FP32",), "")}
    with pytest.raises(ValueError, match="Supported = 'maybe'"):
        ref.parse_page(text.replace("| Bar | N |", "| Bar | maybe |"), "9.9")
    with pytest.raises(ValueError, match="no opset sentence"):
        ref.parse_page(text.replace("opset 9 to opset 21", "some opsets"), "9.9")
    # the real pages: the counts and a few rows read by eye
    p85, p101 = ref.page("8.5"), ref.page("10.1")
    assert (p85.opset_min, p85.opset_max, p101.opset_min, p101.opset_max) == (None, 17, 9, 20)
    assert p85.cast_down == {"INT64": "INT32", "DOUBLE": "FP32"} and p101.io_only_types == {"UINT8"}
    assert p101.quantized_types == {"INT8", "INT4", "FP8"}
    assert p85.rows["DequantizeLinear"] == ref.Row("DequantizeLinear", True, ("INT8",), "`x_zero_point` must be zero")
    assert p101.rows["Conv"].types == ("FP32", "FP16", "BF16") and not p85.rows["Det"].supported
    assert [len(ref.page(r).rows) for r in RELEASES] == [180, 181, 195, 196]
    assert ref.release_for_version("10.3.0") == "10.1" and ref.release_for_version("8.6.2.3") == "8.6"
    with pytest.raises(ValueError, match="no onnx-tensorrt operators.md"):
        ref.release_for_version("8.4.1")


# -- (a) every row of the rule table agrees with the page ------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_every_rule_table_row_matches_upstream_operators_md(release):
    diffs = ref.table_differences(_table(release), ref.page(release))
    known = KNOWN_TABLE_DIFFERENCES.get(release, [])
    assert [d for d in diffs if d not in known] == [], f"operators-{release}.json differs from operators.md"
    assert [k for k in known if k not in diffs] == [], "a known difference is gone: drop it from KNOWN_TABLE_DIFFERENCES"


def test_every_target_matches_its_page():
    for name, t in _targets().items():
        release = re.fullmatch(r"operators-([\d.]+)\.json", t["operators"]).group(1)
        assert ref.target_differences(t, ref.page(release)) == [], name
        assert release == ref.release_for_version(t["tensorrt"]), name  # the page the double uses


# -- (b) the double and check agree ----------------------------------------------------------


def _model(nodes, inits, opset=17, x_type=TensorProto.FLOAT, x_shape=("N", 4), extra_inputs=(), domains=(),
           y_type=TensorProto.FLOAT):
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", x_type, list(x_shape)), *extra_inputs],
                          [helper.make_tensor_value_info("y", y_type, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)] +
                             [helper.make_opsetid(d, 1) for d in domains])


def _qdq(scale=0.1, zp=0, zp_dtype=np.int8, scale_dtype=np.float32, axis=None, **kw):
    inits = [numpy_helper.from_array(np.asarray(scale, scale_dtype), "s"),
             numpy_helper.from_array(np.asarray(zp, zp_dtype), "z")]
    a = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q", **a),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq", **a)]
    return _model(nodes, inits, **kw)


def _conv_qdq(w_axis: int):
    """Per-tensor input Q/DQ, per-channel weight Q/DQ (axis ``w_axis``), Conv."""
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"), numpy_helper.from_array(np.array(0, np.int8), "z"),
             numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w"),
             numpy_helper.from_array(np.full(2, 0.1, np.float32), "ws"), numpy_helper.from_array(np.zeros(2, np.int8), "wz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["xdq"], name="dq"),
             helper.make_node("QuantizeLinear", ["w", "ws", "wz"], ["wq"], name="wq", axis=w_axis),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wdq"], name="wdq", axis=w_axis),
             helper.make_node("Conv", ["xdq", "wdq"], ["y"], name="conv")]
    return _model(nodes, inits, x_shape=("N", 2, 2, 2))


def _one(op, x_type=TensorProto.FLOAT, opset=17, domain=""):
    return _model([helper.make_node(op, ["x"], ["y"], name="n", domain=domain)], [], opset=opset, x_type=x_type,
                  y_type=x_type, domains=(domain,) if domain else ())


def _int32_bias_dq():
    """ONNX Runtime's default: a bias stored INT32 and dequantized (TensorRT's DQ reads INT8 only)."""
    inits = [numpy_helper.from_array(np.arange(4, dtype=np.int32), "b"),
             numpy_helper.from_array(np.array(0.01, np.float32), "bs"), numpy_helper.from_array(np.array(0, np.int32), "bz")]
    nodes = [helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["bf"], name="bias_DequantizeLinear"),
             helper.make_node("Add", ["x", "bf"], ["y"], name="add")]
    return _model(nodes, inits)


def _scale_input():
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq")]
    return _model(nodes, [numpy_helper.from_array(np.array(0, np.int8), "z")],
                  extra_inputs=[helper.make_tensor_value_info("s", TensorProto.FLOAT, [])])


# name -> (model, the versions where TensorRT rejects it; the rest accept)
GRAPHS = {
    "symmetric per-tensor int8 Q/DQ": (_qdq(), ()),
    "per-channel Conv weight on axis 0": (_conv_qdq(0), ()),
    "per-channel Conv weight on axis 1": (_conv_qdq(1), VERSIONS),
    "unsupported op (Det: N)": (_one("Det"), VERSIONS),
    "op not in the matrix": (_one("NoSuchOp"), VERSIONS),
    "unsupported type (Abs of INT8)": (_one("Abs", TensorProto.INT8), VERSIONS),
    "non-constant Q/DQ scale": (_scale_input(), VERSIONS),
    "FP16 Q/DQ scale": (_qdq(scale_dtype=np.float16), VERSIONS[:2]),
    "rank-2 Q/DQ scale": (_qdq(scale=[[0.1]], zp=[[0]]), VERSIONS),
    "non-zero zero point": (_qdq(zp=3), VERSIONS),
    "uint8 zero point": (_qdq(zp_dtype=np.uint8), VERSIONS),
    "per-channel scale on an activation": (_qdq(scale=[0.1] * 4, zp=[0] * 4, axis=1), VERSIONS),
    "INT32 bias DequantizeLinear": (_int32_bias_dq(), VERSIONS),
    "opset 18": (_one("Relu", opset=18), VERSIONS[:2]),
    "opset 21": (_one("Relu", opset=21), VERSIONS),
    "opset 8": (_one("Relu", opset=8), VERSIONS[2:]),
    "contrib-domain op": (_one("Gelu", domain="com.microsoft"), VERSIONS),
}


def _disagreements(models, versions=VERSIONS, target_of=load_target) -> list[str]:
    """(model, version) pairs where the double and ``check_model`` differ on accept/reject.
    ``target_of``: target name -> the :class:`Target` check uses (a stand-in table in the
    non-circularity test)."""
    out = []
    for label, model in models:
        for v in versions:
            fake = ref.violations(model, ref.page(ref.release_for_version(v)))
            table = check_model(model, target_of(target_for_version(v)))
            if bool(fake) != bool(table):
                out.append(f"{label} on TensorRT {v}: double {'rejects' if fake else 'accepts'} "
                           f"({fake[0].line() if fake else ''}), check {'rejects' if table else 'accepts'} "
                           f"({table[0].line() if table else ''})")
    return out


@pytest.fixture(scope="module")
def shipped():
    return [(p.name, onnx.load(str(p), load_external_data=False)) for p in SHIPPED]


def test_double_and_check_agree_on_the_shipped_files(shipped):
    assert {n.split(".", 1)[1] for n, _ in shipped} >= {"onnx", "fp16.onnx", "int8-minmax.onnx", "int8-minmax-u8.onnx"}
    assert _disagreements(shipped) == []
    for name, model in shipped:  # the TensorRT forms pass; ONNX Runtime's u8 form does not
        fake = ref.violations(model, ref.page("8.6"))
        assert bool(fake) == name.endswith("-u8.onnx"), (name, [x.line() for x in fake[:2]])


def test_double_and_check_agree_on_graphs_tensorrt_rejects():
    for label, (model, rejected_on) in GRAPHS.items():
        for v in VERSIONS:
            fake = ref.violations(model, ref.page(ref.release_for_version(v)))
            assert bool(fake) == (v in rejected_on), (label, v, [x.line() for x in fake])
    assert _disagreements([(k, m) for k, (m, _) in GRAPHS.items()]) == []
    # the double's messages say what and where
    err = ref.violations(_int32_bias_dq(), ref.page("8.6"))[0].line()
    assert err.startswith("node 'bias_DequantizeLinear' (DequantizeLinear): input 'b' is INT32; the matrix lists INT8")
    assert "[type; onnx-tensorrt operators.md 8.6]" in err


def test_fake_parser_rejects_from_the_reference(tmp_path):
    from fake_trt import fake_tensorrt

    bad = tmp_path / "bad.onnx"
    onnx.save(_int32_bias_dq(), str(bad))
    for v in VERSIONS:
        trt = fake_tensorrt(v)
        parser = trt.OnnxParser(trt.Builder(trt.ILogger()).create_network(0), trt.ILogger())
        assert not parser.parse_from_file(str(bad))
        assert parser.get_error(0) == ref.violations_for_file(bad, v)[0].line()
        assert f"operators.md {ref.release_for_version(v)}" in parser.get_error(0)


# -- (c) not circular -------------------------------------------------------------------------


def test_a_wrong_table_row_is_detected():
    good = _table("10.1")
    assert ref.table_differences(good, ref.page("10.1")) == []
    conv_n = copy.deepcopy(good)  # Conv (every shipped model uses it) marked unsupported
    del conv_n["operators"]["Conv"]
    conv_n["unsupported"].append("Conv")
    assert ref.table_differences(conv_n, ref.page("10.1")) == ["Conv: page Y, table N"]
    no_fp16 = copy.deepcopy(good)  # a type dropped
    no_fp16["operators"]["Relu"]["types"].remove("FP16")
    assert ref.table_differences(no_fp16, ref.page("10.1")) == [
        "Relu: types: table ['FP32', 'BF16', 'INT32', 'INT64'], page ['FP32', 'FP16', 'BF16', 'INT32', 'INT64']"]
    det_y = copy.deepcopy(good)  # an N operator made supported, a restriction lost, the opset moved
    det_y["unsupported"].remove("Det")
    det_y["operators"]["Det"] = {"types": ["FP32"], "restricted": False}
    det_y["operators"]["CumSum"]["restricted"] = False
    det_y["opset"]["max"] = 21
    diffs = ref.table_differences(det_y, ref.page("10.1"))
    assert len(diffs) == 3 and diffs[0].startswith("opset") and any(d.startswith("Det: page N") for d in diffs)
    assert any(d.startswith("CumSum: restricted") for d in diffs)
    t = copy.deepcopy(_targets()["tensorrt-8.6"])  # a target-level field
    t["cast_down"].pop("INT64")
    assert ref.target_differences(t, ref.page("8.6"))


def test_a_wrong_table_changes_check_not_the_double(shipped):
    """With Conv dropped from the table, check rejects every shipped model; the double, reading
    upstream's page, still accepts them, so the agreement test reports the wrong row."""
    def conv_dropped(name):
        t = load_target(name)
        return dataclasses.replace(t, operators={k: v for k, v in t.operators.items() if k != "Conv"})

    models = [(n, m) for n, m in shipped if n == "resnet8_eurosat64.int8-minmax.onnx"]
    assert _disagreements(models, ("8.6.2.3", "10.3.0")) == []
    found = _disagreements(models, ("8.6.2.3", "10.3.0"), target_of=conv_dropped)
    assert len(found) == 2 and all("double accepts" in f and "(Conv): Conv is not in the support matrix" in f
                                   for f in found), found
    # and a wrong type list (Relu without FP32) on an FP32 model
    def relu_fp16_only(name):
        t = load_target(name)
        return dataclasses.replace(t, operators={**t.operators, "Relu": ["FP16"]})

    fp32 = [(n, m) for n, m in shipped if n == "resnet8_eurosat64.onnx"]
    assert _disagreements(fp32, ("8.5.2.2",), target_of=relu_fp16_only) != []


def test_the_double_does_not_read_the_rule_table(tmp_path):
    """The fake parser works with ``eo_edge.trt_rules`` unimportable."""
    code = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "sys.modules['eo_edge.trt_rules'] = None; sys.modules['eo_edge.trt_rules.check'] = None\n"
        "import fake_trt\n"
        "trt = fake_trt.fake_tensorrt('8.6.2.3')\n"
        "def parse(p):\n"
        "    parser = trt.OnnxParser(trt.Builder(trt.ILogger()).create_network(0), trt.ILogger())\n"
        "    return parser.parse_from_file(p), parser.errors[:1]\n"
        "print(parse('models/resnet8_eurosat64.int8-minmax.onnx'), parse('models/resnet8_eurosat64.int8-minmax-u8.onnx'))\n"
        "assert 'eo_edge.trt_rules' not in [m for m, v in sys.modules.items() if v is not None]\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.startswith("(True, []) (False, [\"initializer 'input_zero_point': UINT8"), p.stdout


# -- what the double and check knowingly read differently ---------------------------------------


def test_known_divergences_between_double_and_check():
    """Where the double follows the page and check does not, pinned so a change on either side is
    seen (drop an entry when check is changed to agree)."""
    split64 = _model([helper.make_node("Split", ["x"], ["y", "y2"], name="split", axis=1, num_outputs=2)], [],
                     opset=18, x_type=TensorProto.INT64, y_type=TensorProto.INT64)
    int64_in = _one("Abs", TensorProto.INT64)  # INT64 input: 8.x's page says it is cast down to INT32
    unsorted = _qdq()
    unsorted.graph.node.reverse()  # the importer sorts the graph; check requires sorted nodes
    cases = [  # (graph, version, double rejects, check rejects)
        (split64, "10.0.1", False, False),  # agreed since make_trt_rules.py splits 10.0's "INT64 BOOL"
        (split64, "10.1.0", False, False),
        (int64_in, "8.6.2.3", False, True),  # targets.json io_types on 8.x omit INT64 (page: cast down)
        (unsorted, "10.3.0", False, True),  # check's toposort rule (ONNX IR) vs the importer's sort
    ]
    for model, v, fake_rejects, check_rejects in cases:
        fake = ref.violations(model, ref.page(ref.release_for_version(v)))
        table = check_model(model, target_for_version(v))
        assert (bool(fake), bool(table)) == (fake_rejects, check_rejects), (v, [x.line() for x in fake + table])
    assert target_names()[-1] == "tensorrt-10.3"
