"""``eo-edge bench``: one protocol for every number (accuracy, latency, throughput, MACs,
size, memory, power), and the paper's student-vs-MobileViT comparison re-measured.

Protocol (see ``docs/bench-schema.md`` for the JSON it writes):

* Accuracy: top-1 and macro precision/recall on the committed test split when the dataset
  is prepared, else on the shipped 1,000-image test subset (the report says which).
  Deterministic preprocessing, no test-time augmentation.
* Latency at batch 1: ``warmup`` untimed runs per artifact, then ``runs`` timed runs split
  into ``rounds`` blocks that are *interleaved* across artifacts (A B C A B C ...) in one
  process, so slow machine drift (thermal, frequency, neighbours) hits every artifact alike.
  Wall-clock per call with ``time.perf_counter_ns`` around the backend's run (host latency;
  TensorRT also reports GPU time from CUDA events). Reported: p50, p90, p99, mean, std (ms).
  Ratios between two artifacts are computed per round (median of A / median of B), and
  reported as the median and 5th-95th percentile of those per-round ratios.
* Throughput: images/s at a larger batch (``throughput_batch``), best of 3 timed passes of
  ``throughput_iters`` batches each.
* Cost: parameters, MACs and FLOPs of the ONNX graph at the deployed input size
  (:mod:`eo_edge.flops`; FLOPs = 2 x MACs), file size (MB = 1e6 bytes), peak resident
  memory of a fresh process that loads the artifact and runs it (MB).
* Power: the best source present (:func:`eo_edge.power.best_sampler`: tegrastats > NVML >
  RAPL), idle baseline right before a timed throughput window; otherwise "n/a".
* Close to the limit: achieved MAC rate (MACs x images/s) beside the same backend's peak
  for that precision, measured with a large GEMM (:func:`gemm_peak`).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__
from .errors import EOEdgeError
from .hostinfo import cpu_name, host_record  # noqa: F401  (cpu_name re-exported for benchmarks/)
from .hostinfo import busy_verdict, git_commit, host_load
from .metrics import mcnemar, wilson_interval
from .power.protocol import PowerProtocol
from .report.schema import SCHEMA, cap_samples

PAPER_CLAIMS = {"params_reduction_pct": 97.5, "flops_reduction_pct": 96.7, "power_reduction_pct": 86.2,
                "latency_reduction_pct": 63.5}


@dataclass
class BenchOptions:
    """Protocol knobs (counts of runs/images; threads = CPU threads per session)."""

    warmup: int = 50
    runs: int = 200
    rounds: int = 10
    throughput_batch: int = 64
    throughput_iters: int = 10
    threads: int | None = None
    backend: str = "onnxruntime"
    corruptions: list[str] = field(default_factory=list)
    severities: list[int] = field(default_factory=list)
    power_interval_ms: int = 100
    power: PowerProtocol = field(default_factory=PowerProtocol)
    peak: bool = True
    memory: bool = True
    engine_dir: Path | None = None  # TensorRT engines (default: beside each ONNX); reused only when valid
    max_drop: float = 0.5  # accuracy gate of compiled artifacts vs their FP32 parent, points (as compile's)
    faults: list[int] = field(default_factory=list)  # bit flips per trial (k); empty = no fault injection
    fault_repeats: int = 3
    fault_images: int = 500


@dataclass
class Artifact:
    """One thing to measure: a name (``<model>-<precision>``), its file and metadata."""

    name: str
    path: Path
    model: str
    role: str
    precision: str
    tag: str = ""  # the format tag that ends the name (eo_edge.formats: fp32, int8-u8, ...)
    source: str = ""
    runner: Any = None
    cfg: Any = None
    engine: Path | None = None  # the TensorRT engine measured (backend tensorrt)
    backend: str = ""  # the runtime that measures it ("" = BenchOptions.backend)
    result: dict = field(default_factory=dict)
    compiled_by: str = "input"  # "input" (given or found beside it) or "bench" (compiled into the cache here)
    logits: Any = None  # float32 (N, C) on the bench images, kept for the gate and paired tests
    labels: Any = None  # int64 (N,)


def percentiles(samples_ms: np.ndarray) -> dict[str, float]:
    """p50/p90/p99 (numpy 'linear' interpolation), mean, std (ddof=1) of latency samples in ms."""
    s = np.asarray(samples_ms, dtype=np.float64)
    return {"p50": float(np.percentile(s, 50)), "p90": float(np.percentile(s, 90)),
            "p99": float(np.percentile(s, 99)), "mean": float(s.mean()),
            "std": float(s.std(ddof=1)) if len(s) > 1 else 0.0, "n": int(len(s))}


def latency_record(samples_ms: np.ndarray) -> dict[str, Any]:
    """``latency_ms`` of one artifact at batch 1: :func:`percentiles` of all samples, and as
    ``samples`` at most the schema's cap of them (:func:`eo_edge.report.schema.cap_samples`)."""
    kept, stride = cap_samples(samples_ms)
    return {"batch": 1, **percentiles(samples_ms), "samples": [round(float(v), 5) for v in kept],
            "samples_stride": stride}


def interleaved_latency(fns: list[Callable[[], Any]], warmup: int, runs: int, rounds: int,
                        progress: Callable[[int], None] | None = None) -> list[list[np.ndarray]]:
    """Time each function ``runs`` times in ``rounds`` interleaved blocks.

    Args:
        fns: zero-argument callables (one inference each, batch 1).
        warmup: untimed calls per function first.
        runs: timed calls per function in total.
        rounds: blocks; block r runs every function ``runs // rounds`` times, in order.

    Returns:
        ``per_fn[i][r]``: float64 array of call latencies (ms) of function i in round r.
    """
    for f in fns:
        for _ in range(warmup):
            f()
    per_round = max(1, runs // rounds)
    out: list[list[np.ndarray]] = [[] for _ in fns]
    clock = time.perf_counter_ns
    for _r in range(rounds):
        for i, f in enumerate(fns):
            buf = np.empty(per_round, dtype=np.float64)
            for k in range(per_round):
                t0 = clock()
                f()
                buf[k] = (clock() - t0) / 1e6
            out[i].append(buf)
            if progress:
                progress(per_round)
    return out


def ratio_stats(a_rounds: list[np.ndarray], b_rounds: list[np.ndarray]) -> dict[str, float]:
    """Per-round ratio of median latencies (A / B): median and 5th/95th percentiles."""
    r = np.array([np.median(a) / np.median(b) for a, b in zip(a_rounds, b_rounds)])
    return {"median": float(np.median(r)), "p05": float(np.percentile(r, 5)), "p95": float(np.percentile(r, 95)),
            "rounds": int(len(r))}


def throughput(infer: Callable[[np.ndarray], Any], x: np.ndarray, iters: int) -> float:
    """Images/s: best of 3 passes of ``iters`` calls on batch ``x`` (float32 (B,3,S,S))."""
    infer(x)
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(iters):
            infer(x)
        best = max(best, iters * len(x) / (time.perf_counter() - t0))
    return best


def gemm_peak(precision: str, threads: int | None, sizes: tuple[int, ...] = (256, 512, 1024),
              min_time_s: float = 0.3, backend: str = "onnxruntime") -> dict:
    """The backend's measured peak MAC rate (GMAC/s) for ``precision`` on square GEMMs.

    n x n x n MatMuls (n^3 MACs each) run by ``backend``'s own runner (ONNX Runtime or OpenVINO,
    so ``% of peak`` compares like with like) for every n in ``sizes``: FP32 MatMul, FP16 MatMul
    (FP16 weights, float32 I/O through Casts), INT8 as a QDQ MatMul quantized with
    ``quantize_static`` (fused into an integer GEMM by either runtime). Each size is timed for at least ``min_time_s`` seconds and
    the fastest single run of any size counts: on a shared VM the rate of one size swings
    between runs (README, x86 reference benchmark) and the best size depends on the cache
    hierarchy, so one size timed briefly under-reports the peak (a model then shows more than
    100 % of it).

    Returns:
        ``{"gmacs_per_s": float | None, "method": str, "by_size": {n: GMAC/s}}`` (None when the
        op does not run here).
    """
    if not sizes:
        raise ValueError("gemm_peak needs at least one matrix size")
    label = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}.get(backend, backend)
    method = (f"{label} MatMul n x n x n (n = {'/'.join(map(str, sizes))}) and 3x3 Conv "
              f"(c = {'/'.join(str(max(8, n // 4)) for n in sizes)} channels), best, {precision}")
    by_size: dict[str, float] = {}
    try:
        for n in sizes:
            by_size[str(n)] = _gemm_rate(precision, threads, n, min_time_s, backend)
            by_size[f"conv{max(8, n // 4)}"] = _gemm_rate(precision, threads, n, min_time_s, backend, op="conv")
    except Exception as e:  # noqa: BLE001 - an op this build lacks is reported, not fatal
        why = (str(e).splitlines() or [type(e).__name__])[0][:120]
        return {"gmacs_per_s": None, "method": f"{method}: not runnable here ({why})", "by_size": by_size}
    if precision == "int8":
        method += " (QDQ, symmetric)"
    return {"gmacs_per_s": max(by_size.values()), "method": method, "by_size": by_size}


def _gemm_rate(precision: str, threads: int | None, n: int, min_time_s: float, backend: str = "onnxruntime",
               op: str = "matmul") -> float:
    """GMAC/s of the fastest of repeated probe runs (at least 5 runs and ``min_time_s`` s).

    ``op="matmul"``: an n x n x n MatMul (n^3 MACs); ``op="conv"``: a 3x3 Conv, stride 1, pad 1,
    c = n / 4 channels in and out on an (8, c, 16, 16) input (8 x 256 x 9 x c^2 MACs): the op a
    CNN spends its MACs in, which some runtimes run faster than a MatMul (OpenVINO's INT8 path)."""
    import tempfile

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from .backends.onnxruntime import OnnxRuntimeRunner

    rng = np.random.default_rng(0)
    if op == "conv":
        c = max(8, n // 4)
        a = rng.standard_normal((8, c, 16, 16)).astype(np.float32)
        w = (rng.standard_normal((c, c, 3, 3)) / (3 * c ** 0.5)).astype(np.float32)
        macs = 8 * 16 * 16 * 9 * c * c
        out_shape = [8, c, 16, 16]
    else:
        a = rng.standard_normal((n, n)).astype(np.float32)
        w = rng.standard_normal((n, n)).astype(np.float32)
        macs = n ** 3
        out_shape = [n, n]

    def core(x: str, y: str):
        return (helper.make_node("Conv", [x, "W"], [y], kernel_shape=[3, 3], pads=[1, 1, 1, 1]) if op == "conv"
                else helper.make_node("MatMul", [x, "W"], [y]))

    if precision == "fp16":  # float32 I/O, FP16 compute, as eo-edge's FP16 artifacts
        nodes = [helper.make_node("Cast", ["input"], ["x16"], to=TensorProto.FLOAT16), core("x16", "y16"),
                 helper.make_node("Cast", ["y16"], ["logits"], to=TensorProto.FLOAT)]
        w_arr = w.astype(np.float16)
    else:
        nodes, w_arr = [core("input", "logits")], w
    g = helper.make_graph(nodes, "gemm", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(a.shape))],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, out_shape)],
                          [numpy_helper.from_array(w_arr, "W")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with tempfile.TemporaryDirectory() as td:
        p = Path(td) / "g.onnx"
        onnx.save(model, str(p))
        if precision == "int8":
            from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

            from .compile import quiet_root_logger

            class R:
                def __init__(self):
                    self.d = [{"input": a}]

                def get_next(self):
                    return self.d.pop() if self.d else None

            q = Path(td) / "q.onnx"
            with quiet_root_logger():  # ORT's "consider pre-processing" hint
                quantize_static(str(p), str(q), R(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                                weight_type=QuantType.QInt8, extra_options={"ActivationSymmetric": True})
            p = q
        if backend == "onnxruntime":
            r = OnnxRuntimeRunner(p, threads=threads)
            sess, name = r.session, r.input_name

            def call() -> None:
                sess.run(None, {name: a})
        else:
            from .backends import get_backend

            r = get_backend(backend).load(p, threads=threads)

            def call() -> None:
                r.infer(a)
        try:
            call()
            best, runs, t_start = float("inf"), 0, time.perf_counter()
            while runs < 5 or time.perf_counter() - t_start < min_time_s:
                t0 = time.perf_counter()
                call()
                best = min(best, time.perf_counter() - t0)
                runs += 1
        finally:
            r.close()
    return macs / best / 1e9


def peak_rss_mb(path: Path, backend: str, batch: int, threads: int | None) -> float | None:
    """Peak resident memory (MB) of a fresh Python process that loads ``path`` and runs 10
    inferences at ``batch``: the child's ``VmHWM`` (Linux /proc; ``ru_maxrss`` is not used
    because Linux carries the parent's high-water mark across fork+exec). None if the probe fails."""
    code = (
        "import resource,sys,numpy as np\n"
        "from eo_edge.backends import get_backend\n"
        f"r=get_backend({backend!r}).load({str(path)!r}, threads={threads!r})\n"
        "s=int(r.metadata['config']['input_size'])\n"
        "c=len(r.metadata['config'].get('mean') or [0, 0, 0])\n"
        f"x=np.zeros(({batch},c,s,s),np.float32)\n"
        "[r.infer(x) for _ in range(10)]\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n")
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        return int(p.stdout.strip().splitlines()[-1]) / 1024.0 if p.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def available_memory_bytes() -> int | None:
    """``MemAvailable`` from ``/proc/meminfo`` in bytes (Linux), else None (no check possible)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def batch_memory_bytes(onnx_path: Path, batch: int) -> int:
    """An estimate of the memory one inference at ``batch`` needs, bytes: the float32 input plus
    the largest activation of the graph (what ONNX Runtime's arena asks for first; for ResNet8 at
    batch 100,000: 4.9 GB input + 26 GB activation), from ONNX shape inference, per image x batch."""
    import onnx

    m = onnx.load(str(onnx_path), load_external_data=False)
    init = {i.name for i in m.graph.initializer}
    try:
        m = onnx.shape_inference.infer_shapes(m)
    except Exception:  # noqa: BLE001 - best effort: the input alone is still an estimate
        pass

    def per_image(vi) -> int:
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in vi.type.tensor_type.shape.dim]
        return int(np.prod(dims[1:])) * 4 if dims else 0

    inputs = sum(per_image(vi) for vi in m.graph.input if vi.name not in init)
    acts = [per_image(vi) for vi in list(m.graph.value_info) + list(m.graph.output)]
    return batch * (inputs + max(acts, default=0))


def check_batch_memory(paths: list[Path], batch: int, available: int | None = None) -> None:
    """Refuse a throughput batch whose memory cannot fit (``bench --batch``), before any work.

    Raises:
        EOEdgeError: the estimate (:func:`batch_memory_bytes`) exceeds 80 % of available memory.
    """
    available = available_memory_bytes() if available is None else available
    if available is None:
        return
    for p in paths:
        if p.suffix != ".onnx" or not p.is_file():
            continue  # missing or other inputs: prepare_artifacts reports them
        try:
            need = batch_memory_bytes(p, batch)
        except Exception:  # noqa: BLE001 - unreadable: prepare_artifacts says why, in one line
            continue
        if need > 0.8 * available:
            raise EOEdgeError(f"--batch {batch}: {p.name} needs about {need / 1e9:.1f} GB at that batch, "
                              f"{available / 1e9:.1f} GB is available; choose a smaller --batch")


def reduction_pct(student: float | None, baseline: float | None) -> float | None:
    """100 x (1 - student / baseline), or None when either is missing."""
    if student is None or baseline is None or not baseline:
        return None
    return 100.0 * (1.0 - student / baseline)


def default_inputs() -> list[Path]:
    """The built-in default: every eo-edge ONNX shipped in ``models/`` (students and the
    MobileViTV2 baseline, in FP32, FP16 and INT8; located by :mod:`eo_edge.assets`).

    Raises:
        EOEdgeError: the shipped models are not found.
    """
    from .assets import MODELS, require_asset

    return sorted(require_asset(MODELS, "shipped models/").glob("*.onnx"))


def load_config(path: Path) -> dict:
    """Read a bench config (JSON): ``{"models": [paths], "precisions": [...], "backends": [...],
    "batch_sizes": [...], "protocol": {...}}``; relative paths are relative to the file.

    Raises:
        EOEdgeError: missing or malformed file.
    """
    from .fileio import read_json

    cfg = read_json(path, "bench config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("models", []), list):
        raise EOEdgeError(f"bench config {path}: expected an object with a 'models' list")
    from .formats import check_backend, check_precisions

    cfg["models"] = [str((path.parent / m).resolve()) if not Path(m).is_absolute() else m for m in cfg.get("models", [])]
    if "precisions" in cfg:  # validated here, before any artifact is built (an 'int4' entry used to build INT8)
        cfg["precisions"] = check_precisions(cfg["precisions"] if isinstance(cfg["precisions"], list) else [cfg["precisions"]],
                                             f" in bench config {path.name}")
    for b in cfg.get("backends") or []:
        check_backend(b)
    return cfg


def _role(cfg) -> str:
    """The role an artifact plays in a bench: the registry's word for its arch
    (:func:`eo_edge.models.registry.display_role`: MobileViTV2 is the ``baseline``, even where
    its file records ``teacher``), else the role its file records."""
    from .models.registry import display_role

    return display_role(cfg.arch, cfg.role)


def model_label(stem: str, cfg) -> str:
    """The model part of an artifact's name: the arch, plus what the file name adds to it.

    ``resnet8_eurosat64`` -> ``resnet8``; ``resnet16_kd_eurosat64`` -> ``resnet16_kd`` (the
    ``_<dataset><input px>`` tail is dropped; any lower-case word for the dataset where the file
    does not record it); a stem that does not start with the arch (a user's
    ``model.onnx``) gives the arch alone. Depends on the file only, so one file has one name in
    every run, whatever else is benched beside it.

    Args:
        stem: the input file's name without its extensions (``resnet8_eurosat64`` for
            ``resnet8_eurosat64.int8-minmax.onnx``).
        cfg: its :class:`eo_edge.models.registry.ModelConfig`.
    """
    base = stem.split(".")[0]
    if not base.startswith(cfg.arch + "_"):
        return cfg.arch
    rest = base[len(cfg.arch):]
    dataset = re.escape(str(cfg.extra.get("dataset") or "")) or "[a-z]+"  # files of older exports lack it
    return cfg.arch + re.sub(rf"_{dataset}{cfg.input_size}$", "", rest)


def prepare_artifacts(inputs: list[Path], precisions: list[str], cache: Path, log: Callable[[str], None],
                      backend: str = "onnxruntime", home: Path | None = None) -> list[Artifact]:
    """Turn checkpoints / ONNX files into precision-carrying ONNX artifacts.

    A checkpoint is exported (needs torch) and, like an FP32 ONNX, compiled to each requested
    precision that is not already given; results are cached in ``cache`` by content hash.
    Compiled inputs (FP16/INT8 ONNX) are measured as they are. INT8 made here uses uint8
    activations for ONNX Runtime (its fast U8S8 form on x86) and symmetric int8 for TensorRT.

    Raises:
        EOEdgeError: a missing or unreadable input.
    """
    from .compile import to_fp16, to_int8
    from .data.transforms import preprocess
    from .export import read_metadata
    from .fileio import sha256_file
    from .formats import (PRECISIONS, artifact_path, check_precisions, format_by_tag, format_of_metadata, get_format,
                          int8_activations)
    from .models.registry import ModelConfig

    precisions = check_precisions(precisions)
    cache.mkdir(parents=True, exist_ok=True)
    seen: dict[tuple[str, str], Artifact] = {}
    fp32_sources: list[tuple[Path, dict]] = []
    for p in inputs:
        p = Path(p)
        if not p.exists():
            raise EOEdgeError(f"bench input not found: {p}")
        if p.is_dir():
            raise EOEdgeError(f"bench input {p} is a folder; give checkpoint, ONNX or engine files")
        engine = None
        if p.suffix == ".engine":  # a built engine: measured as is; its source ONNX gives MACs and params
            if backend != "tensorrt":
                raise EOEdgeError(f"{p.name} is a TensorRT engine: bench it with --backend tensorrt")
            from .backends.trt_sidecar import load_sidecar

            side = load_sidecar(p)
            src = p.parent / str(side.get("source_onnx", ""))
            if not src.is_file() or sha256_file(src) != side.get("source_onnx_sha256"):
                raise EOEdgeError(f"{p.name}: its source ONNX {side.get('source_onnx')} (sha256 in the sidecar) must "
                                  "lie beside it; bench reads MACs and params from it")
            engine, p = p, src
        stem = p.name.split(".")[0]  # the file's own name, before a checkpoint is exported into the cache
        if p.suffix in (".pt", ".pth", ".ckpt"):
            from .export import export

            onnx_p = cache / f"{p.stem}-{sha256_file(p)[:10]}.onnx"
            if not onnx_p.is_file():
                log(f"exporting {p.name} -> {onnx_p.name}")
                export(p, onnx_p)
            p = onnx_p
        import onnx

        from .export import check_io, metadata_channels, proto_io

        proto = onnx.load(str(p), load_external_data=False) if p.suffix == ".onnx" else None
        if proto is not None:
            check_io(*proto_io(proto), p.name, metadata_channels(proto))  # before any work
        md = read_metadata(proto if proto is not None else p)
        if "config" not in md:
            raise EOEdgeError(f"{p} carries no eo-edge metadata; export it with `eo-edge export`")
        cfg = ModelConfig.from_dict(md["config"], p.name)
        fmt = format_of_metadata(md)
        key = (p.name.split(".")[0] if fmt.precision != "fp32" else p.stem, fmt.tag)
        label = model_label(stem, cfg)
        seen[key] = Artifact(f"{label}-{fmt.tag}", p, cfg.arch, _role(cfg), fmt.precision, fmt.tag, source=key[0],
                             engine=engine)
        if fmt.precision == "fp32":
            fp32_sources.append((p, md, label))
    act = int8_activations(backend)
    for p, md, label in fp32_sources:
        cfg = ModelConfig.from_dict(md["config"], p.name)
        for prec in precisions:
            fmt = get_format(prec, act)
            if prec == "fp32" or (p.stem, fmt.tag) in seen:
                continue
            beside = artifact_path(p, fmt)  # what `eo-edge compile` wrote next to it, if made from this very file
            if beside.is_file() and read_metadata(beside).get("parent_sha256") == sha256_file(p):
                log(f"using {beside.name} (compiled from {p.name})")
                seen[(p.stem, fmt.tag)] = Artifact(f"{label}-{fmt.tag}", beside, cfg.arch, _role(cfg), prec, fmt.tag,
                                                   source=p.stem)
                continue
            out = artifact_path(cache / f"{p.stem}-{sha256_file(p)[:10]}.onnx", fmt)
            if not out.is_file():
                log(f"compiling {p.name} -> {prec}")
                if prec == "fp16":
                    to_fp16(p, out)
                else:
                    from .data.resolve import calibration_set

                    calib = calibration_set(cfg, 512, home, log=log)  # the model's own data (EuroSAT: calibration/)
                    x = preprocess(calib[0], cfg.input_size, cfg.mean, cfg.std)
                    to_int8(p, out, x, method="minmax", image_hashes=calib[2], cache_dir=cache / "calib",
                            activations=act)
            seen[(p.stem, fmt.tag)] = Artifact(f"{label}-{fmt.tag}", out, cfg.arch, _role(cfg), prec, fmt.tag,
                                               source=p.stem, compiled_by="bench")
    arts = []
    for a in seen.values():
        fmt = format_by_tag(a.tag)
        if a.precision not in precisions:
            continue
        if fmt.runs_on(backend):
            arts.append(a)
        else:
            log(f"skipping {a.path.name}: {backend} cannot run {a.tag} ({fmt.description})")
    # unique names (two inputs with the same label and precision are named by their source file)
    names: dict[str, int] = {}
    for a in arts:
        names[a.name] = names.get(a.name, 0) + 1
    for a in arts:
        if names[a.name] > 1:  # e.g. two ResNet8 checkpoints: name them by their source file
            a.name = f"{a.source}-{a.tag}"
    order = {"student": 0, "teacher": 1, "baseline": 2}
    return sorted(arts, key=lambda a: (order.get(a.role, 3), a.model, a.name.removesuffix("-" + a.tag),
                                       PRECISIONS.index(a.precision)))


def run_bench(arts: list[Artifact], data, data_info: dict, opts: BenchOptions, *, command: str = "",
              progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Measure every artifact with one protocol and compare students with the baseline.

    Args:
        arts: from :func:`prepare_artifacts`.
        data: test images (PreparedData); data_info: its description for the report.

    Returns:
        The bench run dict (schema ``eo-edge-bench/1``, documented in docs/bench-schema.md).
        On Ctrl-C, what was finished is returned with ``"interrupted": true``.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .backends import get_backend
    from .data.transforms import preprocess
    from .evaluate import evaluate
    from .models.registry import ModelConfig

    arts = list(arts)  # artifacts that cannot be opened are dropped from this run's list only
    threads = opts.threads or min(os.cpu_count() or 1, 4)
    for a in arts:
        a.backend = a.backend or opts.backend
    bes = {name: get_backend(name) for name in sorted({a.backend for a in arts})}
    for b in bes.values():
        ok, why = b.available()
        if not ok:
            raise EOEdgeError(why)
    versions: dict[str, str] = {}
    for b in bes.values():
        versions.update(b.versions())
    run: dict[str, Any] = {
        "schema": SCHEMA, "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eo_edge_version": __version__, "eo_edge_commit": git_commit(), "command": command,
        "host": host_record(threads, versions), "host_load": {"before": host_load()},
        "data": data_info,
        "protocol": {"warmup": opts.warmup, "runs": opts.runs, "throughput_batch": opts.throughput_batch,
                     "throughput_iters": opts.throughput_iters, "interleaved": True, "rounds": opts.rounds,
                     "threads": threads, "backend": opts.backend, "timer": "time.perf_counter_ns, host latency"},
        "peak": {}, "artifacts": [], "comparisons": [], "failed": [], "interrupted": False}
    if opts.backend != "onnxruntime":
        run["protocol"]["power"] = {"settle_s": opts.power.settle_s, "idle_s": opts.power.idle_s,
                                    "window_s": opts.power.window_s, "min_samples": opts.power.min_samples}
    cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    try:
        with Progress(*cols, disable=not progress, transient=True) as prog:
            # open and evaluate
            t = prog.add_task("accuracy", total=len(arts))
            for a in list(arts):
                try:
                    be = bes[a.backend]
                    a.runner = (_trt_load(be, a, opts, log) if a.backend == "tensorrt"
                                else be.load(a.path, threads=threads))
                except EOEdgeError as e:  # one artifact that cannot be built/opened is a row, not an abort
                    log(f"[yellow]warning:[/] {a.name}: not measured: {e}")
                    run["failed"].append({"name": a.name, "path": str(a.path), "precision": a.precision,
                                          "error": str(e)})
                    arts.remove(a)
                    prog.advance(t)
                    continue
                a.cfg = ModelConfig.from_dict(a.runner.metadata["config"], a.path.name)
                rep, a.logits, a.labels = evaluate(a.runner.infer, data, a.cfg.input_size, a.cfg.mean, a.cfg.std,
                                                   a.cfg.class_names, batch_size=64, progress=False,
                                                   temperature=a.cfg.temperature, decision=a.cfg.decision,
                                                   return_logits=True)
                n_ok = int((a.logits.argmax(1) == a.labels).sum())
                dq = rep["decision"]
                a.result = {"name": a.name, "model": a.model, "role": a.role, "precision": a.precision,
                            "backend": a.backend, "path": str(a.path), "input_size": a.cfg.input_size,
                            "compiled_by": a.compiled_by,
                            "accuracy": {**{k: rep[k] for k in ("top1", "macro_precision", "macro_recall", "macro_f1",
                                                                "n_images")},
                                         "ci95": list(wilson_interval(n_ok, len(a.labels)))},  # Wilson 95 %
                            # confidence quality (decision.decision_quality: ECE over 15 bins, NLL, Brier at the
                            # model's temperature T, and at T = 1)
                            "calibration": {"ece_pct": rep["ece_pct"], "nll": rep["nll"], "brier": rep["brier"],
                                            "temperature": dq["temperature"], "uncalibrated": dq["uncalibrated"],
                                            "bins": rep["calibration"]["bins"]},  # reliability diagram
                            # selective classification: AURC, the stored keep rule checked here, the best possible
                            "decision": {"aurc_pct": dq["aurc_pct"], "at_threshold": dq["at_threshold"],
                                         "best_on_this_split": dq["best_on_this_split"],
                                         "risk_coverage": dq["risk_coverage"]}}
                prog.advance(t)
            _gate_compiled(arts, opts.max_drop, log)
            # interleaved batch-1 latency
            xs = {a.name: preprocess(np.asarray(data.images[:1]), a.cfg.input_size, a.cfg.mean, a.cfg.std) for a in arts}
            t = prog.add_task("latency (interleaved)", total=len(arts) * max(1, opts.runs // opts.rounds) * opts.rounds)
            from .backends.base import Runner

            device_ms: dict[str, list[float]] = {a.name: [] for a in arts}

            def timed_call(r, x, dev: list) -> None:
                r.infer(x)
                tm = r.timing()  # the device time of this call (TensorRT: CUDA events)
                if tm and "gpu_ms" in tm:
                    dev.append((float(tm["gpu_ms"]), float(tm.get("h2d_ms", np.nan)), float(tm.get("d2h_ms", np.nan))))

            # only runners that measure device time pay for reading it inside the timed loop
            fns = [(lambda r=a.runner, x=xs[a.name], d=device_ms[a.name]: timed_call(r, x, d))
                   if type(a.runner).timing is not Runner.timing else (lambda r=a.runner, x=xs[a.name]: r.infer(x))
                   for a in arts]
            rounds = interleaved_latency(fns, opts.warmup, opts.runs, opts.rounds, lambda n: prog.advance(t, n))
            for a, rr in zip(arts, rounds):
                s = np.concatenate(rr)
                a.result["latency_ms"] = latency_record(s)
                a.result["_rounds"] = rr
                dev = device_ms[a.name][-len(s):]  # the timed calls (warm-up left out)
                if dev:  # GPU compute, and the copies around it, per timed call (trtexec's split)
                    d = np.array(dev)
                    a.result["device_latency_ms"] = {"batch": 1, "timer": "CUDA events", **percentiles(d[:, 0]),
                                                     "h2d": percentiles(d[:, 1]), "d2h": percentiles(d[:, 2])}
            # throughput (+ power)
            from .power import best_sampler
            from .power.protocol import measure_power

            sampler = best_sampler(opts.power_interval_ms)
            t = prog.add_task("throughput", total=len(arts))
            for a in arts:
                xb = preprocess(np.asarray(data.images[: opts.throughput_batch]), a.cfg.input_size, a.cfg.mean, a.cfg.std)
                if len(xb) < opts.throughput_batch:
                    xb = np.concatenate([xb] * (opts.throughput_batch // len(xb) + 1))[: opts.throughput_batch]
                power: dict[str, Any] = {"source": "n/a"}
                if sampler is not None:
                    try:
                        power = measure_power(sampler, a.runner.infer, xb, opts.power)
                        if power.get("warning"):
                            log(f"[yellow]warning:[/] {a.name}: {power['warning']}")
                    except Exception as e:  # noqa: BLE001 - a failing power source must not lose the run
                        power = {"source": "n/a", "error": str(e).splitlines()[0][:200]}
                ips = throughput(a.runner.infer, xb, opts.throughput_iters)
                a.result["throughput"] = {"batch": opts.throughput_batch, "images_per_s": ips}
                a.result["power"] = power
                prog.advance(t)
            # cost
            from .flops import count_macs

            t = prog.add_task("MACs, size, memory", total=len(arts))
            for a in arts:
                c = count_macs(a.path, a.cfg.input_size)
                md_params = a.runner.metadata.get("params")
                a.result.update({"params": int(md_params if md_params else c["params"]),
                                 "params_source": "PyTorch trainable parameters (export metadata)" if md_params
                                 else "ONNX initializers (BatchNorm folded)", "params_onnx": int(c["params"]),
                                 "macs": int(c["macs"]), "flops": int(c["flops"]),
                                 "macs_input_size": a.cfg.input_size, "size_mb": a.path.stat().st_size / 1e6,
                                 **({"engine_size_mb": a.engine.stat().st_size / 1e6,
                                     "device_memory_mb": getattr(a.runner, "device_memory_mb", None)}
                                    if a.engine else {}),
                                 "peak_rss_mb": peak_rss_mb(a.path, a.backend, opts.throughput_batch, threads)
                                 if opts.memory else None})
                prog.advance(t)
            # robustness
            if opts.corruptions:
                from .corruptions import corrupt

                t = prog.add_task("robustness", total=len(opts.corruptions) * len(opts.severities) * len(arts))
                for name in opts.corruptions:
                    for sev in opts.severities:
                        cd = type(data)(corrupt(np.asarray(data.images), name, sev), data.labels, data.names,
                                        data.class_names)
                        for a in arts:
                            rep = evaluate(a.runner.infer, cd, a.cfg.input_size, a.cfg.mean, a.cfg.std,
                                           a.cfg.class_names, batch_size=64, progress=False)
                            a.result.setdefault("robustness", {}).setdefault(name, {})[str(sev)] = rep["top1"]
                            prog.advance(t)
            # fault tolerance: random bit flips in the stored weights (eo_edge.faults)
            if opts.faults:
                t = prog.add_task("bit flips", total=len(arts))
                ort_paths = {a.path for a in arts if a.backend == "onnxruntime"}
                for a in arts:  # the campaign runs in ONNX Runtime: once per file
                    if a.backend == "onnxruntime" or a.path not in ort_paths:
                        a.result["faults"] = fault_tolerance(a, data, opts, threads)
                    prog.advance(t)
            # peak per precision
            probed = [b for b in bes if b in ("onnxruntime", "openvino")]  # TensorRT: no GEMM probe (yet)
            if opts.peak and probed:  # the GEMM probe runs in each backend measured, like with like
                pairs = sorted({(a.backend, a.precision) for a in arts if a.backend in probed})
                t = prog.add_task("GEMM peak", total=len(pairs))
                run["peak_by_backend"] = {}
                for be_name, prec in pairs:
                    run["peak_by_backend"].setdefault(be_name, {})[prec] = gemm_peak(prec, threads, backend=be_name)
                    prog.advance(t)
                run["peak"] = dict(run["peak_by_backend"].get(opts.backend if opts.backend in probed else probed[0], {}))
    except KeyboardInterrupt:
        run["interrupted"] = True
        log("[yellow]interrupted: keeping the measurements already finished[/]")
    finally:
        for a in arts:
            if a.runner is not None:
                a.runner.close()
    for a in arts:
        pk = ((run.get("peak_by_backend") or {}).get(a.backend) or run["peak"]).get(a.precision, {}).get("gmacs_per_s")
        if "throughput" in a.result and "macs" in a.result:
            a.result["mac_rate_gmacs"] = a.result["macs"] * a.result["throughput"]["images_per_s"] / 1e9
            a.result["peak_fraction"] = a.result["mac_rate_gmacs"] / pk if pk else None
    run["host_load"]["after"] = host_load()
    spreads = {}
    for a in arts:
        rr = a.result.get("_rounds") or []
        meds = [float(np.median(r)) for r in rr if len(r)]
        if meds and min(meds) > 0:
            spreads[a.name] = max(meds) / min(meds)
    run["host_load"].update(busy_verdict(run["host_load"]["before"], run["host_load"]["after"], spreads))
    run["host_load"]["round_spread"] = spreads
    if run["host_load"]["busy"]:
        log("[yellow]warning:[/] the host was busy during this run (" + "; ".join(run["host_load"]["reasons"])
            + "): latencies may be inflated")
    run["comparisons"] = compare(arts)
    run["fastest_backend"] = fastest_backends([a.result for a in arts if a.result])
    for a in arts:
        a.result.pop("_rounds", None)
        if a.result:
            run["artifacts"].append(a.result)
    return run


def fault_tolerance(a: Artifact, data, opts: BenchOptions, threads: int | None) -> dict | None:
    """Top-1 of ``a`` with k random bits flipped in its stored weights (any bit position, the
    physical single-event-upset model), ``opts.fault_repeats`` seeded trials per k in
    ``opts.faults``, on a seeded sample of ``opts.fault_images`` of the bench images; run in ONNX
    Runtime on the artifact's ONNX (:func:`eo_edge.faults.run_campaign`). ``None`` for an artifact
    measured on another backend when the same file is also measured on ONNX Runtime."""
    import onnx

    from .data.transforms import preprocess
    from .faults import PRECISION_DTYPES, FaultModel, run_campaign

    rng = np.random.default_rng(0)
    n = len(a.labels)
    idx = np.sort(rng.choice(n, size=min(opts.fault_images, n), replace=False))
    xs = preprocess(np.asarray(data.images[idx]), a.cfg.input_size, a.cfg.mean, a.cfg.std)
    batches = [xs[i:i + 100] for i in range(0, len(xs), 100)]
    fm = FaultModel(onnx.load(str(a.path)), PRECISION_DTYPES[a.precision])
    res = run_campaign(fm, batches, a.labels[idx], opts.faults, ["any"], opts.fault_repeats, seed=0, threads=threads)
    return {"class": "any", "n_images": int(len(idx)), "repeats": opts.fault_repeats, "clean_top1": res["clean_top1"],
            "dtype": fm.dtypes()[0], "n_weights": fm.n_elements,
            "rows": [{k: r[k] for k in ("k", "mean_top1", "min_top1", "mean_drop", "worst_drop")} for r in res["rows"]]}


def _gate_compiled(arts: list[Artifact], max_drop: float, log: Callable[[str], None]) -> None:
    """The accuracy gate of ``eo-edge compile`` on every FP16/INT8 artifact of the run whose FP32
    parent is measured too: top-1 drop vs the parent on the bench images, its paired SE and
    top-1 agreement (:func:`eo_edge.compare.compare_logits`, the one logits comparator), passed
    when the drop is <= ``max_drop`` points. A failing artifact is still measured, with a warning
    and its gate shown in the report; the compile-time gate in its sidecar is kept beside it."""
    from .compare import compare_logits

    parents = {(a.source, a.backend): a for a in arts if a.precision == "fp32" and a.logits is not None}
    for a in arts:
        p = parents.get((a.source, a.backend))
        if a.precision == "fp32" or a.logits is None or p is None or len(p.logits) != len(a.logits):
            continue
        c = compare_logits(p.logits, a.logits, a.labels)
        g = {"parent": p.name, "parent_path": str(p.path), "drop": c["drop"], "drop_se": c["drop_se"],
             "top1_agreement": c["top1_agreement"], "max_drop": max_drop, "passed": bool(c["drop"] <= max_drop),
             "n_images": c["n_images"], "compile_gate": _sidecar_gate(a.path)}
        a.result["gate"] = g
        if not g["passed"]:
            how = ("compiled here by bench" if a.compiled_by == "bench" else f"from {a.path}")
            log(f"[yellow]warning:[/] {a.name} ({how}) fails the accuracy gate: top-1 drops {c['drop']:.2f} pts "
                f"(SE {c['drop_se']:.2f}) below {p.name} (> {max_drop} pts); make it with `eo-edge compile "
                f"--auto-fallback --max-drop {max_drop}` and bench that file")


def _sidecar_gate(path: Path) -> dict | None:
    """The gate ``eo-edge compile`` recorded in an artifact's ``.json`` sidecar, if any."""
    side = Path(str(path) + ".json")
    try:
        import json

        rec = json.loads(side.read_text())
        arts = [x for x in rec.get("artifacts", []) if Path(str(x.get("artifact", ""))).name == path.name]
        return arts[0].get("gate") if arts else None
    except (OSError, ValueError, AttributeError):
        return None


def _trt_load(be, a: Artifact, opts: BenchOptions, log: Callable[[str], None]):
    """Open ``a`` on TensorRT: an ``.engine`` as given; an ONNX through the engine cache
    (:meth:`~eo_edge.backends.tensorrt.TensorRTBackend.cached_engine`: reused only when its
    sidecar's source ONNX sha256, TensorRT version and device match; else built with the
    profile min 1, opt = max = the throughput batch, static for DLA)."""
    if a.engine is None:
        a.engine = be.cached_engine(a.path, opts.engine_dir or a.path.parent, precision=a.precision,
                                    opt_batch=opts.throughput_batch, log=log)
    return be.load(a.engine)


def fastest_backends(results: list[dict]) -> list[dict]:
    """Per (model, precision) measured on several backends: the fastest by batch-1 p50 latency,
    with every backend's p50 and images/s (bench --backend all). Empty with one backend."""
    by: dict[str, list[dict]] = {}
    for r in results:  # names are <model>-<form>@<backend> under --backend all
        if r.get("latency_ms"):
            by.setdefault(r["name"].split("@")[0], []).append(r)
    out = []
    for artifact, rs in sorted(by.items()):
        if len({r["backend"] for r in rs}) < 2:
            continue
        best = min(rs, key=lambda r: r["latency_ms"]["p50"])
        out.append({"artifact": artifact, "fastest": best["backend"], "fastest_name": best["name"],
                    "p50_ms": {r["backend"]: r["latency_ms"]["p50"] for r in rs},
                    "images_per_s": {r["backend"]: (r.get("throughput") or {}).get("images_per_s") for r in rs}})
    return out


def compare(arts: list[Artifact]) -> list[dict]:
    """Each student artifact vs each FP32 baseline (MobileViT family or role "baseline"): reductions in params,
    MACs, power, latency (percent), the interleaved latency ratio with its spread, top-1 delta,
    beside the paper's claims (Le et al., arXiv 2411.00209, abstract and Table 3)."""
    bases = [a for a in arts if a.role == "baseline" and a.precision == "fp32"
             and a.result.get("_rounds")]
    out = []
    for b in bases:
        for s in arts:
            if s.role != "student" or not s.result.get("_rounds") or s.backend != b.backend:
                continue  # like with like: student and baseline on the same runtime
            sr, br = s.result, b.result
            pw_s = sr.get("power", {}).get("mean_mW")
            pw_b = br.get("power", {}).get("mean_mW")
            out.append({
                "student": s.name, "baseline": b.name,
                "params_reduction_pct": reduction_pct(sr.get("params"), br.get("params")),
                "macs_reduction_pct": reduction_pct(sr.get("macs"), br.get("macs")),
                "power_reduction_pct": reduction_pct(pw_s, pw_b),
                "latency_reduction_pct": reduction_pct(sr["latency_ms"]["p50"], br["latency_ms"]["p50"]),
                "latency_ratio": ratio_stats(sr["_rounds"], br["_rounds"]),
                "top1_delta_pts": sr["accuracy"]["top1"] - br["accuracy"]["top1"],
                # paired on the same images: exact McNemar p-value and the 95 % interval of the difference
                "top1_paired": (mcnemar(s.logits.argmax(1) == s.labels, b.logits.argmax(1) == b.labels)
                                if s.logits is not None and b.logits is not None and len(s.logits) == len(b.logits)
                                else None),
                "paper": dict(PAPER_CLAIMS)})
    return out
