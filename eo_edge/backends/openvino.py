"""OpenVINO backend: the precision-carrying ONNX files run as they are on Intel CPUs (and the
Intel VPU family that Phi-Sat-1 flew), behind the same :class:`~eo_edge.backends.base.Runner`.

OpenVINO documentation, "Integrate OpenVINO with Your Application" (``Core.read_model`` reads
ONNX directly; ``compile_model``; ``InferRequest.infer``) and "Precision Control": on CPUs with
AVX-512-BF16 or AMX the CPU plugin runs f32 models in bf16 unless ``INFERENCE_PRECISION_HINT`` is
``f32``, so every artifact is compiled with ``f32``: FP16 and QDQ-INT8 files carry their own
precision in the graph, and an "fp32" row is FP32. Compiled models are cached under
``HOME/openvino-cache`` (``CACHE_DIR``). ``openvino`` is imported lazily: without it the backend
reports itself unavailable in one line (``pip install 'eo-edge[openvino]'``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, EOEdgeError
from .base import Backend, Runner

UNAVAILABLE = "OpenVINO backend unavailable: the 'openvino' package is not installed (pip install 'eo-edge[openvino]')"


def _ov():
    try:
        import openvino as ov  # type: ignore[import-not-found]
    except ImportError:
        raise BackendUnavailable(UNAVAILABLE) from None
    return ov


class OpenVINORunner(Runner):
    """One compiled OpenVINO model and one infer request on the CPU device.

    Args:
        path: an eo-edge ONNX file (FP32, FP16 or QDQ INT8).
        threads: ``INFERENCE_NUM_THREADS`` (None: OpenVINO's default).
        cache_dir: ``CACHE_DIR`` for compiled models (None: no cache).
    """

    backend = "openvino"

    def __init__(self, path: Path, threads: int | None = None, cache_dir: Path | None = None):
        ov = _ov()
        from ..artifact.onnx_meta import read_metadata

        path = Path(path)
        core = ov.Core()
        cfg: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            cfg["INFERENCE_NUM_THREADS"] = int(threads)
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            cfg["CACHE_DIR"] = str(cache_dir)
        try:
            self.compiled = core.compile_model(core.read_model(str(path)), "CPU", cfg)
        except Exception as e:  # noqa: BLE001 - OpenVINO raises RuntimeError with long messages
            raise EOEdgeError(f"OpenVINO cannot compile {path.name}: {str(e).strip().splitlines()[0][:200]}") from None
        super().__init__(path, read_metadata(path))
        self.threads = threads
        self._request = self.compiled.create_infer_request()
        self._out = self.compiled.output(0)

    def _infer(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, C, S, S) -> logits float32 (N, classes)."""
        res = self._request.infer({0: x}, share_inputs=True)  # x is C-contiguous and outlives the call: no copy
        return np.array(res[self._out], dtype=np.float32, copy=True)

    def close(self) -> None:
        self._request = None
        self.compiled = None


class OpenVINOBackend(Backend):
    """Build = compile once (a check, and the cache); load = :class:`OpenVINORunner`."""

    name = "openvino"

    def __init__(self, cache_dir: Path | None = None):
        self.cache_dir = cache_dir

    def available(self) -> tuple[bool, str]:
        try:
            return True, f"openvino {_ov().__version__}"
        except BackendUnavailable as e:
            return False, str(e)

    def build(self, onnx_path: Path, out_path: Path, **options: Any) -> dict[str, Any]:
        """OpenVINO runs the ONNX as it is: compile it once to check it (and fill the cache)."""
        t0 = time.perf_counter()
        OpenVINORunner(onnx_path, cache_dir=self.cache_dir).close()
        return {"backend": self.name, "artifact": str(onnx_path), "seconds": time.perf_counter() - t0,
                "versions": self.versions()}

    def load(self, path: Path, threads: int | None = None) -> OpenVINORunner:
        p = Path(path)
        if not p.is_file():
            raise EOEdgeError(f"model not found: {p}")
        if p.suffix.lower() != ".onnx":
            raise EOEdgeError(f"{p.name}: the openvino backend runs eo-edge ONNX files")
        return OpenVINORunner(p, threads=threads, cache_dir=self.cache_dir)

    def versions(self) -> dict[str, str]:
        try:
            return {"openvino": str(_ov().__version__)}
        except BackendUnavailable:
            return {}
