"""One rule, one place: the format table, the comparator, the fallback search, the layering."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, run_cli
from eo_edge.errors import EOEdgeError

PKG = ROOT / "eo_edge"


def test_format_table_names_and_backend_rules(tmp_path):
    from eo_edge.artifact.forms import (FORMATS, PRECISIONS, artifact_path, format_of_metadata, get_format,
                                        int8_activations)

    assert {f.precision for f in FORMATS} == set(PRECISIONS)
    m = tmp_path / "resnet8.onnx"
    assert artifact_path(m, get_format("fp16")).name == "resnet8.fp16.onnx"
    assert artifact_path(m, get_format("int8", "s8"), "entropy").name == "resnet8.int8-entropy.onnx"
    assert artifact_path(m, get_format("int8", "u8")).name == "resnet8.int8-minmax-u8.onnx"
    assert artifact_path(tmp_path / "r.fp32.onnx", get_format("fp16")).name == "r.fp16.onnx"
    assert int8_activations("onnxruntime") == "u8" and int8_activations("tensorrt") == "s8"
    with pytest.raises(EOEdgeError, match="TensorRT needs symmetric int8 activations"):
        int8_activations("tensorrt", "u8")
    with pytest.raises(EOEdgeError, match="unknown precision 'int4'"):
        get_format("int4")
    assert format_of_metadata({}).tag == "fp32"
    assert format_of_metadata({"precision": "int8", "int8_activations": "u8"}).tag == "int8-u8"
    assert not get_format("int8", "u8").runs_on("tensorrt") and get_format("int8", "s8").runs_on("tensorrt")


def test_bench_config_with_unknown_precision_fails_before_any_work(tmp_path):
    """A config naming precision 'int4' used to build an INT8 file named .int4.onnx, bench it, then fail."""
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"models": [str(ROOT / "models" / "resnet8_eurosat64.onnx")], "precisions": ["fp32", "int4"]}))
    home = tmp_path / "home"
    p = run_cli("bench", "--config", str(cfg), "--out", str(tmp_path / "out"), "--home", str(home), "-q")
    assert_one_line_error(p, "unknown precision 'int4' in bench config cfg.json")
    assert not list(home.rglob("*.onnx")) and not (tmp_path / "out" / "bench.json").exists()


def test_compare_logits_values():
    from eo_edge.metrics.logits import compare_logits

    ref = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]])
    new = np.array([[1.5, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    c = compare_logits(ref, new, np.array([0, 1, 1, 1]))
    assert c["max_abs_diff"] == 1.0 and c["top1_agreement"] == 75.0 and c["n_images"] == 4
    assert c["reference_top1"] == 75.0 and c["top1"] == 50.0 and c["drop"] == 25.0
    # paired differences (0, 1, 0, 0): SE = 100 * std(ddof=1) / sqrt(4) = 25
    assert c["drop_se"] == pytest.approx(25.0)
    with pytest.raises(ValueError):
        compare_logits(ref, new[:3])


@pytest.mark.parametrize("drops,limit,expect,tried", [
    ({1: 2.0, 2: 1.0, 4: 0.2, 3: 0.4}, 0.5, 3, {1, 2, 3, 4}),         # doubling to 4, bisection finds 3
    ({1: 0.1}, 0.5, 1, {1}),                                           # first try passes
    ({1: 2.0, 2: 1.5, 4: 1.2, 5: 1.1}, 0.5, 5, {1, 2, 4, 5}),          # none passes: smallest drop
    ({1: 2.0, 2: 0.6, 4: 0.4, 3: 0.7}, 0.5, 4, {1, 2, 3, 4}),          # not monotonic: 3 fails, keep 4
])
def test_fallback_search(drops, limit, expect, tried):
    from eo_edge.quantize.fallback import fallback_search

    calls = []

    def attempt(k):
        calls.append(k)
        return drops[k]

    from eo_edge.gate import passes

    k, seen = fallback_search(max(drops), lambda d: passes(d, limit), attempt)
    assert k == expect and set(seen) == tried and len(calls) == len(set(calls))


def _imports(path: Path) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mods.add(("." * node.level) + (node.module or ""))
        elif isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
    return mods


def test_assets_are_found_in_one_place(tmp_path, monkeypatch):
    from eo_edge import assets

    assert (assets.asset_path(assets.CALIBRATION) / "Forest_593.jpg").is_file()
    monkeypatch.setenv(assets.ASSETS_ENV, str(tmp_path))
    (tmp_path / "models").mkdir()
    assert assets.asset_path(assets.MODELS) == tmp_path / "models"  # the override wins
    assert assets.asset_path(assets.CALIBRATION) != tmp_path / "calibration"  # falls through to the checkout
    with pytest.raises(EOEdgeError, match="EO_EDGE_ASSETS"):
        assets.require_asset("no/such/asset", "thing")


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_compile_output_equal_to_input_is_refused(tmp_path):
    import shutil

    m = tmp_path / "m.onnx"
    shutil.copy(ROOT / "models" / "resnet8_eurosat64.onnx", m)
    before = _sha(m)
    (tmp_path / "link.onnx").symlink_to(m)
    for out in (m, tmp_path / "link.onnx"):
        p = run_cli("compile", str(m), "--fp16", "-o", str(out), "-q")
        assert_one_line_error(p, "is the input")
    p = run_cli("compile", str(m), "--fp16", "--json", str(m), "-q")
    assert_one_line_error(p, "is the input")
    assert _sha(m) == before


@pytest.mark.parametrize("bad", ["nan", "inf", "-0.5"])
def test_compile_refuses_meaningless_max_drop(tmp_path, bad):
    p = run_cli("compile", str(ROOT / "models" / "resnet8_eurosat64.onnx"), "--int8", f"--max-drop={bad}", "-q")
    assert_one_line_error(p, "--max-drop must be a finite number")


@pytest.mark.slow
def test_failed_gate_leaves_the_previous_artifact(prepared, tmp_path):
    """A failed gate used to replace the good file with the rejected artifact and its sidecar."""
    import shutil

    m = tmp_path / "r8.onnx"
    shutil.copy(ROOT / "models" / "resnet8_eurosat64.onnx", m)
    good = tmp_path / "r8.int8-minmax.onnx"
    shutil.copy(ROOT / "models" / "resnet8_eurosat64.int8-minmax.onnx", good)
    (tmp_path / "r8.int8-minmax.onnx.json").write_text("{}\n")
    before = {p.name: _sha(p) for p in tmp_path.iterdir()}
    # plain MinMax s8 drops about 0.3 pts on validation: a gate of 0 fails it
    p = run_cli("compile", str(m), "--int8", "--activations", "s8", "--max-drop", "0", "-q")
    assert_one_line_error(p, "accuracy gate failed", "left as it was")
    assert {p.name: _sha(p) for p in tmp_path.iterdir()} == before  # nothing changed, no temporary left


def test_readme_layout_names_every_module():
    """README's layout section matches the tree: every module of the package is named there."""
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("## Credits")]
    missing = [str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
               if p.name != "__init__.py" and p.name not in layout]
    assert missing == []
    assert "distill_train" not in readme
