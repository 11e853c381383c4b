"""Precision formats: the one table that compile, bench, report and the backends read.

Every artifact eo-edge makes is an ONNX file whose precision lives in the graph (FP32, FP16,
or explicit INT8 quantization in QDQ form). One row of :data:`FORMATS` says, for one such
form, the tag used in artifact names and reports, the file-name suffix, the INT8 activation
form and the backends that run it. The shape follows Ultralytics' ``export_formats()`` table
(ultralytics/engine/exporter.py), which drives both its export and its benchmark.

Facts behind the rows:

* INT8 ``s8`` = symmetric int8 activations (zero point 0). TensorRT's explicit quantization
  accepts only symmetric Q/DQ (TensorRT Developer Guide, "Working with Quantized Types >
  Explicit Quantization": "zero-point must be 0"); the same rule is in the TensorRT rule
  table of :mod:`eo_edge.backends.tensorrt`.
* INT8 ``u8`` = asymmetric uint8 activations, int8 weights (U8S8): ONNX Runtime's
  recommended form on x86 CPUs (onnxruntime docs, "Quantize ONNX models > Data type
  selection"); TensorRT cannot build it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import EOEdgeError

#: What an ONNX file's ``eo_edge.precision`` metadata may say.
PRECISIONS = ("fp32", "fp16", "int8")
#: Runtimes eo-edge can run artifacts on (see :mod:`eo_edge.backends`).
BACKENDS = ("onnxruntime", "tensorrt", "openvino")
#: INT8 activation forms.
ACTIVATIONS = ("s8", "u8")


@dataclass(frozen=True)
class Format:
    """One artifact form.

    Attributes:
        tag: name in artifact names and reports (``resnet8-int8-u8``): ``fp32``, ``fp16``,
            ``int8-s8``, ``int8-u8``.
        precision: one of :data:`PRECISIONS` (what the ONNX metadata records).
        activations: ``"s8"``/``"u8"`` for INT8, else ``None``.
        backends: backends that run this form.
        description: one line for help and reports.
    """

    tag: str
    precision: str
    activations: str | None
    backends: tuple[str, ...]
    description: str

    def suffix(self, method: str = "minmax") -> str:
        """File-name suffix before ``.onnx``: ``""``, ``".fp16"``, ``".int8-<method>"`` (s8) or
        ``".int8-<method>-u8"``. The calibration method is part of INT8 names."""
        if self.precision == "fp32":
            return ""
        if self.precision == "fp16":
            return ".fp16"
        return f".int8-{method}" + ("-u8" if self.activations == "u8" else "")

    def runs_on(self, backend: str) -> bool:
        """True when ``backend`` can run (or build an engine from) this form."""
        return backend in self.backends


FORMATS: tuple[Format, ...] = (
    Format("fp32", "fp32", None, BACKENDS, "FP32 ONNX from eo-edge export"),
    Format("fp16", "fp16", None, BACKENDS, "FP16 weights and activations, FP32 graph input and output"),
    Format("int8-s8", "int8", "s8", BACKENDS, "QDQ INT8, symmetric int8 activations (TensorRT-ready)"),
    Format("int8-u8", "int8", "u8", ("onnxruntime", "openvino"), "QDQ INT8, uint8 activations (fast on ONNX Runtime x86)"),
)
_BY_TAG = {f.tag: f for f in FORMATS}


def get_format(precision: str, activations: str | None = None) -> Format:
    """The row for ``precision`` (and, for INT8, ``activations``; default ``s8``).

    Raises:
        EOEdgeError: unknown precision or activation form.
    """
    check_precisions([precision])
    if precision != "int8":
        return _BY_TAG[precision]
    act = activations or "s8"
    if act not in ACTIVATIONS:
        raise EOEdgeError(f"unknown --activations {act!r}; choose auto, {', '.join(ACTIVATIONS)}")
    return _BY_TAG[f"int8-{act}"]


def format_by_tag(tag: str) -> Format:
    """The row whose :attr:`Format.tag` is ``tag`` (``fp32``, ``fp16``, ``int8-s8``, ``int8-u8``).

    Raises:
        EOEdgeError: unknown tag.
    """
    if tag not in _BY_TAG:
        raise EOEdgeError(f"unknown artifact format {tag!r}; known: {', '.join(_BY_TAG)}")
    return _BY_TAG[tag]


def format_of_metadata(md: dict[str, Any]) -> Format:
    """The row an eo-edge ONNX belongs to, from its decoded metadata (``precision``,
    ``int8_activations``); files without the key are FP32 exports.

    Raises:
        EOEdgeError: the metadata names a precision this table does not know.
    """
    prec = md.get("precision", "fp32")
    if prec not in PRECISIONS:
        raise EOEdgeError(f"the ONNX metadata names precision {prec!r}; eo-edge knows {', '.join(PRECISIONS)}")
    return get_format(prec, md.get("int8_activations"))


def check_precisions(precisions: Iterable[Any], where: str = "") -> list[str]:
    """Validate a list of precision names (from ``--precisions`` or a bench config); ``where``
    ends the error message (e.g. ``" in --precisions"``).

    Returns:
        the list, as strings.

    Raises:
        EOEdgeError: an entry is not one of :data:`PRECISIONS` (e.g. ``int4``), or the list is empty.
    """
    out = list(precisions)
    for p in out:
        if p not in PRECISIONS:
            raise EOEdgeError(f"unknown precision {p!r}{where}; choose from {', '.join(PRECISIONS)}")
    if not out:
        raise EOEdgeError(f"no precision given{where}; choose from {', '.join(PRECISIONS)}")
    return [str(p) for p in out]


def check_backend(backend: str) -> str:
    """Raises EOEdgeError unless ``backend`` is one of :data:`BACKENDS`; returns it."""
    if backend not in BACKENDS:
        raise EOEdgeError(f"unknown backend {backend!r}; choose {', '.join(BACKENDS)}")
    return backend


def int8_activations(backend: str, activations: str = "auto") -> str:
    """The INT8 activation form to build for ``backend``: ``auto`` picks the fastest form
    the backend runs (``u8`` for ONNX Runtime; ``s8`` for TensorRT and OpenVINO, where one
    symmetric file serves both).

    Raises:
        EOEdgeError: unknown backend or form, or a form the backend cannot run.
    """
    check_backend(backend)
    if activations == "auto":
        return "u8" if backend == "onnxruntime" else "s8"
    fmt = get_format("int8", activations)
    if not fmt.runs_on(backend):
        raise EOEdgeError(f"{backend} cannot run {fmt.tag} ({fmt.description}); TensorRT needs symmetric int8 "
                          "activations: use --activations s8 (or auto)")
    return activations


def artifact_path(onnx_path: Path, fmt: Format, method: str = "minmax") -> Path:
    """Self-explaining artifact name beside the FP32 file: ``resnet8.onnx`` ->
    ``resnet8.fp16.onnx``, ``resnet8.int8-minmax.onnx`` (s8) or ``resnet8.int8-minmax-u8.onnx``."""
    name = onnx_path.name
    stem = name[:-5] if name.endswith(".onnx") else onnx_path.stem
    stem = stem[:-5] if stem.endswith(".fp32") else stem
    return onnx_path.with_name(f"{stem}{fmt.suffix(method)}.onnx")


def sidecar_path(engine_path: str | Path) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    p = Path(engine_path)
    return p.with_name(p.name + ".json")


def engine_path(onnx_path: str | Path, engine_dir: str | Path | None = None, sha256: str | None = None) -> Path:
    """Where a TensorRT engine built from ``onnx_path`` lives: beside it (``model.int8-minmax.onnx``
    -> ``model.int8-minmax.engine``, what ``eo-edge compile --backend tensorrt`` writes), or, with
    ``engine_dir`` and the ONNX file's ``sha256``, in that cache as ``model.int8-minmax.<sha[:12]>.engine``
    (what ``eo-edge bench`` reuses only when it was built from these very bytes)."""
    p = Path(onnx_path)
    stem = p.name[:-5] if p.name.endswith(".onnx") else p.stem
    if engine_dir is None:
        return p.with_name(f"{stem}.engine")
    if not sha256:
        raise ValueError("an engine cache name needs the ONNX file's sha256")
    return Path(engine_dir) / f"{stem}.{sha256[:12]}.engine"
