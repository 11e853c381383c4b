"""Run a deserialized TensorRT engine: pinned buffers, one stream, CUDA-event timing.

TensorRT Developer Guide, "The Python API > Performing Inference": set the input shape
(``set_input_shape``), bind device addresses (``set_tensor_address``) and enqueue with
``execute_async_v3(stream)`` - the name-based I/O API of TensorRT 8.5 and later (the only
one in TensorRT 10). Engines from TensorRT < 8.5 fall back to the binding API
(``set_binding_shape`` + ``execute_async_v2``).

Timing, as trtexec reports it ("Command-Line Programs > trtexec > Performance metrics"):
CUDA events are recorded on the stream before the host-to-device copy, around the
enqueue, and after the device-to-host copy, so :meth:`TensorRTRunner.timing` separates

* ``gpu_ms``     - "GPU Compute Time": enqueue start -> end events;
* ``h2d_ms`` / ``d2h_ms`` - the input / output copies ("H2D / D2H Latency");
* ``latency_ms`` - H2D + compute + D2H, event to event ("Latency");
* ``host_ms``    - host wall-clock time of the whole :meth:`~TensorRTRunner.infer` call
  ("Host Walltime" per query): includes the host-side copy into pinned memory, Python
  overhead and the final synchronisation.

All values are in ms and summed over the chunks when a call exceeds the engine's
maximum batch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..artifact.onnx_meta import INPUT_NAME
from ..errors import EOEdgeError
from .base import Runner
from .cuda_mem import CudaApi


class TensorRTRunner(Runner):
    """An opened TensorRT engine (made by ``TensorRTBackend.load``).

    Buffers are allocated once for the engine's maximum batch; larger inputs are run in
    chunks. Use the runner from the thread that loaded it (the CUDA context is current
    there). ``metadata`` is the eo-edge model config (ONNX ``metadata_props``, JSON
    values decoded) plus ``precision``.
    """

    backend = "tensorrt"

    def __init__(
        self,
        path: Path,
        metadata: dict[str, Any],
        *,
        trt: Any,
        runtime: Any,
        engine: Any,
        cuda: CudaApi,
        sidecar: dict[str, Any],
        logger: Any = None,
    ):
        super().__init__(path, metadata)
        self._trt, self._runtime, self._engine, self._cuda = trt, runtime, engine, cuda
        self._logger = logger  # the ILogger must outlive the runtime that logs to it
        self.sidecar = sidecar
        self._v3 = hasattr(engine, "num_io_tensors")  # name-based API: TensorRT >= 8.5
        self._context = engine.create_execution_context()
        if self._context is None:
            raise EOEdgeError(
                f"TensorRT could not create an execution context for {Path(path).name} (out of GPU memory?)"
            )
        io = self._io_tensors()
        inputs = [n for n, is_in, _dt in io if is_in]
        outputs = [n for n, is_in, _dt in io if not is_in]
        if inputs != [INPUT_NAME] or not outputs:
            raise EOEdgeError(
                f"{Path(path).name}: expected one input '{INPUT_NAME}' and an output, got {inputs} -> {outputs}"
            )
        self._out_name = outputs[0]
        dtypes = {n: dt for n, _i, dt in io}
        self._in_dtype, self._out_dtype = np.dtype(dtypes[INPUT_NAME]), np.dtype(dtypes[self._out_name])
        spec = sidecar.get("input", {})
        self.chw = tuple(int(v) for v in spec.get("chw", ()))
        self.max_batch = int(spec.get("max_batch", 1))
        self.min_batch = int(spec.get("min_batch", 1))
        if len(self.chw) != 3 or self.max_batch < 1:
            raise EOEdgeError(f"{Path(path).name}: sidecar lacks the input shape; rebuild the engine")

        self._batch: int | None = None
        self._set_batch(self.max_batch)
        self._out_per_item = int(np.prod(self._out_shape()[1:]))
        in_bytes = self.max_batch * int(np.prod(self.chw)) * self._in_dtype.itemsize
        out_bytes = self.max_batch * self._out_per_item * self._out_dtype.itemsize
        self._h_in, self._h_out = cuda.pinned(in_bytes), cuda.pinned(out_bytes)
        self._d_in, self._d_out = cuda.device(in_bytes), cuda.device(out_bytes)
        if self._v3:
            self._context.set_tensor_address(INPUT_NAME, self._d_in)
            self._context.set_tensor_address(self._out_name, self._d_out)
        self._ev = [cuda.event() for _ in range(4)]
        self._timing: dict[str, float] | None = None
        self._closed = False
        # device memory this engine's execution context needs (activations, scratch), bytes:
        # ICudaEngine.device_memory_size (TensorRT 8.x) / device_memory_size_v2 (10.x), plus the
        # I/O buffers allocated above
        scratch = getattr(engine, "device_memory_size_v2", None) or getattr(engine, "device_memory_size", None)
        self.device_memory_mb = (int(scratch) + in_bytes + out_bytes) / 1e6 if scratch is not None else None

    # -- public -------------------------------------------------------------------------

    def _infer(self, x: np.ndarray) -> np.ndarray:
        """Run the engine.

        Args:
            x: preprocessed images, float32, shape (N, C, H, W) with (C, H, W) the
               engine's input shape; cast to the engine's input type if that differs.

        Returns:
            logits, float32, shape (N, num_classes).

        Raises:
            EOEdgeError: wrong shape, or TensorRT failed to enqueue (one line).
        """
        if self._closed:
            raise EOEdgeError("this TensorRT runner is closed")
        x = np.asarray(x)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.chw:
            raise EOEdgeError(f"input must have shape (N, {', '.join(map(str, self.chw))}), got {tuple(x.shape)}")
        n = x.shape[0]
        if n == 0:
            self._timing = {"gpu_ms": 0.0, "h2d_ms": 0.0, "d2h_ms": 0.0, "latency_ms": 0.0, "host_ms": 0.0}
            return np.zeros((0, self._out_per_item), dtype=np.float32)
        t0 = time.perf_counter()
        totals = {"gpu_ms": 0.0, "h2d_ms": 0.0, "d2h_ms": 0.0, "latency_ms": 0.0}
        outs = []
        for start in range(0, n, self.max_batch):
            chunk = x[start : start + self.max_batch]
            out, t = self._run_chunk(chunk)
            outs.append(out)
            for k in totals:
                totals[k] += t[k]
        totals["host_ms"] = (time.perf_counter() - t0) * 1000.0
        self._timing = totals
        return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)

    def timing(self) -> dict[str, float] | None:
        """ms of the last :meth:`infer`: ``gpu_ms``, ``h2d_ms``, ``d2h_ms``, ``latency_ms``,
        ``host_ms`` (see the module docstring); ``None`` before the first call."""
        return self._timing

    def close(self) -> None:
        """Free buffers, events, stream, execution context and engine. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._ev = []
        self._h_in = self._h_out = None  # type: ignore[assignment]
        self._context = None
        self._engine = None
        self._runtime = None
        self._logger = None
        self._cuda.close()

    # -- internals ----------------------------------------------------------------------

    def _run_chunk(self, chunk: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        b = chunk.shape[0]
        if b < self.min_batch:  # pad up to the profile's minimum batch
            pad = np.zeros((self.min_batch - b, *self.chw), dtype=chunk.dtype)
            chunk = np.concatenate([chunk, pad], axis=0)
        run_b = chunk.shape[0]
        self._set_batch(run_b)
        in_nbytes = chunk.size * self._in_dtype.itemsize
        out_nbytes = run_b * self._out_per_item * self._out_dtype.itemsize
        h_in = self._h_in[:in_nbytes]
        np.copyto(h_in.view(self._in_dtype).reshape(chunk.shape), chunk, casting="unsafe")
        h_out = self._h_out[:out_nbytes]
        cuda, ev = self._cuda, self._ev
        cuda.record(ev[0])
        cuda.htod_async(self._d_in, h_in)
        cuda.record(ev[1])
        ok = self._enqueue(cuda.stream_handle())
        cuda.record(ev[2])
        cuda.dtoh_async(h_out, self._d_out)
        cuda.record(ev[3])
        cuda.synchronize()
        if not ok:
            raise EOEdgeError(f"TensorRT failed to run {self.path.name} (batch {run_b})")
        out = h_out.view(self._out_dtype).reshape(run_b, self._out_per_item)[:b].astype(np.float32, copy=True)
        t = {
            "h2d_ms": cuda.elapsed_ms(ev[0], ev[1]),
            "gpu_ms": cuda.elapsed_ms(ev[1], ev[2]),
            "d2h_ms": cuda.elapsed_ms(ev[2], ev[3]),
            "latency_ms": cuda.elapsed_ms(ev[0], ev[3]),
        }
        return out, t

    def _enqueue(self, stream: int) -> bool:
        if self._v3:
            return bool(self._context.execute_async_v3(stream))
        bindings = [0] * self._engine.num_bindings
        bindings[self._engine.get_binding_index(INPUT_NAME)] = self._d_in
        bindings[self._engine.get_binding_index(self._out_name)] = self._d_out
        return bool(self._context.execute_async_v2(bindings, stream))

    def _set_batch(self, b: int) -> None:
        if b == self._batch:
            return
        shape = (b, *self.chw)
        if self._v3:
            ok = self._context.set_input_shape(INPUT_NAME, shape)
        else:
            ok = self._context.set_binding_shape(self._engine.get_binding_index(INPUT_NAME), shape)
        if ok is False:
            raise EOEdgeError(f"batch {b} is outside the engine's profile ({self.min_batch}..{self.max_batch})")
        self._batch = b

    def _out_shape(self) -> tuple[int, ...]:
        if self._v3:
            dims = self._context.get_tensor_shape(self._out_name)
        else:
            dims = self._context.get_binding_shape(self._engine.get_binding_index(self._out_name))
        shape = tuple(int(d) for d in dims)
        if any(d < 0 for d in shape):
            raise EOEdgeError(f"{self.path.name}: output shape {list(shape)} is not resolved")
        return shape

    def _io_tensors(self) -> list[tuple[str, bool, Any]]:
        """``(name, is_input, numpy dtype)`` for every I/O tensor, in engine order."""
        trt, e = self._trt, self._engine
        if self._v3:
            out = []
            for i in range(e.num_io_tensors):
                name = e.get_tensor_name(i)
                is_in = e.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                out.append((name, is_in, trt.nptype(e.get_tensor_dtype(name))))
            return out
        return [
            (e.get_binding_name(i), bool(e.binding_is_input(i)), trt.nptype(e.get_binding_dtype(i)))
            for i in range(e.num_bindings)
        ]
