"""The package layout (docs/architecture.md): layers import only downward, modules stay small,
and every shared rule has one owner that the others import (checked by identity, not by grepping text)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "eo_edge"

# Bottom to top: a module may import its own layer and the layers below it, never one above.
LAYERS = [
    {"errors", "home", "resource", "resources", "schemas", "defaults", "fileio", "assets", "trt_rules", "power", "__init__"},
    {"data", "hostinfo"},
    {"artifact", "metrics"},
    {"models", "backends", "quantize", "gate"},
    {"export", "train", "report", "measure", "scene"},
    {"app"},
    {"cli"},
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def _top(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def _imported_tops(path: Path) -> set[str]:
    """Top-level eo_edge parts a module imports (relative or absolute, lazy imports included)."""
    pkg_parts = list(path.relative_to(ROOT).with_suffix("").parts)[:-1]  # the module's package
    tops = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - (node.level - 1)]
                parts = base + (node.module.split(".") if node.module else [])
            else:
                parts = (node.module or "").split(".")
            if parts[0] != "eo_edge":
                continue
            if len(parts) == 1:  # from eo_edge import x / from .. import x
                tops.update(a.name for a in node.names)
            else:
                tops.add(parts[1])
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "eo_edge" and len(parts) > 1:
                    tops.add(parts[1])
    return tops


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py"))


def test_every_part_has_a_layer():
    parts = {_top(p) for p in _modules()}
    assert parts - set(LAYER_OF) == set(), "add the new part to LAYERS and to docs/architecture.md"


def test_imports_run_only_downward():
    up = []
    for p in _modules():
        me = LAYER_OF[_top(p)]
        for t in _imported_tops(p):
            if t == "__version__":
                continue
            if t in LAYER_OF and LAYER_OF[t] > me:
                up.append(f"{p.relative_to(ROOT)} imports {t} (layer {LAYER_OF[t]} > {me})")
    assert up == []


def test_the_layer_check_can_fail(tmp_path):
    """The downward rule sees a lazy import of the CLI from a library module."""
    bad = PKG / "measure" / "_probe_upward.py"
    bad.write_text("def f():\n    from ..cli import app\n    return app\n")
    try:
        assert "cli" in _imported_tops(bad) and LAYER_OF["cli"] > LAYER_OF["measure"]
    finally:
        bad.unlink()


def test_no_module_over_450_lines():
    big = {str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines())) > 450}
    assert big == {}


def test_cli_holds_no_library_work():
    """cli/ parses and prints; measuring, compiling and data work live in app/ and below: no CLI
    module imports numpy, onnx, onnxruntime or torch, or calls a measuring/compiling function itself."""
    heavy = {"numpy", "onnx", "onnxruntime", "torch", "openvino"}
    hits = []
    for p in (PKG / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                hits += [f"{p.name}: import {a.name}" for a in node.names if a.name.split(".")[0] in heavy]
            elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in heavy:
                hits.append(f"{p.name}: from {node.module}")
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[-1] in (
                    "run", "convert", "probes", "timing", "qdq", "fallback"):
                hits.append(f"{p.name}: from {node.module} import ...")
    assert hits == []


def test_schema_ids_have_one_owner_and_one_spelling():
    from eo_edge import schemas
    from eo_edge.app import compile as compile_app
    from eo_edge.app import faults, preflight, temperature
    from eo_edge.measure import run
    from eo_edge.models import checkpoint
    from eo_edge.report import schema

    assert run.SCHEMA is schema.SCHEMA is schemas.BENCH
    assert (temperature.SCHEMA, faults.SCHEMA, preflight.SCHEMA) == (schemas.CALIBRATE, schemas.FAULTS, schemas.CHECK)
    assert checkpoint.FORMAT is schemas.CHECKPOINT
    assert compile_app.schemas is schemas
    ids = [v for k, v in vars(schemas).items() if k.isupper() and isinstance(v, str)]
    assert all(i.startswith("eo-edge-") and "/" in i for i in ids), ids
    # the old spellings are still read
    assert schemas.accepts(schemas.FAULTS, "eo-edge.faults/1") and not schemas.accepts(schemas.FAULTS, "eo-edge.check/1")
    assert schema.MAX_SAMPLES is schemas.MAX_SAMPLES and schema.cap_samples is schemas.cap_samples
    # no other module assigns a schema-id literal
    owners = []
    for p in _modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    node.value.startswith(("eo-edge-", "eo-edge.")) and node.value.endswith("/1"):
                owners.append(str(p.relative_to(PKG)))
    assert sorted(set(owners)) == ["schemas.py"]


def test_defaults_have_one_home():
    """The CLI shows the defaults table's values; the library falls back on the same objects."""
    import typer.main

    from eo_edge import defaults
    from eo_edge.app.compile import CompileOptions
    from eo_edge.cli import app
    from eo_edge.data.split import calibration_indices
    from eo_edge.defaults import MAX_DROP_PTS
    from eo_edge.measure.run import BenchOptions

    cmd = typer.main.get_command(app)
    params = {name: {p.name: p.default for p in c.params} for name, c in cmd.commands.items()}
    assert params["compile"]["calib_size"] == CompileOptions().calib_size == defaults.CALIB_SIZE
    assert calibration_indices.__defaults__[0] == defaults.CALIB_SIZE
    assert params["bench"]["max_drop"] == BenchOptions().max_drop == MAX_DROP_PTS == defaults.MAX_DROP_PTS
    # bench: None = not given (the config file or the table decides)
    assert all(params["bench"][k] is None for k in ("precisions", "backend", "runs", "warmup", "rounds", "batch"))


@pytest.mark.parametrize("px,ok", [(7, False), (8, True), (64, True), (1024, True), (1025, False)])
def test_image_size_bounds_are_one_rule(px, ok):
    from eo_edge.defaults import check_image_size
    from eo_edge.errors import EOEdgeError

    if ok:
        assert check_image_size(px) == px
    else:
        with pytest.raises(EOEdgeError, match="between 8 and 1024"):
            check_image_size(px)


def test_gate_pass_rule_has_one_home():
    """compile, bench and the fallback search all decide with eo_edge.gate.passes."""
    from eo_edge.gate import gate_record, passes

    c = {"top1": 96.0, "reference_top1": 96.5, "drop": 0.5, "drop_se": 0.1, "top1_agreement": 99.0,
         "max_abs_diff": 0.2, "n_images": 1000}
    assert passes(0.5, 0.5) and not passes(0.51, 0.5) and passes(9.0, None)
    rec = gate_record(c, 0.5, parent="p")
    assert rec["passed"] is True and rec["parent"] == "p" and rec["max_drop"] == 0.5
    assert gate_record({**c, "drop": 0.6}, 0.5)["passed"] is False
    for p in _modules():
        src = p.read_text()
        if p.name != "gate.py":
            assert "drop <= max_drop" not in src and '["drop"] <= ' not in src, p


def test_graph_io_names_and_file_names_have_one_home():
    from eo_edge.artifact import forms, onnx_meta
    from eo_edge.backends import trt_runner, trt_sidecar
    from eo_edge.backends import tensorrt as trt_backend

    assert trt_runner.INPUT_NAME is trt_backend.INPUT_NAME is onnx_meta.INPUT_NAME == "input"
    assert onnx_meta.OUTPUT_NAME == "logits"
    assert trt_sidecar.sidecar_path is forms.sidecar_path
    assert forms.sidecar_path(Path("a/m.int8-minmax.onnx")) == Path("a/m.int8-minmax.onnx.json")
    assert forms.engine_path(Path("a/m.fp16.onnx")) == Path("a/m.fp16.engine")
    assert forms.engine_path(Path("a/m.onnx"), Path("e"), "0123456789abcdef") == Path("e/m.0123456789ab.engine")
    for p in _modules():
        if p.parent.name == "artifact":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in ("INPUT_NAME", "OUTPUT_NAME")
                                                    for t in node.targets):
                pytest.fail(f"{p.relative_to(ROOT)} defines its own graph I/O name")


def test_onnx_read_errors_have_one_wording(tmp_path):
    from eo_edge.fileio import load_onnx
    from eo_edge.artifact.onnx_meta import open_artifact, read_metadata
    from eo_edge.errors import EOEdgeError
    from eo_edge.measure.flops import count_macs

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all" * 10)
    for fn in (load_onnx, read_metadata, open_artifact, count_macs):
        with pytest.raises(EOEdgeError, match=r"cannot read ONNX file .*bad\.onnx"):
            fn(bad)


def test_open_artifact_reads_a_shipped_file_once():
    from eo_edge.artifact.onnx_meta import open_artifact
    from eo_edge.fileio import sha256_file

    p = ROOT / "models" / "resnet8_kd_eurosat64.int8-minmax.onnx"
    a = open_artifact(p)
    assert a.config.arch == "resnet8" and a.form.precision == "int8" and a.sha256 == sha256_file(p)
    assert a.proto.graph.input[0].name == "input"


def test_eurosat_sha256_has_one_home():
    import importlib

    from eo_edge.data import dataset, download

    prepare = importlib.import_module("eo_edge.data.prepare")  # the module (eo_edge.data.prepare is also a function)
    assert prepare.KNOWN_SHA256["EuroSAT.zip"] is download.EUROSAT_SHA256 is dataset.EUROSAT_SHA256


def test_precision_backend_and_activation_lists_have_one_home():
    """Every module that names the precision/backend/activation lists holds the very objects of
    eo_edge.artifact.forms, and no other module writes such a list as a literal (AST, any spelling)."""
    import importlib

    from eo_edge.artifact import forms

    owners = {"PRECISIONS": forms.PRECISIONS, "BACKENDS": forms.BACKENDS, "ACTIVATIONS": forms.ACTIVATIONS}
    sets = [set(forms.PRECISIONS), set(forms.BACKENDS) - {"openvino"}]
    wrong, literals = [], []
    for p in _modules():
        rel = p.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        if name.endswith("__main__"):
            continue
        mod = importlib.import_module(name)
        wrong += [f"{name}.{k}" for k, v in owners.items() if k in vars(mod) and vars(mod)[k] is not v]
        if p == PKG / "artifact" / "forms.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                vals = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                if any(s <= vals for s in sets):
                    literals.append(f"{rel}:{node.lineno}")
    assert wrong == [] and literals == []


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_every_runner_checks_its_input_against_the_artifact_config(backend):
    """Runner.infer is a template: the input is checked against the artifact's config before the
    backend runs, so no backend silently accepts images of another size or band count."""
    import numpy as np

    from eo_edge.backends import get_backend
    from eo_edge.errors import EOEdgeError

    be = get_backend(backend)
    if not be.available()[0]:
        pytest.skip(f"{backend} not installed")
    r = be.load(ROOT / "models" / "resnet8_kd_eurosat64.onnx", threads=1)
    assert r.input_chw == (3, 64, 64)
    assert r.infer(np.zeros((2, 3, 64, 64), np.float64)).shape == (2, 10)  # cast to float32, run
    for bad in [(2, 3, 32, 32), (2, 4, 64, 64), (3, 64, 64)]:
        with pytest.raises(EOEdgeError, match=r"input must have shape \(N, 3, 64, 64\)"):
            r.infer(np.zeros(bad, np.float32))
