"""The TensorRT Python module, imported lazily (:func:`import_tensorrt`: a one-line error where it is absent), its major version, and the process-wide logger whose first error a failed build reports."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import BackendUnavailable

_log = logging.getLogger("eo_edge.tensorrt")
_LOGGERS: dict[int, Any] = {}  # one logger per TensorRT module (tests swap modules)


UNAVAILABLE = (
    "TensorRT backend unavailable: the 'tensorrt' Python package is not installed "
    "(it ships with JetPack; on x86 use --backend onnxruntime)"
)


def import_tensorrt() -> Any:
    """``import tensorrt``, or raise :class:`BackendUnavailable` with one line."""
    try:
        import tensorrt as trt  # type: ignore[import-not-found]
    except ImportError as e:
        raise BackendUnavailable(UNAVAILABLE) from e
    except OSError as e:  # package present, libnvinfer missing or mismatched
        raise BackendUnavailable(f"TensorRT backend unavailable: cannot load the TensorRT libraries ({e})") from e
    return trt


def trt_major(version: str) -> int:
    """Major version of a TensorRT version string (``"10.3.0"`` -> 10); 0 if unreadable."""
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


def process_logger(trt: Any) -> Any:
    """The one TensorRT logger of this process (TensorRT keeps the first logger it is given
    globally; Polygraphy likewise uses a single logger): made on first use, per ``tensorrt``
    module. Its ``errors`` list is cleared by the caller before each build."""
    key = id(trt)
    if key not in _LOGGERS:
        _LOGGERS[key] = _make_logger(trt)
    return _LOGGERS[key]


def _make_logger(trt: Any) -> Any:
    """An ``ILogger`` that forwards warnings and errors to :mod:`logging` and keeps the
    errors, so a failed build can be reported in one line (Developer Guide, "The Python
    API > The Build Phase": custom loggers derive from ``trt.ILogger``)."""

    class CollectingLogger(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            sev = trt.ILogger.Severity
            if severity in (sev.INTERNAL_ERROR, sev.ERROR):
                self.errors.append(str(msg))
                _log.error("TensorRT: %s", msg)
            elif severity == sev.WARNING:
                _log.warning("TensorRT: %s", msg)
            else:
                _log.debug("TensorRT: %s", msg)

    return CollectingLogger()


def _first_error(logger: Any, default: str) -> str:
    errors = getattr(logger, "errors", [])
    return (errors[0].strip().splitlines()[0][:300] if errors else default)
