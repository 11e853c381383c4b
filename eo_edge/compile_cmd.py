"""``eo-edge compile``: precision artifacts, backend build, accuracy gate, JSON record."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any, Callable


from . import __version__
from .errors import EOEdgeError
from .fileio import check_out_dir, sha256_file, write_json


def tool_versions() -> dict[str, str]:
    """Versions of the tools an artifact depends on."""
    import onnx
    import onnxruntime

    v = {"eo-edge": __version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
         "python": platform.python_version()}
    try:
        import torch

        v["torch"] = torch.__version__
    except ImportError:
        pass
    return v


def run_compile(*, model: Path, fp16: bool, int8: bool, calib: Path | None, calib_size: int, method: str,
                activations: str = "auto", quantize_ops: str = "all", fallback_rank: str = "output",
                backend: str, eval_data: Path | None, max_drop: float | None, auto_fallback: bool,
                output: Path | None, workspace_mb: int, dla_core: int | None, home: Path | None,
                timing_cache: Path | None = None, batch_profile: str = "1,1,32",
                json_out: Path | None, quiet: bool, log: Callable[[str], None], console: Any,
                resolve_data: Callable) -> dict:
    """Implementation of ``eo-edge compile`` (see its ``--help``). Returns the JSON record.

    Raises:
        EOEdgeError: no precision chosen, missing/corrupt input, backend unavailable, gate failed.
    """
    from .backends import get_backend
    from .backends.onnxruntime import OnnxRuntimeRunner
    from .compile import (METHODS, _load_proto, artifact_name, gate, rank_sensitive_activations,
                          save_float_activations, to_fp16, to_int8)
    from .data.split import split_indices
    from .data.subsets import CALIBRATION_DIR, load_flat_images
    from .data.transforms import preprocess
    from .home import home_dir
    from .models.registry import ModelConfig

    if not (fp16 or int8):
        raise EOEdgeError("choose a precision: --fp16 and/or --int8")
    if method not in METHODS:
        raise EOEdgeError(f"unknown --method {method!r}; choose {', '.join(METHODS)}")
    if output is not None and fp16 and int8:
        raise EOEdgeError("-o names one file: give it with only one of --fp16 / --int8")
    if auto_fallback and not int8:
        raise EOEdgeError("--auto-fallback applies to --int8")
    if activations not in ("auto", "s8", "u8"):
        raise EOEdgeError(f"unknown --activations {activations!r}; choose auto, s8 or u8")
    from .compile import RANKINGS, resolve_op_types

    resolve_op_types(quantize_ops)  # a bad --quantize-ops fails before any work
    if fallback_rank not in RANKINGS:
        raise EOEdgeError(f"unknown --fallback-rank {fallback_rank!r}; choose {', '.join(RANKINGS)}")
    act = activations if activations != "auto" else ("u8" if backend == "onnxruntime" else "s8")
    if backend == "tensorrt" and act == "u8":
        raise EOEdgeError("TensorRT needs symmetric int8 activations: use --activations s8 (or auto)")
    try:
        bmin, bopt, bmax = (int(v) for v in batch_profile.split(","))
        assert 1 <= bmin <= bopt <= bmax
    except (ValueError, AssertionError):
        raise EOEdgeError(f"--batch-profile must be min,opt,max with 1 <= min <= opt <= max, got {batch_profile!r}") from None
    be = get_backend(backend)
    ok, why = be.available()
    if not ok:
        raise EOEdgeError(why)
    _, md = _load_proto(model)
    cfg = ModelConfig.from_dict(md["config"])
    if output is not None:
        check_out_dir(output)
    else:
        check_out_dir(model)
    # validation data for the gate
    val = None
    try:
        ds = resolve_data(eval_data, home, not quiet)
        val = ds.subset(split_indices(ds, "val")) if eval_data is None else ds  # --eval-data: all of it
    except EOEdgeError as e:
        if eval_data is not None or max_drop is not None or auto_fallback:
            raise EOEdgeError(f"accuracy gate needs validation data: {e}") from None
        log(f"[yellow]warning:[/] accuracy gate skipped: {e}")
    parent_logits = None
    if val is not None:  # the FP32 parent's logits, computed once for every gate below
        from .evaluate import predict_logits

        parent_logits = predict_logits(OnnxRuntimeRunner(model).infer, val, cfg.input_size, cfg.mean, cfg.std,
                                       progress=not quiet, desc="gate: fp32 parent")
    records: list[dict] = []
    t_all = time.perf_counter()
    jobs = (["fp16"] if fp16 else []) + (["int8"] if int8 else [])
    for prec in jobs:
        dest = output or artifact_name(model, prec, method, act)
        if prec == "fp16":
            rec = to_fp16(model, dest)
        else:
            cdir = calib or CALIBRATION_DIR
            imgs, names, hashes, skipped = load_flat_images(cdir, calib_size)
            for s in skipped:
                log(f"[yellow]warning:[/] calibration image skipped: {s}")
            if len(imgs) < calib_size:
                log(f"[yellow]warning:[/] only {len(imgs)} calibration images in {cdir} (asked for {calib_size})")
            cx = preprocess(imgs, cfg.input_size, cfg.mean, cfg.std)
            cache = home_dir(home) / "calib-cache"
            rec = to_int8(model, dest, cx, method=method, image_hashes=hashes, cache_dir=cache, activations=act,
                          op_types=quantize_ops)
            rec["calibration_images"] = {"folder": str(cdir), "n_images": len(names),
                                         "files": [{"name": n, "sha256": h} for n, h in zip(names, hashes)]}
        log(f"{prec}: wrote {dest} in {rec['seconds']:.1f} s"
            + (f" (calibration cache {rec['calibration_cache']})" if prec == "int8" else ""))
        if val is not None:
            g = gate(OnnxRuntimeRunner(dest).infer, parent_logits, val, cfg, progress=not quiet)
            rec["gate"] = g
            limit = max_drop if max_drop is not None else (0.5 if auto_fallback else None)
            if prec == "int8" and auto_fallback and limit is not None and g["drop"] > limit:
                n_rank = min(len(cx), 128)
                log(f"  auto-fallback: ranking activations ({fallback_rank} sensitivity, {n_rank} calibration images)")
                t_rank = time.perf_counter()
                rank_info: dict = {}
                ranked = rank_sensitive_activations(model, dest, cx[:n_rank], how=fallback_rank, progress=not quiet,
                                                    cache_dir=cache, info=rank_info)
                rec["fallback_ranking"] = ranked[:20]
                rec["fallback_rank"] = {"method": fallback_rank, "n_images": n_rank, "candidates": len(ranked),
                                        "helpful": sum(v > 0 for _, v in ranked),
                                        "seconds": time.perf_counter() - t_rank, "cache": rank_info.get("cache"),
                                        "score": "KL(FP32||QDQ) - KL(FP32||QDQ with the activation in float), nats"
                                        if fallback_rank == "output" else "relative error of the activation's own Q/DQ"}
                ranked = [(t, v) for t, v in ranked if v > 0]  # floating the others does not help
                if not ranked:
                    raise EOEdgeError(f"--auto-fallback: no quantized activation in {dest.name} whose float copy "
                                      "reduces the error")
                import onnx

                full = onnx.load(str(dest))  # quantized once; each candidate is this minus some Q/DQ pairs
                trials: dict[int, tuple[list[str], dict]] = {}
                last = [0]

                def attempt(k: int) -> float:
                    """Write the model with the k most sensitive activations in float; gate it; remember the outcome."""
                    keep = [t for t, _ in ranked[:k]]
                    save_float_activations(full, keep, dest)
                    gk = gate(OnnxRuntimeRunner(dest).infer, parent_logits, val, cfg, progress=not quiet)
                    trials[k] = (keep, gk)
                    last[0] = k
                    log(f"  auto-fallback: {k} activation(s) in float -> drop {gk['drop']:.2f} pts")
                    return gk["drop"]

                # Doubling finds a passing count, then bisection narrows it to the smallest passing count
                # it can find (the drop is not strictly monotonic in k, so this is a search, not a proof).
                lo, k = 0, 1
                while k < len(ranked) and attempt(k) > limit:
                    lo, k = k, min(2 * k, len(ranked))
                if k == len(ranked) and k not in trials:
                    attempt(k)
                hi = k if trials[k][1]["drop"] <= limit else None
                while hi is not None and hi - lo > 1:
                    mid = (lo + hi) // 2
                    if attempt(mid) <= limit:
                        hi = mid
                    else:
                        lo = mid
                best = hi if hi is not None else min(trials, key=lambda j: trials[j][1]["drop"])
                keep_best, g = trials[best]
                if last[0] != best:  # the file on disk is the last attempt's
                    save_float_activations(full, keep_best, dest)
                rec = {**rec, "float_activations": keep_best, "gate": g,
                       "fallback_trials": [{"n_float": j, "drop": trials[j][1]["drop"]} for j in trials]}
            log(f"  gate on {g['n_images']} images: top-1 {g['top1']:.2f} % vs FP32 {g['parent_top1']:.2f} % "
                f"(drop {g['drop']:.2f} ± {g['drop_se']:.2f} pts (SE), agreement {g['top1_agreement']:.2f} %)")
        if backend != "onnxruntime":
            eng = Path(str(dest)[:-5] + ".engine")
            rec["engine"] = be.build(dest, eng, precision=prec, workspace_mb=workspace_mb, dla_core=dla_core,
                                     timing_cache=timing_cache, min_batch=bmin, opt_batch=bopt, max_batch=bmax)
        rec.update({"source_onnx": str(model), "source_sha256": sha256_file(model), "sha256": sha256_file(dest),
                    "size_mb": dest.stat().st_size / 1e6, "backend": backend})
        records.append(rec)
    result = {"schema": "eo-edge-compile/1", "tool_versions": tool_versions(), "model": str(model),
              "artifacts": records, "seconds": time.perf_counter() - t_all}
    for rec in records:
        write_json(Path(rec["artifact"] + ".json"), {**result, "artifacts": [rec]})
    if json_out:
        write_json(json_out, result)
    failed = [r for r in records if "gate" in r and max_drop is not None and r["gate"]["drop"] > max_drop]
    if failed:
        r = failed[0]
        raise EOEdgeError(f"accuracy gate failed: {Path(r['artifact']).name} drops {r['gate']['drop']:.2f} pts "
                          f"(> --max-drop {max_drop})")
    return result
