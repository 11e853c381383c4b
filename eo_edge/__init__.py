"""eo-edge: Earth-observation image classifiers from training to a satellite's payload computer.

Implements and extends Le et al., "Semantic Knowledge Distillation for Onboard Satellite
EO Image Classification" (arXiv 2411.00209): data, models, distillation, ONNX export,
FP16/INT8 compilation (ONNX Runtime, TensorRT) and an honest benchmark protocol.
"""

__version__ = "0.1.0"
