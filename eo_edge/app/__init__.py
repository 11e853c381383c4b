"""Use cases: one module per thing a user asks eo-edge to do. They validate before any work,
receive resolved inputs, write files atomically, log through a callback and return records;
they never print or parse a command line (that is :mod:`eo_edge.cli`).

* :mod:`.bench`: plan a bench run (request + ``--config`` + defaults), compile what is missing, measure, report.
* :mod:`.compile`: ``eo-edge compile``: make, gate, then publish FP16/INT8 artifacts.
* :mod:`.temperature`: ``eo-edge calibrate``: post-hoc temperature and keep threshold, stored in a model family.
* :mod:`.predict`: ``eo-edge predict``: per-image class, calibrated probability, keep flag.
* :mod:`.preflight`: ``eo-edge check``: the static TensorRT preflight (or OpenVINO's compile).
* :mod:`.faults`: ``eo-edge faults``: the bit-flip campaign.
* :mod:`.loading`: open a checkpoint, ONNX file or engine as a logit function.
"""
