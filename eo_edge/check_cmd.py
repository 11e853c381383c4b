"""``eo-edge check``: the static TensorRT preflight over one or more ONNX files.

Reads the rule table (:mod:`eo_edge.trt_rules`) and prints one line per violation, naming the
node; the caller exits 1 when any file breaks any rule of any requested target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .trt_rules import load_target, target_names
from .trt_rules.check import check_model, load_onnx

SCHEMA = "eo-edge.check/1"


def shipped_tensorrt_files() -> list[Path]:
    """The shipped ``models/*.onnx`` in a form TensorRT runs (FP32, FP16, INT8-s8; the u8 form is
    ONNX Runtime's).

    Raises:
        EOEdgeError: no shipped models found.
    """
    from .bench import default_inputs
    from .errors import EOEdgeError
    from .export import read_metadata
    from .formats import format_of_metadata

    files = [p for p in default_inputs() if format_of_metadata(read_metadata(p)).runs_on("tensorrt")]
    if not files:
        raise EOEdgeError("no shipped models found (give ONNX files to check)")
    return files


def resolve_targets(targets: list[str] | None) -> list[str]:
    """``None``/``["all"]`` -> every target; short forms ``8.6`` are accepted for ``tensorrt-8.6``.

    Raises:
        EOEdgeError: unknown target (before any file is read).
    """
    if not targets or targets == ["all"]:
        return target_names()
    names = [t if t.startswith("tensorrt-") else f"tensorrt-{t}" for t in targets]
    for n in names:
        load_target(n)
    return names


def run_check(paths: list[Path], targets: list[str] | None, *, dla: bool = False,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Check every file against every target.

    Returns:
        ``{"schema", "ok": bool, "results": [{"file", "target", "tensorrt", "jetpack", "dla",
        "n_violations", "violations": [Violation.as_dict()], "notes"}]}``.

    Raises:
        EOEdgeError: unknown target, missing or unreadable file (checked before any output).
    """
    names = resolve_targets(targets)
    models = [(p, load_onnx(p)) for p in paths]  # every file readable before the first verdict
    results = []
    for path, model in models:
        for name in names:
            t = load_target(name)
            v = check_model(model, t, dla=dla)
            for x in v:
                log(f"  {x.line()}")
            where = f"TensorRT {t.tensorrt}" + (f", {t.jetpack}" if t.jetpack else "") + (", DLA" if dla else "")
            log(f"{'FAIL' if v else 'PASS'} {path.name} on {name} ({where}): {len(v)} violation(s)")
            for note in t.notes:
                log(f"  note: {note}")
            results.append({"file": str(path), "target": name, "tensorrt": t.tensorrt, "jetpack": t.jetpack, "dla": dla,
                            "n_violations": len(v), "violations": [x.as_dict() for x in v], "notes": list(t.notes)})
    return {"schema": SCHEMA, "ok": all(r["n_violations"] == 0 for r in results), "results": results}


def verdict_line(path: Path) -> str:
    """``"TensorRT preflight: pass on tensorrt-8.5, ..., fail on ..."`` for ``compile --int8``'s log."""
    model = load_onnx(path)
    counts = {n: len(check_model(model, n)) for n in target_names()}
    ok = [n.split("-")[1] for n, c in counts.items() if c == 0]
    bad = [f"{n.split('-')[1]} ({c})" for n, c in counts.items() if c]
    parts = ([f"passes TensorRT {', '.join(ok)}"] if ok else []) + ([f"fails TensorRT {', '.join(bad)}"] if bad else [])
    return f"TensorRT preflight ({path.name}): " + "; ".join(parts) + " (eo-edge check for details)"
