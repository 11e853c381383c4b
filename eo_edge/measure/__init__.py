"""The benchmark protocol: how every number of ``eo-edge bench`` is measured.

* :mod:`.timing`: interleaved latency rounds, percentiles, ratio statistics, throughput.
* :mod:`.probes`: the backend's GEMM peak, peak process memory, the memory a batch needs.
* :mod:`.artifacts`: what is measured (:class:`~.artifacts.Artifact`), its name, the bench config file.
* :mod:`.run`: :func:`~.run.run_bench` (one protocol over a list of artifacts) and the bench gate.
* :mod:`.paper`: the paper's claims and the student-vs-baseline comparison, the fastest backend per artifact.
* :mod:`.flops`, :mod:`.corruptions`, :mod:`.faults`: MACs/params, robustness corruptions, bit flips.

Which files to measure and what to compile first is the use case's (:mod:`eo_edge.app.bench`).
"""
