"""``eo-edge check``: the static TensorRT preflight over one or more ONNX files.

Reads the rule table (:mod:`eo_edge.trt_rules`) and prints one line per violation, naming the
node; the caller exits 1 when any file breaks any rule of any requested target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..fileio import load_onnx
from ..schemas import CHECK as SCHEMA
from ..trt_rules import load_target, target_names
from ..trt_rules.check import check_model


def shipped_tensorrt_files() -> list[Path]:
    """The shipped ``models/*.onnx`` in a form TensorRT runs (FP32, FP16, INT8-s8; the u8 form is
    ONNX Runtime's).

    Raises:
        EOEdgeError: no shipped models found.
    """
    from ..artifact.forms import format_of_metadata
    from ..artifact.onnx_meta import read_metadata
    from ..assets import default_inputs
    from ..errors import EOEdgeError

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


def run_openvino_check(paths: list[Path], *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Check that OpenVINO's CPU plugin compiles and runs each file as eo-edge runs it
    (``INFERENCE_PRECISION_HINT=f32``, :class:`eo_edge.backends.openvino.OpenVINORunner`): one
    inference on a zero batch of the file's input shape, output checked finite. Unlike the
    TensorRT preflight this is not static: OpenVINO is installable here, so the real compiler
    answers (it refused the MobileViTV2 INT8-s8 file under its bf16 default: "No suitable
    implementations").

    Returns:
        ``{"schema", "ok", "results": [{"file", "backend", "openvino", "ok", "error"}]}``.

    Raises:
        EOEdgeError: OpenVINO not installed, or a file missing/unreadable (before any verdict).
    """
    import numpy as np

    from ..backends import get_backend
    from ..errors import EOEdgeError

    be = get_backend("openvino")
    ok, ver = be.available()
    if not ok:
        raise EOEdgeError(ver)
    for p in paths:
        load_onnx(p)  # every file readable before the first verdict
    results = []
    for p in paths:
        err = None
        try:
            with be.load(p, threads=1) as r:
                shape = [d if isinstance(d, int) and d > 0 else 1 for d in _input_shape(p)]
                y = r.infer(np.zeros(shape, np.float32))
                if not np.isfinite(y).all():
                    err = "non-finite output on a zero input"
        except Exception as e:  # noqa: BLE001 - OpenVINO raises RuntimeError/its own types: that is the verdict
            err = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        log(f"{'FAIL' if err else 'PASS'} {p.name} on {ver} (CPU, f32 hint)" + (f": {err}" if err else ""))
        results.append({"file": str(p), "backend": "openvino", "openvino": ver, "ok": err is None, "error": err})
    return {"schema": SCHEMA, "ok": all(r["ok"] for r in results), "results": results}


def _input_shape(path: Path) -> list:
    """Dims of the graph's one image input (ints; 0/-1 for symbolic)."""
    from ..artifact.onnx_meta import proto_io

    ins, _ = proto_io(load_onnx(path))
    return ins[0][1] if ins else [1, 3, 64, 64]
