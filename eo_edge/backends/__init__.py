"""Inference backends behind one :class:`~eo_edge.backends.base.Runner` interface
(the Polygraphy pattern): ONNX Runtime on x86 and in CI, OpenVINO on Intel CPUs/VPUs, TensorRT
on Jetson-class boards.

Backends are looked up by name with :func:`get_backend`; heavy runtimes (tensorrt, pycuda)
are imported lazily inside the backend module, so a machine without them can still use
everything else.
"""

from __future__ import annotations

from ..artifact.forms import BACKENDS
from .base import Backend, Runner


def get_backend(name: str) -> Backend:
    """Return the backend object for ``name`` ("onnxruntime", "openvino" or "tensorrt").

    Raises:
        EOEdgeError: unknown backend name.
        BackendUnavailable: the backend's runtime is not installed here (one-line message).
    """
    from ..artifact.forms import check_backend

    check_backend(name)
    if name == "onnxruntime":
        from .onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend()
    if name == "openvino":
        from ..home import home_dir
        from .openvino import OpenVINOBackend

        return OpenVINOBackend(cache_dir=home_dir(None) / "openvino-cache")
    from .tensorrt import TensorRTBackend

    return TensorRTBackend()


__all__ = ["BACKENDS", "Backend", "Runner", "get_backend"]
