"""Compile an FP32 ONNX file to FP16 or calibrated INT8 ONNX, then gate it on accuracy.

Design: precision lives in the ONNX file, so every runtime (ONNX Runtime on x86, TensorRT
on Jetson) runs the very same artifact.

* FP16: ``onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)``:
  FP16 weights and activations, graph input and output kept FP32.
* INT8: explicit quantization in QDQ format with ``onnxruntime.quantization.quantize_static``
  (onnxruntime docs, "Quantize ONNX models"): int8 weights, symmetric, per output channel;
  activations int8 symmetric for TensorRT (its explicit-quantization path needs zero point 0;
  TensorRT Developer Guide, "Working with Quantized Types > Explicit Quantization") or uint8
  asymmetric for ONNX Runtime on x86 (its recommended U8S8 form), calibrated on
  real images with MinMax, Entropy or Percentile. Calibration ranges are cached (ORT's
  ``calibration_cache_path``) under a key of the model hash, the image hashes and the
  options, so a re-run with unchanged inputs skips calibration.
* Accuracy gate: top-1 of the new artifact and its FP32 parent on the validation split,
  their top-1 agreement; ``max_drop`` fails the command when exceeded; ``auto_fallback``
  keeps the most error-sensitive nodes in float until the gate passes. Nodes are ranked by
  the relative error that quantizing each node's output activation adds (pre- vs post-QDQ
  values in the QDQ model on calibration images, ``qdq_loss_debug``); the count of top-ranked
  nodes kept in float is searched by doubling, then bisection, for the smallest that passes.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__
from .errors import EOEdgeError
from .export import read_metadata, set_metadata
from .fileio import atomic_path, sha256_file

METHODS = ("minmax", "entropy", "percentile")


def artifact_name(onnx_path: Path, precision: str, method: str | None = None, activations: str = "s8") -> Path:
    """Self-explaining name beside the input: ``resnet8.onnx`` -> ``resnet8.int8-minmax.onnx``
    (symmetric int8 activations, TensorRT-ready) or ``resnet8.int8-minmax-u8.onnx`` (uint8
    activations, the fast form for ONNX Runtime on x86 CPUs)."""
    stem = onnx_path.name[:-5] if onnx_path.name.endswith(".onnx") else onnx_path.stem
    for tag in (".fp32",):
        stem = stem[: -len(tag)] if stem.endswith(tag) else stem
    tag = precision if precision != "int8" else f"int8-{method or 'minmax'}" + ("-u8" if activations == "u8" else "")
    return onnx_path.with_name(f"{stem}.{tag}.onnx")


def _load_proto(path: Path):
    import onnx

    if not path.is_file():
        raise EOEdgeError(f"ONNX file not found: {path}")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as e:  # noqa: BLE001 - DecodeError, ValidationError ...
        raise EOEdgeError(f"not a valid ONNX file: {path} ({str(e).strip().splitlines()[0][:150]})") from None
    md = read_metadata(proto)
    if "config" not in md:
        raise EOEdgeError(f"{path} carries no eo-edge metadata; export it with `eo-edge export` first")
    if md.get("precision", "fp32") != "fp32":
        raise EOEdgeError(f"{path} is already {md.get('precision')}; compile from the FP32 ONNX")
    return proto, md


def to_fp16(onnx_path: Path, out: Path) -> dict[str, Any]:
    """Write an FP16 copy of an FP32 eo-edge ONNX (I/O kept FP32). Returns a record."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    t0 = time.perf_counter()
    proto, md = _load_proto(onnx_path)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp16 = convert_float_to_float16(proto, keep_io_types=True, disable_shape_infer=False)
    set_metadata(fp16, {"eo_edge.precision": "fp16", "eo_edge.parent_sha256": sha256_file(onnx_path)})
    with atomic_path(out, suffix=".onnx") as tmp:
        tmp.write_bytes(fp16.SerializeToString())
    return {"precision": "fp16", "artifact": str(out), "seconds": time.perf_counter() - t0,
            "tool": "onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)"}


class _Reader:
    """``onnxruntime.quantization.CalibrationDataReader`` over preprocessed images (batches of 32)."""

    def __init__(self, x: np.ndarray, input_name: str = "input", batch: int = 32):
        self.batches = [x[i:i + batch] for i in range(0, len(x), batch)]
        self.input_name = input_name
        self.i = 0

    def get_next(self):
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {self.input_name: self.batches[self.i - 1]}

    def rewind(self):
        self.i = 0

    def __iter__(self):  # qdq_loss_debug.collect_activations iterates the reader
        self.rewind()
        return iter(self.get_next, None)


def calibration_key(onnx_sha: str, image_hashes: list[str], method: str, options: dict[str, Any]) -> str:
    """sha256 over everything calibration ranges depend on (model, images, method, options, ORT)."""
    import onnxruntime

    h = hashlib.sha256()
    h.update(json.dumps([onnx_sha, sorted(image_hashes), method, options, onnxruntime.__version__], sort_keys=True).encode())
    return h.hexdigest()[:24]


def to_int8(onnx_path: Path, out: Path, calib_x: np.ndarray, *, method: str = "minmax", image_hashes: list[str],
            cache_dir: Path | None = None, exclude_nodes: list[str] | None = None,
            activations: str = "s8", op_types: str | list[str] = "all") -> dict[str, Any]:
    """Quantize an FP32 eo-edge ONNX to QDQ INT8.

    Args:
        calib_x: preprocessed calibration images, float32 (N, 3, S, S).
        method: "minmax", "entropy" or "percentile" (99.999th percentile).
        image_hashes: sha256 of each calibration image file (recorded, and part of the cache key).
        cache_dir: folder for calibration-range caches (None: no cache).
        exclude_nodes: node names kept in float (auto-fallback).
        activations: "s8" = symmetric int8 activations (zero point 0: what TensorRT's explicit
            quantization requires) or "u8" = asymmetric uint8 activations (ONNX Runtime's
            recommended U8S8 form for x86 CPUs; p50 0.675 ms vs 2.171 ms for S8S8 at batch 1 for
            ResNet8 on this project's 2-vCPU Xeon, benchmarks/x86-robustness-resnet8/report.md). Weights are int8 symmetric
            per channel either way.
        op_types: which operators get Q/DQ on their inputs: "all" (ONNX Runtime's default: every op
            it can quantize, including Softmax, Sigmoid, InstanceNormalization, Mul, Add), "weighted"
            (Conv, ConvTranspose, Gemm, MatMul: TensorRT's Q/DQ placement recommendation, "quantize
            all inputs of weighted operations", TensorRT developer guide, explicit quantization), or
            a list of ONNX op types.

    Returns:
        Record with ``calibration_cache`` ("hit"/"miss"/"off"), ``seconds``, ``float_nodes``.

    Raises:
        EOEdgeError: unknown method, invalid input.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in METHODS:
        raise EOEdgeError(f"unknown calibration method {method!r}; choose {', '.join(METHODS)}")
    t0 = time.perf_counter()
    proto, md = _load_proto(onnx_path)
    import tempfile

    if activations not in ("s8", "u8"):
        raise EOEdgeError(f"unknown activation type {activations!r}; choose s8 or u8")
    extra = {"ActivationSymmetric": activations == "s8", "WeightSymmetric": True}
    ops = resolve_op_types(op_types)
    if ops is not None and not {n.op_type for n in proto.graph.node} & set(ops):
        raise EOEdgeError(f"--quantize-ops {','.join(ops)}: {Path(onnx_path).name} has no node of these op types")
    if method == "percentile":
        extra["CalibPercentile"] = 99.999
    with tempfile.TemporaryDirectory(prefix="eo-edge-q.") as td:
        pre = Path(td) / "pre.onnx"
        try:
            quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - pre-processing is an optimisation only
            onnx.save(proto, str(pre))
        cache_path, cache_state = None, "off"
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            key = calibration_key(sha256_file(onnx_path), image_hashes, method,
                                  extra if ops is None else {**extra, "op_types": ops})
            cache_path = cache_dir / f"calib-{key}.json"
            cache_state = "hit" if cache_path.is_file() else "miss"
        qout = Path(td) / "q.onnx"
        import logging

        logging.getLogger().setLevel(logging.ERROR)
        quantize_static(
            str(pre), str(qout), _Reader(calib_x), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8 if activations == "s8" else QuantType.QUInt8,
            weight_type=QuantType.QInt8, reduce_range=False,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                              "percentile": CalibrationMethod.Percentile}[method],
            nodes_to_exclude=list(exclude_nodes or []), extra_options=extra, op_types_to_quantize=ops,
            calibration_cache_path=str(cache_path) if cache_path else None)
        q = onnx.load(str(qout))
    set_metadata(q, {"eo_edge.precision": "int8", "eo_edge.parent_sha256": sha256_file(onnx_path),
                     "eo_edge.int8_activations": activations,
                     "eo_edge.calibration": {"method": method, "n_images": int(len(calib_x)),
                                             "float_nodes": list(exclude_nodes or []),
                                             "op_types": "all" if ops is None else ops}})
    q.producer_name, q.producer_version = "eo-edge", __version__
    with atomic_path(out, suffix=".onnx") as tmp:
        tmp.write_bytes(q.SerializeToString())
    return {"precision": "int8", "artifact": str(out), "method": method, "calibration_cache": cache_state,
            "calibration_cache_path": str(cache_path) if cache_path else None, "float_nodes": list(exclude_nodes or []),
            "seconds": time.perf_counter() - t0, "quant_format": "QDQ", "weights": "int8 symmetric per-channel",
            "activations": "int8 symmetric per-tensor" if activations == "s8" else "uint8 asymmetric per-tensor",
            "op_types": "all" if ops is None else ops}


WEIGHTED_OPS = ["Conv", "ConvTranspose", "Gemm", "MatMul"]


def resolve_op_types(op_types: str | list[str]) -> list[str] | None:
    """``"all"`` -> None (ONNX Runtime's default set), ``"weighted"`` -> :data:`WEIGHTED_OPS`,
    ``"Conv,MatMul"`` or a list -> that list.

    Raises:
        EOEdgeError: an empty list.
    """
    if isinstance(op_types, str):
        if op_types == "all":
            return None
        if op_types == "weighted":
            return list(WEIGHTED_OPS)
        op_types = [t.strip() for t in op_types.split(",") if t.strip()]
    if not op_types:
        raise EOEdgeError("--quantize-ops: give all, weighted, or a comma-separated list of ONNX op types")
    return list(op_types)


def rank_sensitive_nodes(fp32_path: Path, qdq_path: Path, x: np.ndarray) -> list[tuple[str, float]]:
    """Rank quantized nodes by the local quantization error of their output activation.

    Uses ``onnxruntime.quantization.qdq_loss_debug`` (collect_activations +
    create_activation_matching): for every quantized activation tensor, the relative error
    that its own Quantize/Dequantize pair adds, ``||post_qdq - pre_qdq|| / ||pre_qdq||``, on
    images ``x`` (float32 (N,3,S,S)). This is local (what quantizing that tensor costs), not
    the error accumulated from upstream layers, which would always rank the last layers first.

    Returns:
        ``[(node_name, relative_error), ...]``, most sensitive first; node names are those of
        the FP32 graph that produce the tensor.
    """
    import tempfile

    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (collect_activations, create_activation_matching,
                                                         modify_model_output_intermediate_tensors)

    fp = onnx.load(str(fp32_path))
    producer = {o: n.name for n in fp.graph.node for o in n.output}
    with tempfile.TemporaryDirectory() as td:
        fa, qa = Path(td) / "f.onnx", Path(td) / "q.onnx"
        modify_model_output_intermediate_tensors(str(fp32_path), str(fa))
        modify_model_output_intermediate_tensors(str(qdq_path), str(qa))
        xs = x[: min(len(x), 64)]
        f_act = collect_activations(str(fa), _Reader(xs, batch=16))
        q_act = collect_activations(str(qa), _Reader(xs, batch=16))
    match = create_activation_matching(q_act, f_act)
    scores = []
    for tensor, d in match.items():
        if "pre_qdq" not in d or "post_qdq" not in d or tensor not in producer:
            continue
        pre = np.concatenate([np.asarray(a).ravel() for a in d["pre_qdq"]])
        post = np.concatenate([np.asarray(a).ravel() for a in d["post_qdq"]])
        denom = float(np.linalg.norm(pre)) or 1.0
        scores.append((producer[tensor], float(np.linalg.norm(post - pre)) / denom))
    scores.sort(key=lambda t: -t[1])
    return scores


def gate(fn_new: Callable, parent_logits: np.ndarray, data, cfg, progress: bool = True) -> dict[str, Any]:
    """Top-1 of an artifact and its FP32 parent on ``data``, their drop and top-1 agreement (percent).

    Args:
        fn_new: the artifact's logit function (float32 (N,3,S,S) -> (N,C)).
        parent_logits: the FP32 parent's logits on ``data``, float32 (len(data), C), computed
            once by the caller (the auto-fallback loop gates many candidates against them).
    """
    from .evaluate import predict_logits
    from .metrics import classification_report

    remap = np.array([list(cfg.class_names).index(c) for c in data.class_names])
    y = remap[data.labels]
    a = predict_logits(fn_new, data, cfg.input_size, cfg.mean, cfg.std, progress=progress, desc="gate: artifact")
    b = parent_logits
    ta = classification_report(y, a.argmax(1), cfg.class_names)["top1"]
    tb = classification_report(y, b.argmax(1), cfg.class_names)["top1"]
    return {"top1": ta, "parent_top1": tb, "drop": tb - ta, "top1_agreement": float(100 * (a.argmax(1) == b.argmax(1)).mean()),
            "max_abs_logit_diff": float(np.abs(a - b).max()), "n_images": int(len(y))}
