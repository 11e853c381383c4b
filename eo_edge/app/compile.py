"""``eo-edge compile``: validate, make each precision artifact, gate it, then publish it.

An artifact reaches its final name only after every check passed: it is written to a
temporary file beside the destination, gated (and, with ``auto_fallback``, searched), and
renamed together with its ``.json`` sidecar. A failed gate, a crash or Ctrl-C leaves the
previous file (if any) untouched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import schemas
from ..artifact.forms import engine_path, sidecar_path
from ..defaults import CALIB_SIZE, MAX_DROP_PTS, check_max_drop
from ..errors import EOEdgeError
from ..fileio import check_not_input, check_out_dir, sha256_file, staged, write_json
from ..gate import passes
from ..hostinfo import tool_versions
from ..trt_rules.check import verdict_line


@dataclass
class CompileOptions:
    """Options of ``eo-edge compile`` (see its ``--help``; sizes in MB, drops in top-1 points)."""

    fp16: bool = False
    int8: bool = False
    calib: Path | None = None
    calib_size: int = CALIB_SIZE
    method: str = "minmax"
    activations: str = "auto"
    quantize_ops: str = "all"
    fallback_rank: str = "output"
    backend: str = "onnxruntime"
    eval_data: Path | None = None
    max_drop: float | None = None
    auto_fallback: bool = False
    output: Path | None = None
    workspace_mb: int = 1024
    dla_core: int | None = None
    timing_cache: Path | None = None
    batch_profile: str = "1,1,32"
    home: Path | None = None


def validate(model: Path, o: CompileOptions) -> tuple[str, tuple[int, int, int]]:
    """Check every option before any work.

    Returns:
        ``(int8 activation form, (min, opt, max) TensorRT batch profile)``.

    Raises:
        EOEdgeError: one line naming the bad option.
    """
    from ..artifact.forms import int8_activations
    from ..quantize.convert import METHODS
    from ..quantize.fallback import RANKINGS
    from ..quantize.qdq import resolve_op_types

    if not (o.fp16 or o.int8):
        raise EOEdgeError("choose a precision: --fp16 and/or --int8")
    if o.method not in METHODS:
        raise EOEdgeError(f"unknown --method {o.method!r}; choose {', '.join(METHODS)}")
    if o.output is not None and o.fp16 and o.int8:
        raise EOEdgeError("-o names one file: give it with only one of --fp16 / --int8")
    d = CompileOptions()  # "given" = differs from the default
    if not o.int8:  # INT8-only options never silently ignored
        given = [f for f, on in (("--auto-fallback", o.auto_fallback), ("--activations", o.activations != d.activations),
                                 ("--calib", o.calib is not None), ("--method", o.method != d.method),
                                 ("--quantize-ops", o.quantize_ops != d.quantize_ops),
                                 ("--fallback-rank", o.fallback_rank != d.fallback_rank)) if on]
        if given:
            raise EOEdgeError(f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to --int8")
    if o.backend != "tensorrt":  # TensorRT-only options
        given = [f for f, on in (("--dla-core", o.dla_core is not None), ("--timing-cache", o.timing_cache is not None),
                                 ("--workspace-mb", o.workspace_mb != d.workspace_mb),
                                 ("--batch-profile", o.batch_profile != d.batch_profile)) if on]
        if given:
            raise EOEdgeError(f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to --backend tensorrt")
    check_max_drop(o.max_drop)
    if o.calib_size < 1:
        raise EOEdgeError(f"--calib-size must be at least 1, got {o.calib_size}")
    act = int8_activations(o.backend, o.activations)  # checks the backend and the activation form
    resolve_op_types(o.quantize_ops)
    if o.fallback_rank not in RANKINGS:
        raise EOEdgeError(f"unknown --fallback-rank {o.fallback_rank!r}; choose {', '.join(RANKINGS)}")
    try:
        bmin, bopt, bmax = (int(v) for v in o.batch_profile.split(","))
        assert 1 <= bmin <= bopt <= bmax
    except (ValueError, AssertionError):
        raise EOEdgeError(f"--batch-profile must be min,opt,max with 1 <= min <= opt <= max, "
                          f"got {o.batch_profile!r}") from None
    if o.output is not None:
        check_out_dir(o.output)
        check_not_input(o.output, model, what="-o")
    else:
        check_out_dir(model)
    return act, (bmin, bopt, bmax)


def _gate_data(o: CompileOptions, quiet: bool, log: Callable[[str], None], dataset: str | None = None):
    """Validation data for the gate: the ``val`` split of ``--eval-data`` (or, with none, of the
    model's own dataset ``dataset``); all of ``--eval-data`` only when it has no val split. None
    when there is no data and no gate option asks for one."""
    from ..data.resolve import resolve_data
    from ..data.split import split_indices, split_source

    try:
        ds = resolve_data(o.eval_data, o.home, not quiet, log, dataset=dataset)
        try:
            val = ds.subset(split_indices(ds, "val"))
            log(f"gate data: val split of {ds.root or o.eval_data} ({len(val)} images; {split_source(ds)})"
                + (f", --max-drop {o.max_drop}" if o.max_drop is not None else ""))
            return val
        except EOEdgeError:
            if o.eval_data is None:
                raise
            log(f"gate data: {o.eval_data} has no validation split: gating on all of its {len(ds)} images"
                + (f", --max-drop {o.max_drop}" if o.max_drop is not None else ""))
            return ds
    except EOEdgeError as e:
        if o.eval_data is not None or o.max_drop is not None or o.auto_fallback:
            raise EOEdgeError(f"accuracy gate needs validation data: {e}") from None
        log(f"[yellow]warning:[/] accuracy gate skipped: {e}")
        return None


def _auto_fallback(model: Path, tmp: Path, cx, limit: float, o: CompileOptions, gate_fn: Callable[[Path], dict],
                   cache: Path, quiet: bool, log: Callable[[str], None]) -> dict:
    """Rank activations, then search how many to keep in float (:func:`eo_edge.quantize.fallback.fallback_search`).
    Leaves the chosen candidate in ``tmp``; returns the record fields it adds."""
    import onnx

    from ..quantize.fallback import fallback_search, rank_sensitive_activations
    from ..quantize.qdq import save_float_activations

    n_rank = min(len(cx), 128)
    log(f"  auto-fallback: ranking activations ({o.fallback_rank} sensitivity, {n_rank} calibration images)")
    t0, info = time.perf_counter(), {}
    ranked = rank_sensitive_activations(model, tmp, cx[:n_rank], how=o.fallback_rank, progress=not quiet,
                                        cache_dir=cache, info=info)
    rec: dict[str, Any] = {
        "fallback_ranking": ranked[:20],
        "fallback_rank": {"method": o.fallback_rank, "n_images": n_rank, "candidates": len(ranked),
                          "helpful": sum(v > 0 for _, v in ranked), "seconds": time.perf_counter() - t0,
                          "cache": info.get("cache"),
                          "score": "KL(FP32||QDQ) - KL(FP32||QDQ with the activation in float), nats"
                          if o.fallback_rank == "output" else "relative error of the activation's own Q/DQ"}}
    ranked = [(t, v) for t, v in ranked if v > 0]  # floating the others does not help
    if not ranked:
        raise EOEdgeError(f"--auto-fallback: no quantized activation of {model.name} whose float copy reduces the error")
    full = onnx.load(str(tmp))  # quantized once; each candidate is this minus some Q/DQ pairs
    gates: dict[int, dict] = {}

    def attempt(k: int) -> float:
        save_float_activations(full, [t for t, _ in ranked[:k]], tmp)
        gates[k] = gate_fn(tmp)
        log(f"  auto-fallback: {k} activation(s) in float -> drop {gates[k]['drop']:.2f} pts")
        return gates[k]["drop"]

    k, drops = fallback_search(len(ranked), lambda drop: passes(drop, limit), attempt)
    save_float_activations(full, [t for t, _ in ranked[:k]], tmp)  # the file holds the last attempt's
    rec.update({"float_activations": [t for t, _ in ranked[:k]], "gate": gates[k],
                "fallback_trials": [{"n_float": j, "drop": d} for j, d in drops.items()]})
    return rec


def run_compile(model: Path, o: CompileOptions, *, json_out: Path | None = None, quiet: bool = False,
                log: Callable[[str], None] = print) -> dict:
    """Implementation of ``eo-edge compile``. Returns the JSON record (schema ``eo-edge-compile/1``).

    Raises:
        EOEdgeError: bad option, missing/corrupt input, backend unavailable, gate failed (then
            nothing is published: any earlier file of that name is untouched).
    """
    from ..artifact.forms import artifact_path, get_format
    from ..backends import get_backend
    from ..backends.onnxruntime import OnnxRuntimeRunner
    from ..data.transforms import preprocess
    from ..gate import gate
    from ..home import home_dir
    from ..metrics.evaluate import predict_logits
    from ..quantize.convert import open_parent, to_fp16, to_int8

    act, (bmin, bopt, bmax) = validate(model, o)
    if json_out is not None:
        check_out_dir(json_out)
        check_not_input(json_out, model, what="--json")
    be = get_backend(o.backend)
    ok, why = be.available()
    if not ok:
        raise EOEdgeError(why)
    parent = open_parent(model)  # read, checked and hashed once for the whole compile
    from ..data.resolve import calibration_set, model_dataset

    cfg = parent.config
    val = _gate_data(o, quiet, log, dataset=model_dataset(cfg))
    if val is not None:
        from ..metrics.evaluate import check_classes

        check_classes(cfg.class_names, val.class_names, Path(model).name)
    # the gate runs where the artifact will run: OpenVINO for --backend openvino; ONNX Runtime
    # otherwise (TensorRT engines are built after the gate, from the gated ONNX)
    def runner(path: Path):
        return be.load(path) if o.backend == "openvino" else OnnxRuntimeRunner(path)

    parent_logits = None
    if val is not None:  # the FP32 parent's logits, computed once for every gate below
        parent_logits = predict_logits(runner(model).infer, val, cfg.input_size, cfg.mean, cfg.std,
                                       progress=not quiet, desc="gate: fp32 parent")

    def gate_fn(path: Path) -> dict:
        return gate(runner(path).infer, parent_logits, val, cfg, progress=not quiet, max_drop=limit)

    cache = home_dir(o.home) / "calib-cache"
    limit = o.max_drop if o.max_drop is not None else (MAX_DROP_PTS if o.auto_fallback else None)
    records: list[dict] = []
    t_all = time.perf_counter()
    with staged() as stage:  # nothing reaches a final name before every check passed
        for prec in (["fp16"] if o.fp16 else []) + (["int8"] if o.int8 else []):
            dest = o.output or artifact_path(model, get_format(prec, act), o.method)
            tmp = stage.path(dest, ".onnx")
            if prec == "fp16":
                rec = to_fp16(parent, tmp)
            else:
                imgs, names, hashes, cdir = calibration_set(cfg, o.calib_size, o.home, o.calib, progress=not quiet,
                                                            log=log)
                if len(imgs) < o.calib_size:
                    log(f"[yellow]warning:[/] only {len(imgs)} calibration images in {cdir} (asked for {o.calib_size})")
                cx = preprocess(imgs, cfg.input_size, cfg.mean, cfg.std)
                rec = to_int8(parent, tmp, cx, method=o.method, image_hashes=hashes, cache_dir=cache, activations=act,
                              op_types=o.quantize_ops)
                rec["calibration_images"] = {"folder": str(cdir), "n_images": len(names),
                                             "files": [{"name": n, "sha256": h} for n, h in zip(names, hashes)]}
            rec["artifact"] = str(dest)
            log(f"{prec}: made {dest.name} in {rec['seconds']:.1f} s"
                + (f" (calibration cache {rec['calibration_cache']})" if prec == "int8" else ""))
            if val is not None:
                g = rec["gate"] = gate_fn(tmp)
                if prec == "int8" and o.auto_fallback and not g["passed"]:
                    rec.update(_auto_fallback(model, tmp, cx, limit, o, gate_fn, cache, quiet, log))
                g = rec["gate"]
                log(f"  gate on {g['n_images']} images: top-1 {g['top1']:.2f} % vs FP32 {g['parent_top1']:.2f} % "
                    f"(drop {g['drop']:.2f} ± {g['drop_se']:.2f} pts (SE), agreement {g['top1_agreement']:.2f} %)")
                if o.max_drop is not None and not g["passed"]:
                    raise EOEdgeError(f"accuracy gate failed: {dest.name} drops {g['drop']:.2f} pts "
                                      f"(> --max-drop {o.max_drop}); nothing written, {dest.name} left as it was")

            line = verdict_line(tmp).replace(tmp.name, dest.name)
            if prec == "int8" and act == "u8":
                line += "; the u8 form is for ONNX Runtime, TensorRT takes --activations s8"
            log("  " + line)
            rec.update({"source_onnx": str(model), "source_sha256": parent.sha256, "sha256": sha256_file(tmp),
                        "size_mb": tmp.stat().st_size / 1e6, "backend": o.backend})
            records.append(rec)
        result = {"schema": schemas.COMPILE, "tool_versions": tool_versions(), "model": str(model),
                  "artifacts": records, "seconds": time.perf_counter() - t_all}
        sidecars = iter(records)

        def after(tmp: Path, dest: Path) -> None:  # every check passed: the file is published, then its sidecar
            rec = next(sidecars)
            log(f"wrote {dest}")
            if o.backend == "tensorrt":  # the engine is built from the published, gated ONNX
                rec["engine"] = be.build(dest, engine_path(dest), precision=rec["precision"],
                                         workspace_mb=o.workspace_mb, dla_core=o.dla_core,
                                         timing_cache=o.timing_cache, min_batch=bmin, opt_batch=bopt, max_batch=bmax)
            write_json(sidecar_path(dest), {**result, "artifacts": [rec]})

        stage.publish(after)
    if json_out:
        write_json(json_out, result)
    return result
