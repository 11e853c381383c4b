"""eo-edge's ONNX artifact contract: the graph I/O names and rule, metadata (``eo_edge.*`` keys in
``metadata_props``), and reading a file (:func:`load_onnx`, :func:`open_artifact`: read once, every
check done, handed to the use cases).

Graph contract: one input :data:`INPUT_NAME` float32 (N, C, S, S), already normalised with the
config's mean/std; one output :data:`OUTPUT_NAME` float32 (N, classes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EOEdgeError
from ..fileio import load_onnx  # noqa: F401  (the one ONNX reader; re-exported for the artifact's users)

INPUT_NAME = "input"  # the graph input of every eo-edge ONNX file
OUTPUT_NAME = "logits"  # its one output
METADATA_PREFIX = "eo_edge."  # metadata_props keys eo-edge writes and reads


def set_metadata(model_proto, props: dict[str, Any]) -> None:
    """Store ``props`` in ``metadata_props`` (values JSON-encoded unless already strings)."""
    existing = {p.key: p for p in model_proto.metadata_props}
    for k, v in props.items():
        s = v if isinstance(v, str) else json.dumps(v)
        if k in existing:
            existing[k].value = s
        else:
            e = model_proto.metadata_props.add()
            e.key, e.value = k, s


def read_metadata(path_or_proto) -> dict[str, Any]:
    """Read eo-edge metadata from an ONNX file or ``ModelProto``.

    Returns:
        dict: ``config`` (model config dict), ``precision``, ``source_sha256``, ``eo_edge_version``,
        and any other ``eo_edge.*`` key, JSON-decoded.

    Raises:
        EOEdgeError: unreadable file.
    """
    proto = load_onnx(path_or_proto) if isinstance(path_or_proto, (str, Path)) else path_or_proto
    return decode_metadata({p.key: p.value for p in proto.metadata_props})


def check_io(inputs: list[tuple[str, list]], n_outputs: int, name: str, channels: int | None = 3) -> None:
    """The one graph-interface rule of eo-edge artifacts: one image input (N, C, H, W) and one
    logits output; C must equal ``channels`` (the config's band count) when given.

    Args:
        inputs: ``(name, dims)`` of the graph inputs that are not initializers (dims may hold
            ``None``/strings/-1 for symbolic sizes).
        n_outputs: number of graph outputs.
        name: the file, for the message.

    Raises:
        EOEdgeError: two inputs, a non-4-D input, not 3 channels, or not one output (one line).
    """
    if len(inputs) != 1:
        raise EOEdgeError(f"{name} has {len(inputs)} inputs ({', '.join(n for n, _ in inputs)}); eo-edge runs "
                          "image classifiers with one input (N, 3, H, W)")
    iname, dims = inputs[0]
    if len(dims) != 4 or (channels and isinstance(dims[1], int) and dims[1] > 0 and dims[1] != channels):
        want = f"(N, {channels}, H, W)" if channels else "(N, C, H, W)"
        raise EOEdgeError(f"{name}: input '{iname}' has shape {list(dims)}; its eo-edge config feeds {want} images")
    if n_outputs != 1:
        raise EOEdgeError(f"{name} has {n_outputs} outputs; eo-edge expects one logits output")


def metadata_channels(model) -> int:
    """Input channels an ONNX's eo-edge config declares (one per normalisation mean; 3 when the
    config is absent or unreadable: those files are refused elsewhere with their own message)."""
    cfg = read_metadata(model).get("config")
    try:
        return len(cfg["mean"]) if isinstance(cfg, dict) and cfg.get("mean") else 3
    except TypeError:
        return 3


def proto_io(model) -> tuple[list[tuple[str, list]], int]:
    """``(inputs, n_outputs)`` of an ``onnx.ModelProto`` for :func:`check_io`."""
    init = {i.name for i in model.graph.initializer}
    ins = [(vi.name, [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim])
           for vi in model.graph.input if vi.name not in init]
    return ins, len(model.graph.output)


def decode_metadata(raw: dict[str, str]) -> dict[str, Any]:
    """Decode a ``metadata_props`` / ONNX Runtime ``custom_metadata_map`` dict."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if not k.startswith(METADATA_PREFIX):
            continue
        try:
            out[k[len(METADATA_PREFIX):]] = json.loads(v)
        except ValueError:
            out[k[len(METADATA_PREFIX):]] = v
    return out


@dataclass(frozen=True)
class OpenedArtifact:
    """An eo-edge ONNX file read once and checked: what every use case needs of it.

    Attributes:
        path: the file.
        proto: its ``onnx.ModelProto`` (external data not loaded).
        metadata: :func:`read_metadata` of it.
        config: its :class:`~eo_edge.artifact.config.ModelConfig`.
        form: its precision form (:class:`~eo_edge.artifact.forms.Format`).
        sha256: hex digest of the file's bytes.
    """

    path: Path
    proto: Any
    metadata: dict
    config: Any
    form: Any
    sha256: str


def open_artifact(path: str | Path) -> OpenedArtifact:
    """Read an eo-edge ONNX artifact once: parse it, check its I/O (:func:`check_io`), decode its
    config and precision form, hash it.

    Raises:
        EOEdgeError: missing or unreadable file, wrong I/O, no eo-edge metadata (one line).
    """
    from ..fileio import sha256_file
    from .config import ModelConfig
    from .forms import format_of_metadata

    p = Path(path)
    proto = load_onnx(p)
    check_io(*proto_io(proto), p.name, metadata_channels(proto))
    md = read_metadata(proto)
    if "config" not in md:
        raise EOEdgeError(f"{p} carries no eo-edge metadata; export it with `eo-edge export` first")
    return OpenedArtifact(p, proto, md, ModelConfig.from_dict(md["config"], p.name), format_of_metadata(md),
                          sha256_file(p))
