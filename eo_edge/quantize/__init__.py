"""FP32 ONNX -> FP16 and calibrated QDQ INT8 (ONNX Runtime's quantizer; no accuracy decisions here).

* :mod:`.convert`: :func:`~.convert.to_fp16`, :func:`~.convert.to_int8` (calibration cache, TensorRT-form s8 or u8).
* :mod:`.qdq`: Q/DQ surgery (which activations are quantized, keeping some in float, placement by op type).
* :mod:`.fallback`: ranking activations by their quantization error and the search for the fewest kept in float.

The accuracy verdict is :mod:`eo_edge.gate`'s; the ``eo-edge compile`` use case is :mod:`eo_edge.app.compile`.
"""
