"""ONNX Runtime backend: the x86 (and CI) runtime for FP32, FP16 and QDQ INT8 ONNX files.

The artifact *is* the ONNX file (precision lives in it); ``build`` only validates it and
records versions. Sessions use the CPU execution provider (CUDA when asked for and
present), ``ORT_ENABLE_ALL`` graph optimisations, and a fixed number of intra-op threads
so latency numbers say how many cores they used. Source: onnxruntime docs,
"Performance > Tune performance > Thread management" and "Graph optimizations".
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, EOEdgeError
from .base import Backend, Runner


def _ort():
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - a core dependency
        raise BackendUnavailable(f"onnxruntime is not installed: {e}") from None
    return ort


def session_options(threads: int | None = None):
    """The ``onnxruntime.SessionOptions`` every eo-edge session uses: errors-only logging,
    ``ORT_ENABLE_ALL`` graph optimisation, ``threads`` intra-op threads (one inter-op) when given.

    Raises:
        BackendUnavailable: onnxruntime is not installed.
    """
    ort = _ort()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    return so


class OnnxRuntimeRunner(Runner):
    """An ``onnxruntime.InferenceSession`` over one ONNX file."""

    backend = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None, providers: list[str] | None = None):
        ort = _ort()
        so = session_options(threads)
        try:
            self.session = ort.InferenceSession(str(path), so, providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - InvalidProtobuf, NoSuchFile, Fail ...
            raise EOEdgeError(f"cannot load ONNX file {path}: {str(e).strip().splitlines()[0][:200]}") from None
        from ..artifact.onnx_meta import decode_metadata

        md = decode_metadata(self.session.get_modelmeta().custom_metadata_map)
        super().__init__(path, md)
        self.threads = threads
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.fixed_batch = self.session.get_inputs()[0].shape[0] if isinstance(self.session.get_inputs()[0].shape[0], int) else None

    def _infer(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, 3, S, S) -> logits float32 (N, C). A fixed-batch-1 graph is run image by image."""
        if self.fixed_batch and len(x) != self.fixed_batch:
            return np.concatenate([self.session.run([self.output_name], {self.input_name: x[i:i + 1]})[0]
                                   for i in range(len(x))])
        return self.session.run([self.output_name], {self.input_name: x})[0]


class OnnxRuntimeBackend(Backend):
    """Build = validate and copy; load = :class:`OnnxRuntimeRunner`."""

    name = "onnxruntime"

    def available(self) -> tuple[bool, str]:
        try:
            return True, _ort().__version__
        except BackendUnavailable as e:
            return False, str(e)

    def build(self, onnx_path: Path, out_path: Path, **options: Any) -> dict[str, Any]:
        """ONNX Runtime runs the precision-carrying ONNX as it is: check that it loads."""
        t0 = time.perf_counter()
        OnnxRuntimeRunner(onnx_path)
        return {"backend": self.name, "artifact": str(onnx_path), "seconds": time.perf_counter() - t0,
                "versions": self.versions()}

    def load(self, path: Path, threads: int | None = None) -> OnnxRuntimeRunner:
        p = Path(path)
        if not p.is_file():
            raise EOEdgeError(f"model not found: {p}")
        return OnnxRuntimeRunner(p, threads=threads)

    def versions(self) -> dict[str, str]:
        return {"onnxruntime": _ort().__version__}
