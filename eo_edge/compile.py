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
from typing import Any, Callable, Iterator

import numpy as np

from . import __version__
from .errors import EOEdgeError
from .export import read_metadata, set_metadata
from .fileio import atomic_path, sha256_file
from .formats import get_format

METHODS = ("minmax", "entropy", "percentile")


def _load_proto(path: Path):
    import onnx

    if not path.is_file():
        raise EOEdgeError(f"ONNX file not found: {path}")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as e:  # noqa: BLE001 - DecodeError, ValidationError ...
        raise EOEdgeError(f"not a valid ONNX file: {path} ({str(e).strip().splitlines()[0][:150]})") from None
    from .export import check_io, metadata_channels, proto_io

    check_io(*proto_io(proto), path.name, metadata_channels(proto))
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
    fp16 = toposort(fp16)
    set_metadata(fp16, {"eo_edge.precision": "fp16", "eo_edge.parent_sha256": sha256_file(onnx_path)})
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
            cache_dir: Path | None = None, float_activations: list[str] | None = None,
            activations: str = "s8", op_types: str | list[str] = "all") -> dict[str, Any]:
    """Quantize an FP32 eo-edge ONNX to QDQ INT8.

    Args:
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
            The forms are rows of :data:`eo_edge.formats.FORMATS`. Weights are int8 symmetric per
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
    proto, md = _load_proto(onnx_path)
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
            key = calibration_key(sha256_file(onnx_path), image_hashes, method,
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
    set_metadata(q, {"eo_edge.precision": "int8", "eo_edge.parent_sha256": sha256_file(onnx_path),
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


def activation_qdq(model) -> dict[str, tuple[Any, list[Any]]]:
    """The activation Q/DQ pairs of a QDQ ONNX model.

    Returns:
        ``{float tensor name: (QuantizeLinear node, [DequantizeLinear nodes reading it])}`` for
        every QuantizeLinear whose input is an activation (weights are stored quantized and have
        no QuantizeLinear).
    """
    inits = {i.name for i in model.graph.initializer}
    dqs: dict[str, list[Any]] = {}
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear":
            dqs.setdefault(n.input[0], []).append(n)
    pairs = {}
    for n in model.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] not in inits and dqs.get(n.output[0]):
            pairs[n.input[0]] = (n, dqs[n.output[0]])
    return pairs


def save_float_activations(qdq, tensors: list[str], out: Path) -> None:
    """Write a copy of the QDQ ``ModelProto`` ``qdq`` with ``tensors`` kept in float
    (:func:`keep_activations_float`) to ``out``, atomically, its ``eo_edge.calibration``
    metadata naming them. ``qdq`` itself is not changed, so the auto-fallback search quantizes
    once and writes each candidate from the same fully quantized model.

    Raises:
        EOEdgeError: a tensor without an activation Q/DQ pair.
    """
    import copy

    m = copy.deepcopy(qdq)
    keep_activations_float(m, tensors)
    cal = read_metadata(m).get("calibration") or {}
    set_metadata(m, {"eo_edge.calibration": {**cal, "float_activations": list(tensors)}})
    with atomic_path(out, suffix=".onnx") as tmp:
        tmp.write_bytes(m.SerializeToString())


def keep_activations_float(model, tensors: list[str]) -> None:
    """Remove the Q/DQ pairs of ``tensors`` from a QDQ ONNX model, in place: every node that read
    the dequantized copy reads the float tensor instead, and initializers left unused (the
    pairs' scales and zero points) are dropped.

    This is exact "keep this activation in float"; ``quantize_static(nodes_to_exclude=...)`` is
    not: excluding a node leaves its input quantized when the producer quantizes its own output.

    Raises:
        EOEdgeError: a tensor without an activation Q/DQ pair.
    """
    if not tensors:
        return
    pairs = activation_qdq(model)
    missing = [t for t in tensors if t not in pairs]
    if missing:
        raise EOEdgeError(f"no activation Q/DQ pair for tensor {missing[0]!r}")
    outputs = {o.name for o in model.graph.output}
    drop, rename = set(), {}  # node outputs identify nodes (unique in a valid graph)
    for t in tensors:
        q, ds = pairs[t]
        drop.add(q.output[0])
        # a pair in front of a graph output (the logits): the float tensor takes the output's name
        g = next((d.output[0] for d in ds if d.output[0] in outputs), None)
        if g is not None:
            rename[t] = g
        for d in ds:
            drop.add(d.output[0])
            rename[d.output[0]] = g or t
    keep = [n for n in model.graph.node if n.output[0] not in drop]
    def final(name: str) -> str:  # follow chained renames (Q/DQ -> Q/DQ) to the tensor that remains
        seen = set()
        while name in rename and name not in seen and rename[name] != name:
            seen.add(name)
            name = rename[name]
        return name

    for n in keep:
        for j, i in enumerate(n.input):
            if i in rename:
                n.input[j] = final(i)
        for j, o in enumerate(n.output):
            if o in rename and o not in drop:
                n.output[j] = final(o)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    used = {i for n in model.graph.node for i in n.input}
    live = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(live)


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


RANKINGS = ("output", "local")


def _softmax_kl(p_logits: np.ndarray, q_logits: np.ndarray) -> float:
    """Mean KL(softmax(p) || softmax(q)) over rows of (N, C) logits, in nats."""
    lp = p_logits - p_logits.max(1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
    lq = q_logits - q_logits.max(1, keepdims=True)
    lq = lq - np.log(np.exp(lq).sum(1, keepdims=True))
    return float((np.exp(lp) * (lp - lq)).sum(1).mean())


def rank_sensitive_activations(fp32_path: Path, qdq_path: Path, x: np.ndarray, how: str = "output",
                               progress: bool = False, cache_dir: Path | None = None,
                               info: dict | None = None) -> list[tuple[str, float]]:
    """Rank the quantized activation tensors of a QDQ model by how much keeping each in float helps.

    ``how="output"`` (default; leave-one-out output sensitivity, as in AIMET's QuantAnalyzer
    "per-layer quantization disabled" analysis): for every activation Q/DQ pair, the QDQ model
    is re-run with that pair removed (:func:`keep_activations_float`), and the tensor's score is
    the reduction in output error ``KL(FP32 || QDQ) - KL(FP32 || QDQ without the pair)`` (softmax
    of the logits, nats, mean over the images). It sees what a tensor's quantization does to the
    *logits*, including amplification by later layers (a SiLU's Sigmoid output multiplied by a
    large pre-activation, say) that a local error misses. Cost: one ONNX Runtime session and one
    pass over ``x`` per pair (minutes for MobileViTV2 on a 2-vCPU Xeon; seconds for ResNet8).

    ``how="local"``: the relative error each pair adds on its own,
    ``||post_qdq - pre_qdq|| / ||pre_qdq||`` (``onnxruntime.quantization.qdq_loss_debug``:
    collect_activations + create_activation_matching). Two passes, but blind to downstream
    amplification (for MobileViTV2 it ranks the critical stage-0 SiLU far down).

    Args:
        fp32_path: the FP32 parent ONNX.
        qdq_path: its QDQ INT8 ONNX, every activation quantized.
        x: ranking images, float32 (N, 3, S, S), preprocessed (calibration images, not the
            validation split that the gate uses).
        how: "output" or "local".
        cache_dir: where to keep the ranking, keyed by the sha256 of both models, the images
            and ``how`` (a re-run with another ``--max-drop`` skips the ranking); None: no cache.
        info: if given, ``info["cache"]`` is set to "hit", "miss" or "off".

    Returns:
        ``[(tensor_name, score), ...]``, most sensitive first; names of float activation tensors,
        as :func:`to_int8` ``float_activations`` takes them.

    Raises:
        EOEdgeError: unknown ``how``.
    """
    if how not in RANKINGS:
        raise EOEdgeError(f"unknown fallback ranking {how!r}; choose {', '.join(RANKINGS)}")
    cache, info = None, info if info is not None else {}
    info["cache"] = "off"
    if cache_dir is not None:
        import onnxruntime

        h = hashlib.sha256()
        for part in (sha256_file(fp32_path), sha256_file(qdq_path), how, onnxruntime.__version__):
            h.update(part.encode())
        h.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
        cache = Path(cache_dir) / f"rank-{h.hexdigest()[:24]}.json"
        info["cache"] = "miss"
        if cache.is_file():
            try:
                scores = [(str(t), float(v)) for t, v in json.loads(cache.read_text())]
                info["cache"] = "hit"
                return scores
            except (ValueError, TypeError):
                pass  # a damaged cache entry is recomputed
    scores = _rank(fp32_path, qdq_path, x, how, progress)
    if cache is not None:
        from .fileio import write_json

        cache.parent.mkdir(parents=True, exist_ok=True)
        write_json(cache, scores)
    return scores


def _rank(fp32_path: Path, qdq_path: Path, x: np.ndarray, how: str, progress: bool) -> list[tuple[str, float]]:
    import onnx

    qm = onnx.load(str(qdq_path))
    pairs = activation_qdq(qm)
    if how == "output":
        import copy

        import onnxruntime as ort
        from rich.progress import track

        def run(model_bytes: bytes) -> np.ndarray:
            so = ort.SessionOptions()
            so.log_severity_level = 3
            s = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
            name = s.get_inputs()[0].name
            return np.concatenate([s.run(None, {name: x[i:i + 64]})[0] for i in range(0, len(x), 64)])

        ref = run(Path(fp32_path).read_bytes())
        base = _softmax_kl(ref, run(qm.SerializeToString()))
        scores = []
        for t in track(list(pairs), "auto-fallback: ranking activations", disable=not progress, transient=True):
            m = copy.deepcopy(qm)
            keep_activations_float(m, [t])
            scores.append((t, base - _softmax_kl(ref, run(m.SerializeToString()))))
        scores.sort(key=lambda t: -t[1])
        return scores

    import tempfile

    from onnxruntime.quantization.qdq_loss_debug import (collect_activations, create_activation_matching,
                                                         modify_model_output_intermediate_tensors)

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
        if tensor not in pairs and f"{tensor}_QuantizeLinear_Input" in pairs:  # the pair in front of a graph output
            tensor, d = f"{tensor}_QuantizeLinear_Input", d
        if "pre_qdq" not in d or "post_qdq" not in d or tensor not in pairs:
            continue
        pre = np.concatenate([np.asarray(a).ravel() for a in d["pre_qdq"]])
        post = np.concatenate([np.asarray(a).ravel() for a in d["post_qdq"]])
        denom = float(np.linalg.norm(pre)) or 1.0
        scores.append((tensor, float(np.linalg.norm(post - pre)) / denom))
    scores.sort(key=lambda t: -t[1])
    return scores


def gate(fn_new: Callable, parent_logits: np.ndarray, data, cfg, progress: bool = True) -> dict[str, Any]:
    """Top-1 of an artifact and its FP32 parent on ``data``, their drop and top-1 agreement (percent).

    ``drop_se`` is the standard error of the drop (points) from the paired per-image differences
    (parent correct minus artifact correct, each -1, 0 or 1). The drops measured on two
    independent splits of the same size differ by about sqrt(2) x SE (a drop of 0.44 with SE 0.2
    on validation can be 0.8 on test), so a ``--max-drop`` meant to hold on other data needs a
    margin of about 1.5 SE below the goal.

    Args:
        fn_new: the artifact's logit function (float32 (N,3,S,S) -> (N,C)).
        parent_logits: the FP32 parent's logits on ``data``, float32 (len(data), C), computed
            once by the caller (the auto-fallback loop gates many candidates against them).
    """
    from .compare import compare_logits
    from .evaluate import predict_logits

    from .evaluate import check_classes

    check_classes(cfg.class_names, data.class_names)
    remap = np.array([list(cfg.class_names).index(c) for c in data.class_names])
    y = remap[data.labels]
    a = predict_logits(fn_new, data, cfg.input_size, cfg.mean, cfg.std, progress=progress, desc="gate: artifact")
    c = compare_logits(parent_logits, a, y)
    return {"top1": c["top1"], "parent_top1": c["reference_top1"], "drop": c["drop"], "drop_se": c["drop_se"],
            "top1_agreement": c["top1_agreement"], "max_abs_logit_diff": c["max_abs_diff"],
            "n_images": c["n_images"]}


def fallback_search(n_candidates: int, limit: float, attempt: Callable[[int], float]) -> tuple[int, dict[int, float]]:
    """Search the smallest count ``k`` of top-ranked activations kept in float whose gate passes.

    Doubling (1, 2, 4, ...) finds a passing count, then bisection between the last failing and
    the first passing count narrows it. The drop is not strictly monotonic in ``k``, so this is
    a search, not a proof of minimality.

    Args:
        n_candidates: how many ranked activations may be kept in float (>= 1).
        limit: the largest acceptable drop (points).
        attempt: ``k -> drop`` in points; writes/gates the candidate with ``k`` in float.

    Returns:
        ``(k, drops)``: the chosen count (the smallest passing one found, else the count with the
        smallest drop) and every tried ``{k: drop}``.

    Raises:
        ValueError: ``n_candidates < 1``.
    """
    if n_candidates < 1:
        raise ValueError("fallback_search needs at least one candidate")
    drops: dict[int, float] = {}

    def tried(k: int) -> float:
        if k not in drops:
            drops[k] = attempt(k)
        return drops[k]

    lo, k = 0, 1
    while k < n_candidates and tried(k) > limit:
        lo, k = k, min(2 * k, n_candidates)
    hi = k if tried(k) <= limit else None
    while hi is not None and hi - lo > 1:
        mid = (lo + hi) // 2
        if tried(mid) <= limit:
            hi = mid
        else:
            lo = mid
    return (hi if hi is not None else min(drops, key=drops.get)), drops
