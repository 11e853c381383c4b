"""`eo-edge export`, `eo-edge compile`, `eo-edge check` and `eo-edge models`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..app.compile import CompileOptions
from ..defaults import MAX_DROP_PTS
from ..errors import EOEdgeError
from ..fileio import write_json
from .options import HomeOpt, JsonOpt, QuietOpt
from .root import _log, app, out

_C = CompileOptions()  # compile's defaults: the options table of the use case, shown by --help


@app.command()
def export(
    ckpt: Path = typer.Argument(..., metavar="CKPT", help="Checkpoint (.pt/.pth): ours or a bare state_dict."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="FILE", help="Output .onnx (default: ./CKPT-STEM.onnx, the checkpoint's name with .onnx)."),
    img_size: Optional[int] = typer.Option(None, "--img-size", metavar="PX", help="Input size in pixels (default: the checkpoint's)."),
    opset: int = typer.Option(17, "--opset", metavar="N", help="ONNX opset (13..21)."),
    dynamic_batch: bool = typer.Option(True, "--dynamic-batch/--static-batch", help="Symbolic batch dimension, or batch 1."),
    preset: Optional[str] = typer.Option(None, "--preset", metavar="NAME", help="For bare state_dicts: sentry (224 px) or eurosat64."),
    arch: Optional[str] = typer.Option(None, "--arch", metavar="NAME", help="Architecture of a bare state_dict."),
    data: Optional[Path] = typer.Option(None, "--data", metavar="PATH", help="Dataset for the parity check (default: prepared EuroSAT, else the shipped test subset)."),
    parity_images: int = typer.Option(512, "--parity-images", metavar="N", help="Real test images for the PyTorch/ONNX Runtime parity check (0 = all)."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Export to one self-contained ONNX file (input `input`, output `logits`), simplify, check, verify.

    Normalisation is not inside the graph: the input is float32 NCHW normalised with the mean/std stored in the file's metadata_props (eo_edge.config).

    Examples:
    eo-edge export models/resnet8_eurosat64.pt -o resnet8.onnx
    eo-edge export ../shared/weights/sentry/resnet8_dual.pth --preset sentry -o sentry_r8.onnx
    """
    from ..app.export import export_checkpoint

    rec = export_checkpoint(ckpt, output, img_size=img_size, opset=opset, dynamic_batch=dynamic_batch, preset=preset,
                            arch=arch, data=data, parity_images=parity_images, json_out=json_out, home=home,
                            quiet=quiet, log=_log)
    p = rec["parity"]
    out.print(f"exported {rec['output']}  ({rec['nodes']} nodes, opset {rec['opset']}, {rec['size_mb']:.3f} MB, "
              f"exporter {rec['exporter']}, simplifier {rec['simplifier']}, {rec['seconds']:.1f} s)")
    for r in rec["replaced_pools"]:
        out.print(f"  AdaptiveAvgPool2d -> AveragePool: {r}")
    out.print(f"  parity vs PyTorch on {rec['parity_data']}: max |logit diff| {p['max_abs_diff']:.2e}, "
              f"top-1 agreement {p['top1_agreement']:.2f} %")
    if json_out:
        write_json(json_out, {k: v for k, v in rec.items() if k != "output"})


@app.command("compile")
def compile_cmd(
    model: Path = typer.Argument(..., metavar="ONNX", help="FP32 ONNX file made by `eo-edge export`."),
    fp16: bool = typer.Option(False, "--fp16", help="Make an FP16 ONNX (I/O kept FP32)."),
    int8: bool = typer.Option(False, "--int8", help="Make a QDQ INT8 ONNX calibrated on real images."),
    calib: Optional[Path] = typer.Option(None, "--calib", metavar="DIR", help="Calibration image folder (default: the committed calibration/ set)."),
    calib_size: int = typer.Option(_C.calib_size, "--calib-size", metavar="N", help="Number of calibration images."),
    method: str = typer.Option(_C.method, "--method", metavar="NAME", help="Calibration: minmax, entropy or percentile."),
    activations: str = typer.Option(_C.activations, "--activations", metavar="MODE", help="INT8 activations: s8 (symmetric, TensorRT-ready), u8 (asymmetric, fast on ONNX Runtime x86), auto (u8 for onnxruntime, s8 for tensorrt)."),
    quantize_ops: str = typer.Option(_C.quantize_ops, "--quantize-ops", metavar="OPS", help="INT8 Q/DQ placement: all (every op ONNX Runtime quantizes), weighted (Conv/Gemm/MatMul inputs only, TensorRT's advice) or a list, e.g. Conv,MatMul."),
    backend: str = typer.Option(_C.backend, "--backend", metavar="NAME", help="onnxruntime (x86, CI) or tensorrt (Jetson: builds an engine)."),
    eval_data: Optional[Path] = typer.Option(None, "--eval-data", metavar="PATH", help="Data for the accuracy gate (default: validation split of the prepared dataset)."),
    max_drop: Optional[float] = typer.Option(None, "--max-drop", metavar="PTS", help="Fail if top-1 drops more than PTS points below the FP32 parent (to hold on other data, set it ~1.5 SE below your goal)."),
    auto_fallback: bool = typer.Option(False, "--auto-fallback", help=f"INT8: keep the most error-sensitive activations in float (their Q/DQ pairs removed; weights stay int8) until --max-drop (default {MAX_DROP_PTS}) passes."),
    fallback_rank: str = typer.Option(_C.fallback_rank, "--fallback-rank", metavar="NAME", help="--auto-fallback ranking: output (leave-one-out effect on the logits, 128 calibration images, cached) or local (own Q/DQ error; fast, less accurate)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="FILE", help="Output path (one precision only; default beside the input)."),
    workspace_mb: int = typer.Option(_C.workspace_mb, "--workspace-mb", metavar="MB", help="TensorRT builder workspace limit (MB)."),
    dla_core: Optional[int] = typer.Option(None, "--dla-core", metavar="N", help="TensorRT: build for this DLA core (GPU fallback on)."),
    timing_cache: Optional[Path] = typer.Option(None, "--timing-cache", metavar="FILE", help="TensorRT: timing-cache file, loaded if present and saved after the build."),
    batch_profile: str = typer.Option(_C.batch_profile, "--batch-profile", metavar="MIN,OPT,MAX", help="TensorRT optimisation profile: min,opt,max batch."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Compile an FP32 ONNX to FP16 and/or calibrated INT8 (QDQ), then gate it on accuracy.

    The files lie beside the input unless -o: NAME.fp16.onnx, NAME.int8-METHOD.onnx (symmetric s8 activations) or NAME.int8-METHOD-u8.onnx (u8), each with a .json record beside it (tools, calibration images, accuracy gate).

    Examples:
    eo-edge compile resnet8.onnx --fp16 --int8
    eo-edge compile resnet8.onnx --int8 --method entropy --max-drop 0.3
    eo-edge compile mobilevitv2.onnx --int8 --activations s8 --auto-fallback --max-drop 0.25
    eo-edge compile resnet8.onnx --int8 --backend tensorrt     (on a Jetson)
    """
    from ..app.compile import CompileOptions, run_compile

    opts = CompileOptions(fp16=fp16, int8=int8, calib=calib, calib_size=calib_size, method=method,
                          activations=activations, quantize_ops=quantize_ops, fallback_rank=fallback_rank,
                          backend=backend, eval_data=eval_data, max_drop=max_drop, auto_fallback=auto_fallback,
                          output=output, workspace_mb=workspace_mb, dla_core=dla_core, timing_cache=timing_cache,
                          batch_profile=batch_profile, home=home)
    run_compile(model, opts, json_out=json_out, quiet=quiet, log=_log)


@app.command("check")
def check_cmd(
    onnx_files: Optional[List[Path]] = typer.Argument(None, metavar="ONNX", help="ONNX file(s) to check (default: the shipped "
                                                      "models in the forms TensorRT runs: FP32, FP16, INT8-s8)."),
    target: Optional[List[str]] = typer.Option(None, "--target", metavar="TARGET", help="Rule-table target; repeat for "
                                               "several: tensorrt-8.5, tensorrt-8.6, tensorrt-10.0, tensorrt-10.1 or "
                                               "tensorrt-10.3, or the bare version, e.g. 8.6 (default: all)."),
    dla: bool = typer.Option(False, "--dla", help="Also apply the DLA rules (static shapes, FP16/INT8 only)."),
    backend: str = typer.Option("tensorrt", "--backend", metavar="NAME", help="tensorrt (the static rule table) or openvino (compile and run each file in OpenVINO's CPU plugin, f32 hint)."),
    json_out: Optional[Path] = JsonOpt,
):
    """Static TensorRT preflight, without TensorRT: check ONNX files against the rule table (or, with --backend openvino, compile them in OpenVINO).

    The table (eo_edge/trt_rules) holds, per TensorRT release, the operators and tensor types of onnx-tensorrt's docs/operators.md at that release, the Q/DQ rules and the DLA restrictions, each with its source. One line per violation names the node; exit 1 when any.

    Examples:
    eo-edge check models/resnet8_eurosat64.int8-minmax.onnx --target tensorrt-8.6
    eo-edge check models/*.onnx --target 8.5 --target 10.3 --json check.json
    eo-edge check model.onnx --target 8.6 --dla
    eo-edge check --target tensorrt-10.3     (the shipped models)
    """
    from ..app.preflight import run_check, run_openvino_check, shipped_tensorrt_files
    from ..fileio import check_not_input, write_json

    if backend not in ("tensorrt", "openvino"):
        raise EOEdgeError(f"--backend {backend!r}: check knows tensorrt (static rule table) and openvino")
    if backend == "openvino" and (target or dla):
        raise EOEdgeError("--target/--dla are TensorRT rule-table options; drop them with --backend openvino")
    files = list(onnx_files or []) or shipped_tensorrt_files()
    if json_out is not None:
        check_not_input(json_out, *files, what="--json")
    say = lambda m: out.print(m, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    res = run_openvino_check(files, log=say) if backend == "openvino" else run_check(files, target, dla=dla, log=say)
    if json_out:
        write_json(json_out, res)
    if not res["ok"]:
        raise typer.Exit(1)


