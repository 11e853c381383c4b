"""What an eo-edge artifact is, independent of how it was made or where it runs.

* :mod:`.config`: :class:`~.config.ModelConfig`, the per-model config every checkpoint and ONNX file carries.
* :mod:`.onnx_meta`: the graph I/O names and rule, ``eo_edge.*`` metadata, reading a file
  (:func:`~.onnx_meta.load_onnx`, :func:`~.onnx_meta.open_artifact`: read once, checked).
* :mod:`.forms`: the precision forms (FP32, FP16, INT8 s8/u8) and every file-name rule
  (artifact, sidecar, engine).
"""
