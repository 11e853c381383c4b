"""Preprocessing folded into the graph: a copy of an eo-edge ONNX that takes raw tiles.

On a 2-core payload computer the float32 conversion and normalisation of every tile in numpy
costs more CPU than INT8 inference itself and competes with it for the same cores
(``shared/notes/scene-throughput.md``). Folded, the reader thread only cuts tiles; the runtime
casts and normalises inside its own kernels (ONNX Runtime and OpenVINO fuse the ``Cast``,
``Mul`` and ``Add`` into what follows).
"""

from __future__ import annotations

import numpy as np

from ..artifact.onnx_meta import INPUT_NAME

RAW_INPUT = "raw_tiles"
#: scene dtypes the folded graph takes (ONNX tensor element types)
ONNX_TYPES = {"uint8": 2, "uint16": 4, "int16": 5, "float32": 1}


def fold_preprocessing(proto, a: np.ndarray, b: np.ndarray, dtype: str):
    """A copy of ``proto`` whose input ``raw_tiles`` is (N, C, T, T) in ``dtype`` (the scene's):
    ``Cast`` to float32, ``x * a + b`` per channel (``a``, ``b`` float32 (C,): the value mapping of
    :class:`eo_edge.scene.pipeline.Preprocess`), then the model unchanged.

    Raises:
        ValueError: a dtype other than :data:`ONNX_TYPES`' or a model without the ``input`` input.
    """
    import onnx
    from onnx import helper, numpy_helper

    if dtype not in ONNX_TYPES:
        raise ValueError(f"cannot fold preprocessing for {dtype} data")
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    g = m.graph
    inputs = [i for i in g.input if i.name == INPUT_NAME]
    if not inputs:
        raise ValueError(f"the model has no input {INPUT_NAME!r}")
    old = inputs[0]
    c = len(a)
    raw = helper.make_tensor_value_info(RAW_INPUT, ONNX_TYPES[dtype], None)
    raw.type.tensor_type.shape.CopyFrom(old.type.tensor_type.shape)
    g.initializer.extend([numpy_helper.from_array(np.asarray(a, np.float32).reshape(1, c, 1, 1), "raw_tiles_a"),
                          numpy_helper.from_array(np.asarray(b, np.float32).reshape(1, c, 1, 1), "raw_tiles_b")])
    nodes = [helper.make_node("Cast", [RAW_INPUT], ["raw_tiles_f"], to=onnx.TensorProto.FLOAT, name="fold_cast"),
             helper.make_node("Mul", ["raw_tiles_f", "raw_tiles_a"], ["raw_tiles_m"], name="fold_scale"),
             helper.make_node("Add", ["raw_tiles_m", "raw_tiles_b"], [INPUT_NAME], name="fold_shift")]
    for n in reversed(nodes):
        g.node.insert(0, n)
    g.input.remove(old)
    g.input.insert(0, raw)
    return m
