"""The backend interface shared by ONNX Runtime and TensorRT.

A :class:`Backend` turns a (precision-carrying) ONNX file into a deployable artifact
(``build``) and opens an artifact for inference (``load`` -> :class:`Runner`).
Precision lives in the ONNX file: FP32, FP16 (an FP16 ONNX with FP32 graph I/O) or INT8
(an explicitly quantized QDQ ONNX). See ``eo_edge.quantize.convert``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EOEdgeError
from ..resource import Closeable


class Runner(Closeable, ABC):
    """An opened artifact ready for inference.

    ``close()`` releases the session or engine (a context manager too).

    Attributes:
        backend: backend name, e.g. ``"onnxruntime"``.
        path: the artifact's path.
        metadata: the eo-edge model config read from the artifact (class names, mean/std,
            input size, precision, ...), as a ``dict[str, Any]``.
    """

    backend: str = "?"

    def __init__(self, path: Path, metadata: dict[str, Any]):
        self.path = Path(path)
        self.metadata = metadata

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Run the model: check ``x`` against the artifact's own config, then :meth:`_infer` (the
        template of every backend, so no runner accepts what the artifact was not made for).

        Args:
            x: preprocessed images, float32, shape (N, C, S, S) with C the config's band count and
               S its input size, normalised with the model's mean/std (see
               ``eo_edge.data.transforms.preprocess``); other float dtypes are cast to float32.

        Returns:
            logits, float32, shape (N, num_classes).

        Raises:
            EOEdgeError: the artifact has an eo-edge config and ``x`` is not (N, C, S, S) as it says (one line).
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        want = self.input_chw  # None: a graph without an eo-edge config (a probe), run as it is
        if want is not None and (x.ndim != 4 or x.shape[1:] != want):
            raise EOEdgeError(f"{self.path.name}: input must have shape (N, {', '.join(map(str, want))}), "
                              f"got {tuple(x.shape)}")
        return self._infer(x)

    def infer_raw(self, x: np.ndarray) -> np.ndarray:
        """Run the graph on ``x`` as it is: no cast, no check against the config. For graphs whose
        input is not the normalised float32 image (a scene graph with its preprocessing folded in,
        :func:`eo_edge.scene.fold.fold_preprocessing`, takes raw uint8/uint16 tiles)."""
        return self._infer(np.ascontiguousarray(x))

    @abstractmethod
    def _infer(self, x: np.ndarray) -> np.ndarray:
        """The backend's run: ``x`` float32 (N, C, S, S), C-contiguous and checked -> logits float32 (N, classes)."""

    @property
    def input_chw(self) -> tuple[int, int, int] | None:
        """``(C, S, S)`` the artifact's config declares (bands, input size), or ``None`` without a config."""
        if not hasattr(self, "_input_chw"):
            cfg = self.metadata.get("config") if isinstance(self.metadata, dict) else None
            try:
                s = int(cfg["input_size"])
                self._input_chw = (len(cfg.get("mean") or (0, 0, 0)), s, s)
            except (TypeError, KeyError, ValueError):
                self._input_chw = None
        return self._input_chw

    @property
    def temperature(self) -> float:
        """The artifact's post-hoc softmax temperature T (``config.temperature`` in its metadata;
        1.0 when the model was never calibrated). The same T is carried by every artifact made
        from one model (FP32, FP16, INT8, engines), since compile copies the metadata."""
        return float(self.metadata.get("config", {}).get("temperature", 1.0) or 1.0)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities ``softmax(logits / T)`` (Guo et al., ICML 2017): the
        scalar divide before softmax, applied the same way on every backend.

        Args:
            x: as for :meth:`infer`.

        Returns:
            float64 (N, num_classes), rows summing to 1.
        """
        from ..metrics.stats import softmax

        return softmax(self.infer(x), self.temperature)

    def timing(self) -> dict[str, float] | None:
        """Device-side timing of the last :meth:`infer` call in ms (``{"gpu_ms": ...}``), if
        the backend measures it (TensorRT: CUDA events); ``None`` otherwise."""
        return None


class Backend(ABC):
    """A compile/runtime backend."""

    name: str = "?"

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """``(True, version)`` if usable here, else ``(False, one-line reason)``."""

    @abstractmethod
    def build(self, onnx_path: Path, out_path: Path, **options: Any) -> dict[str, Any]:
        """Build a deployable artifact from a precision-carrying ONNX file.

        Returns a JSON-able record of what was built (versions, options, seconds).
        Raises ``BackendUnavailable`` when the runtime is missing.
        """

    @abstractmethod
    def load(self, path: Path, threads: int | None = None) -> Runner:
        """Open an artifact made by :meth:`build` (or a plain ONNX file) for inference."""

    def versions(self) -> dict[str, str]:
        """Runtime versions, for the benchmark's host record."""
        return {}
