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
  keeps the most error-sensitive activations in float until the gate passes. Activation
  tensors are ranked on calibration images by how much removing their Q/DQ pair alone
  reduces the KL divergence of the logits from FP32 (leave-one-out; or, with ``local``, by
  each pair's own relative error, ``qdq_loss_debug``); the count of top-ranked activations
  kept in float is searched by doubling, then bisection, for the smallest that passes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .. import __version__
from ..artifact.forms import get_format
from ..artifact.onnx_meta import INPUT_NAME, OpenedArtifact, open_artifact, set_metadata
from ..errors import EOEdgeError
from ..fileio import atomic_path
from .qdq import resolve_op_types, save_float_activations

METHODS = ("minmax", "entropy", "percentile")


def open_parent(parent: "OpenedArtifact | str | Path") -> OpenedArtifact:
    """The FP32 parent of a compile, read once (:func:`eo_edge.artifact.onnx_meta.open_artifact`)
    and checked: ``onnx.checker`` passes and it is FP32. An already opened artifact is checked as is.

    Raises:
        EOEdgeError: missing, unreadable, invalid, not an eo-edge file, or not FP32 (one line).
    """
    import onnx

    a = parent if isinstance(parent, OpenedArtifact) else open_artifact(parent)
    try:
        onnx.checker.check_model(a.proto)
    except Exception as e:  # noqa: BLE001 - ValidationError ...
        raise EOEdgeError(f"not a valid ONNX file: {a.path} ({str(e).strip().splitlines()[0][:150]})") from None
    if a.form.precision != "fp32":
        raise EOEdgeError(f"{a.path} is already {a.form.precision}; compile from the FP32 ONNX")
    return a


def to_fp16(parent: "OpenedArtifact | Path", out: Path) -> dict[str, Any]:
    """Write an FP16 copy of an FP32 eo-edge ONNX (I/O kept FP32; ``parent`` a path or an artifact
    opened once by the caller, :func:`open_parent`). Returns a record."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    t0 = time.perf_counter()
    parent = open_parent(parent)
    proto = onnx.ModelProto()
    proto.CopyFrom(parent.proto)  # the converter edits in place; the caller's copy stays FP32
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp16 = convert_float_to_float16(proto, keep_io_types=True, disable_shape_infer=False)
    fp16 = toposort(fp16)
    set_metadata(fp16, {"eo_edge.precision": "fp16", "eo_edge.parent_sha256": parent.sha256})
    with atomic_path(out, suffix=".onnx") as tmp:
        tmp.write_bytes(fp16.SerializeToString())
    return {"precision": "fp16", "artifact": str(out), "seconds": time.perf_counter() - t0,
            "tool": "onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)"}


def toposort(model):
    """Return ``model`` with its nodes in topological order (ONNX IR: "the list of nodes must be
    topologically sorted"; ``onnx.checker`` rejects it otherwise).

    ``convert_float_to_float16(keep_io_types=True)`` appends its input Cast at the end of the
    node list. Sorting uses ONNX-GraphSurgeon's ``Graph.toposort`` (what ``polygraphy surgeon
    sanitize --toposort`` runs); model-level fields (IR version, opsets, producer, metadata) are
    copied from the input so nothing but the node order changes.
    """
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(model)
    graph.toposort()
    out = gs.export_onnx(graph, do_type_check=False)
    out.ir_version = model.ir_version
    del out.opset_import[:]
    out.opset_import.extend(model.opset_import)
    out.producer_name, out.producer_version = model.producer_name, model.producer_version
    del out.metadata_props[:]
    out.metadata_props.extend(model.metadata_props)
    return out


@contextlib.contextmanager
def quiet_root_logger(level: int = logging.ERROR) -> Iterator[None]:
    """Raise the root logger's level for the duration of a call (``quantize_static`` logs its
    "consider pre-processing" hint through the root logger), then restore it, so that importing
    and calling eo-edge never changes the caller's logging."""
    root = logging.getLogger()
    old = root.level
    # logging.warning() on a root logger without handlers calls basicConfig() (a permanent
    # stderr handler) before it checks the level: a NullHandler for the call prevents that
    guard = logging.NullHandler() if not root.handlers else None
    if guard is not None:
        root.addHandler(guard)
    root.setLevel(max(level, old))
    try:
        yield
    finally:
        root.setLevel(old)
        if guard is not None:
            root.removeHandler(guard)


class _Reader:
    """``onnxruntime.quantization.CalibrationDataReader`` over preprocessed images (batches of 32)."""

    def __init__(self, x: np.ndarray, input_name: str = INPUT_NAME, batch: int = 32):
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


def to_int8(parent: "OpenedArtifact | Path", out: Path, calib_x: np.ndarray, *, method: str = "minmax", image_hashes: list[str],
            cache_dir: Path | None = None, float_activations: list[str] | None = None,
            activations: str = "s8", op_types: str | list[str] = "all") -> dict[str, Any]:
    """Quantize an FP32 eo-edge ONNX to QDQ INT8.

    Args:
        parent: the FP32 ONNX, a path or an artifact opened once by the caller (:func:`open_parent`).
        calib_x: preprocessed calibration images, float32 (N, 3, S, S).
        method: "minmax", "entropy" or "percentile" (99.999th percentile).
        image_hashes: sha256 of each calibration image file (recorded, and part of the cache key).
        cache_dir: folder for calibration-range caches (None: no cache).
        float_activations: activation tensors kept in float (auto-fallback): their Q/DQ pairs are
            removed after quantization, so every node reading them reads float values
            (:func:`keep_activations_float`). Weights stay int8.
        activations: "s8" = symmetric int8 activations (zero point 0: what TensorRT's explicit
            quantization requires) or "u8" = asymmetric uint8 activations (ONNX Runtime's
            recommended U8S8 form for x86 CPUs; measured speeds are in benchmarks/x86-reference).
            The forms are rows of :data:`eo_edge.artifact.forms.FORMATS`. Weights are int8 symmetric per
            channel either way.
        op_types: which operators get Q/DQ on their inputs: "all" (ONNX Runtime's default: every op
            it can quantize, including Softmax, Sigmoid, InstanceNormalization, Mul, Add), "weighted"
            (Conv, ConvTranspose, Gemm, MatMul: TensorRT's Q/DQ placement recommendation, "quantize
            all inputs of weighted operations", TensorRT developer guide, explicit quantization), or
            a list of ONNX op types.

    Returns:
        Record with ``calibration_cache`` ("hit"/"miss"/"off"), ``seconds``, ``float_activations``.

    Raises:
        EOEdgeError: unknown method, invalid input.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in METHODS:
        raise EOEdgeError(f"unknown calibration method {method!r}; choose {', '.join(METHODS)}")
    t0 = time.perf_counter()
    parent = open_parent(parent)
    onnx_path, proto = parent.path, parent.proto
    import tempfile

    get_format("int8", activations)  # raises on an unknown form
    # QuantizeBias=False: biases stay float. ONNX Runtime's default quantizes Conv/Gemm biases to
    # int32 behind a DequantizeLinear, which TensorRT's ONNX parser rejects (DequantizeLinear input
    # INT8 only in 8.5/8.6; INT8/FP8/INT4 in 10.x: onnx-tensorrt docs/operators.md, rule table
    # eo_edge/trt_rules); ORT documents the switch in quantize_static's extra_options.
    extra = {"ActivationSymmetric": activations == "s8", "WeightSymmetric": True, "QuantizeBias": False}
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
            key = calibration_key(parent.sha256, image_hashes, method,
                                  extra if ops is None else {**extra, "op_types": ops})
            cache_path = cache_dir / f"calib-{key}.json"
            cache_state = "hit" if cache_path.is_file() else "miss"
        qout = Path(td) / "q.onnx"
        with quiet_root_logger():
            quantize_static(
                str(pre), str(qout), _Reader(calib_x), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8 if activations == "s8" else QuantType.QUInt8,
                weight_type=QuantType.QInt8, reduce_range=False,
                calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                                  "percentile": CalibrationMethod.Percentile}[method],
                extra_options=extra, op_types_to_quantize=ops,
                calibration_cache_path=str(cache_path) if cache_path else None)
        q = onnx.load(str(qout))
    set_metadata(q, {"eo_edge.precision": "int8", "eo_edge.parent_sha256": parent.sha256,
                     "eo_edge.int8_activations": activations,
                     "eo_edge.calibration": {"method": method, "n_images": int(len(calib_x)),
                                             "float_activations": list(float_activations or []),
                                             "op_types": "all" if ops is None else ops}})
    q.producer_name, q.producer_version = "eo-edge", __version__
    save_float_activations(q, list(float_activations or []), out)
    return {"precision": "int8", "artifact": str(out), "method": method, "calibration_cache": cache_state,
            "calibration_cache_path": str(cache_path) if cache_path else None, "float_activations": list(float_activations or []),
            "seconds": time.perf_counter() - t0, "quant_format": "QDQ", "weights": "int8 symmetric per-channel",
            "activations": "int8 symmetric per-tensor" if activations == "s8" else "uint8 asymmetric per-tensor",
            "op_types": "all" if ops is None else ops}


