"""The few CUDA calls the TensorRT runner needs, over pycuda or cuda-python.

One small interface, :class:`CudaApi`: device name / compute capability, one stream,
page-locked (pinned) host buffers, device buffers, async host<->device copies on the
stream, and CUDA events for device-side timing. Two implementations:

* :class:`PyCudaApi` - ``pycuda.driver`` (what JetPack users usually have), on the
  device's *primary* context, the one the CUDA runtime - and so TensorRT - uses;
* :class:`CudaPythonApi` - NVIDIA's ``cuda-python`` runtime bindings
  (``cuda.bindings.runtime``, or ``cuda.cudart`` in cuda-python < 12.6), as in the
  TensorRT Python samples' ``common_runtime.py``.

:func:`open_cuda` picks pycuda if importable, else cuda-python. Both are imported
lazily, inside functions, so this module imports on any machine. Call every method from
the thread that opened the API (the CUDA context is current on that thread only).
Sizes are in bytes, times in ms, pointers are plain ``int`` device addresses.
"""

from __future__ import annotations

import ctypes
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..errors import BackendUnavailable

NO_CUDA_BINDING = (
    "TensorRT backend unavailable: neither 'pycuda' nor 'cuda-python' is installed "
    "(pip install pycuda, or pip install cuda-python)"
)


class CudaApi(ABC):
    """Minimal CUDA surface for one device. ``binding`` names the library used."""

    binding: str = "?"
    version: str = "?"

    @abstractmethod
    def device_info(self) -> tuple[str, str]:
        """``(GPU name, compute capability "major.minor")``, e.g. ``("Orin", "8.7")``."""

    @abstractmethod
    def stream_handle(self) -> int:
        """The stream's ``cudaStream_t`` as an int, for ``execute_async_v3``."""

    @abstractmethod
    def pinned(self, nbytes: int) -> np.ndarray:
        """A page-locked host buffer: uint8 array of ``nbytes`` bytes (freed by :meth:`close`)."""

    @abstractmethod
    def device(self, nbytes: int) -> int:
        """Allocate ``nbytes`` of device memory; returns its address (freed by :meth:`close`)."""

    @abstractmethod
    def htod_async(self, dst: int, src: np.ndarray) -> None:
        """Enqueue a copy of the contiguous host array ``src`` (pinned) to device address ``dst``."""

    @abstractmethod
    def dtoh_async(self, dst: np.ndarray, src: int) -> None:
        """Enqueue a copy from device address ``src`` into contiguous pinned host array ``dst``."""

    @abstractmethod
    def event(self) -> Any:
        """A new CUDA event (timing enabled)."""

    @abstractmethod
    def record(self, event: Any) -> None:
        """Record ``event`` on the stream."""

    @abstractmethod
    def elapsed_ms(self, start: Any, end: Any) -> float:
        """ms between two recorded events (call after :meth:`synchronize`)."""

    @abstractmethod
    def synchronize(self) -> None:
        """Wait for all work enqueued on the stream."""

    @abstractmethod
    def close(self) -> None:
        """Free every buffer, event and the stream; release the context. Idempotent."""


class PyCudaApi(CudaApi):
    """:class:`CudaApi` over ``pycuda.driver`` (PyCUDA docs, "Device Interface").

    Raises:
        ImportError: pycuda is not installed.
        BackendUnavailable: no CUDA device ``index``.
    """

    binding = "pycuda"

    def __init__(self, index: int = 0):
        import pycuda  # type: ignore[import-not-found]
        import pycuda.driver as drv  # type: ignore[import-not-found]

        self._drv = drv
        self.version = getattr(pycuda, "VERSION_TEXT", "?")
        try:
            drv.init()
            self._dev = drv.Device(index)
            self._ctx = self._dev.retain_primary_context()
        except drv.Error as e:
            raise BackendUnavailable(f"TensorRT backend unavailable: CUDA device {index}: {e}") from e
        self._ctx.push()
        self._stream = drv.Stream()
        self._keep: list[Any] = []
        self._closed = False

    def device_info(self) -> tuple[str, str]:
        major, minor = self._dev.compute_capability()
        return str(self._dev.name()), f"{major}.{minor}"

    def stream_handle(self) -> int:
        return int(self._stream.handle)

    def pinned(self, nbytes: int) -> np.ndarray:
        buf = self._drv.pagelocked_empty(int(nbytes), np.uint8)
        self._keep.append(buf)
        return buf

    def device(self, nbytes: int) -> int:
        mem = self._drv.mem_alloc(max(1, int(nbytes)))
        self._keep.append(mem)
        return int(mem)

    def htod_async(self, dst: int, src: np.ndarray) -> None:
        self._drv.memcpy_htod_async(dst, src, self._stream)

    def dtoh_async(self, dst: np.ndarray, src: int) -> None:
        self._drv.memcpy_dtoh_async(dst, src, self._stream)

    def event(self) -> Any:
        ev = self._drv.Event()
        self._keep.append(ev)
        return ev

    def record(self, event: Any) -> None:
        event.record(self._stream)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(start.time_till(end))

    def synchronize(self) -> None:
        self._stream.synchronize()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for obj in reversed(self._keep):
            # DeviceAllocation.free(); a pagelocked array frees through its .base
            free = getattr(obj, "free", None) or getattr(getattr(obj, "base", None), "free", None)
            if callable(free):
                free()
        self._keep.clear()
        self._stream = None
        import gc

        gc.collect()  # destroy events/streams while the context is still current
        self._ctx.pop()
        self._ctx.detach()


def _import_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart  # type: ignore[import-not-found,no-redef]  # older cuda-python
    return cudart


class CudaPythonApi(CudaApi):
    """:class:`CudaApi` over cuda-python's runtime bindings (CUDA Runtime API reference:
    cudaMallocHost, cudaMemcpyAsync, cudaEventRecord, cudaEventElapsedTime).

    Raises:
        ImportError: cuda-python is not installed.
        BackendUnavailable: no CUDA driver or no device ``index``.
    """

    binding = "cuda-python"

    def __init__(self, index: int = 0):
        self._rt = _import_cudart()
        try:
            import cuda.bindings as _b  # type: ignore[import-not-found]

            self.version = getattr(_b, "__version__", "?")
        except ImportError:
            self.version = "?"
        self._index = index
        self._host: list[int] = []
        self._dev_ptrs: list[int] = []
        self._events: list[Any] = []
        self._stream: Any = None
        self._closed = False
        self._call(self._rt.cudaSetDevice(index), f"CUDA device {index}")
        self._stream = self._call(self._rt.cudaStreamCreate(), "cudaStreamCreate")

    def _call(self, result: Any, what: str) -> Any:
        """cuda-python returns ``(err, *values)``; raise on error, return the value(s)."""
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self._rt.cudaError_t.cudaSuccess:
            name = getattr(err, "name", str(err))
            raise BackendUnavailable(f"TensorRT backend unavailable: {what} failed ({name})")
        if not values:
            return None
        return values[0] if len(values) == 1 else tuple(values)

    def device_info(self) -> tuple[str, str]:
        prop = self._call(self._rt.cudaGetDeviceProperties(self._index), "cudaGetDeviceProperties")
        name = prop.name
        if isinstance(name, (bytes, bytearray)):
            name = bytes(name).split(b"\0", 1)[0].decode(errors="replace")
        return str(name), f"{prop.major}.{prop.minor}"

    def stream_handle(self) -> int:
        return int(self._stream)

    def pinned(self, nbytes: int) -> np.ndarray:
        n = max(1, int(nbytes))
        ptr = int(self._call(self._rt.cudaMallocHost(n), "cudaMallocHost"))
        self._host.append(ptr)
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_uint8)), (n,))[: int(nbytes)]

    def device(self, nbytes: int) -> int:
        ptr = int(self._call(self._rt.cudaMalloc(max(1, int(nbytes))), "cudaMalloc"))
        self._dev_ptrs.append(ptr)
        return ptr

    def htod_async(self, dst: int, src: np.ndarray) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call(self._rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, self._stream), "cudaMemcpyAsync")

    def dtoh_async(self, dst: np.ndarray, src: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call(self._rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, self._stream), "cudaMemcpyAsync")

    def event(self) -> Any:
        ev = self._call(self._rt.cudaEventCreate(), "cudaEventCreate")
        self._events.append(ev)
        return ev

    def record(self, event: Any) -> None:
        self._call(self._rt.cudaEventRecord(event, self._stream), "cudaEventRecord")

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self._call(self._rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def synchronize(self) -> None:
        self._call(self._rt.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        rt = self._rt
        for ev in self._events:
            rt.cudaEventDestroy(ev)
        for ptr in self._dev_ptrs:
            rt.cudaFree(ptr)
        for ptr in self._host:
            rt.cudaFreeHost(ptr)
        if self._stream is not None:
            rt.cudaStreamDestroy(self._stream)
        self._events, self._dev_ptrs, self._host, self._stream = [], [], [], None


def open_cuda(index: int = 0) -> CudaApi:
    """Open CUDA device ``index`` with pycuda if importable, else cuda-python.

    Raises:
        BackendUnavailable: neither binding is installed, or the device cannot be opened
            (one-line message).
    """
    try:
        return PyCudaApi(index)
    except ImportError:
        pass
    try:
        return CudaPythonApi(index)
    except ImportError:
        raise BackendUnavailable(NO_CUDA_BINDING) from None
