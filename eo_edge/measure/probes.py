"""Host probes: the backend's GEMM peak per precision, peak process memory per artifact, memory a batch needs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import EOEdgeError


def gemm_peak(precision: str, threads: int | None, sizes: tuple[int, ...] = (256, 512, 1024),
              min_time_s: float = 0.15, backend: str = "onnxruntime") -> dict:
    """The backend's measured peak MAC rate (GMAC/s) for ``precision`` on square GEMMs.

    n x n x n MatMuls (n^3 MACs each) run by ``backend``'s own runner (ONNX Runtime or OpenVINO,
    so ``% of peak`` compares like with like) for every n in ``sizes``: FP32 MatMul, FP16 MatMul
    (FP16 weights, float32 I/O through Casts), INT8 as a QDQ MatMul quantized with
    ``quantize_static`` (fused into an integer GEMM by either runtime). Each size is timed for at least ``min_time_s`` seconds and
    the fastest single run of any size counts: on a shared VM the rate of one size swings
    between runs (README, x86 reference benchmark) and the best size depends on the cache
    hierarchy, so one size timed briefly under-reports the peak (a model then shows more than
    100 % of it). ``min_time_s`` was 0.3 s until issue 33: 0.15 s reads the same peaks within the
    host's run-to-run spread (+-30 % on the 2-vCPU host either way) in half the time
    (benchmarks/gemm-min-time/).

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

    from ..backends.onnxruntime import OnnxRuntimeRunner

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

            from ..quantize.convert import quiet_root_logger

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
            from ..backends import get_backend

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


#: Inferences the memory probe runs: the runtimes size their arenas and scratch buffers on the first
#: call at a batch size and reuse them after, so the high-water mark is reached by then (10 before the
#: default run's wall time was cut, issue 33: on the default set's 30 file-runtime pairs 3 and 10 calls read
#: within 0.56 %, benchmarks/rss-calls/; an OpenVINO file's first load, which writes its model cache, reads
#: up to 4.6 % more, whatever the count).
RSS_CALLS = 3


def peak_rss_many(jobs: list[tuple[Path, str]], batch: int, threads: int | None,
                  workers: int | None = None) -> list[float | None]:
    """:func:`peak_rss_mb` of every ``(path, backend)`` in ``jobs``, in order, ``workers`` probes at a
    time (default: the CPU count; TensorRT probes one at a time: they share one GPU). Each probe is its
    own process, so running them side by side does not change what each reads (its own ``VmHWM``, MB)."""
    from concurrent.futures import ThreadPoolExecutor

    n = 1 if any(be == "tensorrt" for _, be in jobs) else max(1, workers or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda j: peak_rss_mb(j[0], j[1], batch, threads), jobs))


def peak_rss_mb(path: Path, backend: str, batch: int, threads: int | None) -> float | None:
    """Peak resident memory (MB) of a fresh Python process that loads ``path`` and runs
    :data:`RSS_CALLS` inferences at ``batch``: the child's ``VmHWM`` (Linux /proc; ``ru_maxrss`` is not
    used because Linux carries the parent's high-water mark across fork+exec). None if the probe fails."""
    code = (
        "import resource,sys,numpy as np\n"
        "from eo_edge.backends import get_backend\n"
        f"r=get_backend({backend!r}).load({str(path)!r}, threads={threads!r})\n"
        "s=int(r.metadata['config']['input_size'])\n"
        "c=len(r.metadata['config'].get('mean') or [0, 0, 0])\n"
        f"x=np.zeros(({batch},c,s,s),np.float32)\n"
        f"[r.infer(x) for _ in range({RSS_CALLS})]\n"
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
