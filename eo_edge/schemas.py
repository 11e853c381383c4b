"""Every record eo-edge writes names its schema; the ids live here, one spelling each.

Spelling: ``eo-edge-<record>/<version>``. Records written before this spelling was settled used
``eo-edge.<record>/1`` for calibrate, check and faults; :func:`accepts` takes both, so old
records stay readable. (``eo-edge predict`` writes plain JSON Lines rows, no schema id: the
``eo-edge.predict/1`` id defined before was never written and is gone.) ``docs/bench-schema.md`` documents the bench run record.
"""

from __future__ import annotations

from typing import Sequence

BENCH = "eo-edge-bench/1"  # eo-edge bench: bench.json (docs/bench-schema.md)
COMPILE = "eo-edge-compile/1"  # eo-edge compile: the .json sidecar beside every artifact
ENGINE_SIDECAR = "eo-edge-tensorrt-engine/1"  # the .json sidecar beside every TensorRT engine
CALIBRATE = "eo-edge-calibrate/1"  # eo-edge calibrate --json
CHECK = "eo-edge-check/1"  # eo-edge check --json
FAULTS = "eo-edge-faults/1"  # eo-edge faults --json
SCENE = "eo-edge-scene/1"  # eo-edge scene: downlink.json (docs/scene-schema.md)
CHECKPOINT = "eo-edge-ckpt/1"  # eo-edge checkpoints (.pt)
SPLIT = "eo-edge-split/1"  # the committed EuroSAT split (eo_edge/resources/eurosat_split.json)
DATA = "eo-edge-data/1"  # a prepared dataset cache's manifest.json
LOGITS = "eo-edge-logits/1"  # the teacher-logit cache key

#: Old spellings still read: ``{old id: current id}``.
OLD_SPELLINGS = {"eo-edge.calibrate/1": CALIBRATE, "eo-edge.check/1": CHECK, "eo-edge.faults/1": FAULTS}

#: The most latency samples a bench record stores per measurement (``latency_ms.samples``).
MAX_SAMPLES = 2000


def accepts(schema_id: str, found: object) -> bool:
    """True when a record's ``schema`` value ``found`` is ``schema_id`` or one of its old spellings."""
    return found == schema_id or OLD_SPELLINGS.get(str(found)) == schema_id


def cap_samples(samples: Sequence[float], cap: int = MAX_SAMPLES) -> tuple[list, int]:
    """The latency samples to store as ``latency_ms.samples``: at most ``cap`` of them.

    Every ``stride``-th sample in time order, ``stride = ceil(len(samples) / cap)`` (1, all
    of them, when they fit). Percentiles are computed from all samples, not from these.

    Returns:
        ``(kept samples, stride)``; the stride is stored as ``latency_ms.samples_stride``.
    """
    stride = max(1, -(-len(samples) // cap))
    return list(samples[::stride]), stride
