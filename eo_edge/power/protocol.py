"""The power protocol of ``eo-edge bench`` (benchmarks/jetson/README.md, "Protocol"), in one place.

Per artifact: settle ``settle_s`` after the previous burst, measure the idle baseline for
``idle_s``, then run back-to-back batches for at least ``window_s`` while the sampler records;
a window with fewer than ``min_samples`` power readings is kept but carries a warning (the
README asks for >= 100 samples: 30 s at tegrastats' 100 ms interval gives about 300).

Units: mW, s, mJ (1 mW x 1 s = 1 mJ).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..defaults import POWER_IDLE_S, POWER_SETTLE_S, POWER_WINDOW_S
from ..errors import EOEdgeError
from .base import PowerSampler


@dataclass(frozen=True)
class PowerProtocol:
    """Protocol knobs, in seconds and counts (defaults: the README's protocol)."""

    idle_s: float = POWER_IDLE_S
    settle_s: float = POWER_SETTLE_S
    window_s: float = POWER_WINDOW_S
    min_samples: int = 100

    def check(self) -> None:
        """Raises EOEdgeError on a meaningless value (negative, zero window, NaN)."""
        for name in ("idle_s", "settle_s", "window_s"):
            v = getattr(self, name)
            if not (v == v) or v < 0 or v == float("inf"):
                raise EOEdgeError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {v}")
        if self.window_s <= 0:
            raise EOEdgeError(f"--power-window-s must be > 0, got {self.window_s}")
        if self.min_samples < 1:
            raise EOEdgeError(f"the minimum sample count must be >= 1, got {self.min_samples}")


def measure_power(sampler: PowerSampler, infer: Callable[[np.ndarray], Any], xb: np.ndarray,
                  proto: PowerProtocol, *, sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    """Settle, idle baseline, then a timed window of inference on ``xb`` (float32 NCHW batch).

    Returns:
        The bench record's ``power`` object: every :class:`~eo_edge.power.base.PowerResult`
        field (``source``, ``mean_mW``, ``idle_mW``, ``above_idle_mW``, ``n_samples``,
        ``duration_s``, ``scope``, ``note``), plus ``n_images`` (images run inside the window),
        ``energy_per_image_mJ`` (total) and ``energy_per_image_above_idle_mJ`` (mJ, or None),
        ``protocol`` (the knobs used) and ``warning`` when ``n_samples < min_samples``.
    """
    sleep(proto.settle_s)
    sampler.idle_baseline(proto.idle_s)
    sampler.start()
    t0, n = clock(), 0
    while clock() - t0 < proto.window_s:
        infer(xb)
        n += len(xb)
    pr = sampler.stop()
    rec: dict[str, Any] = {**pr.to_dict(), "n_images": n,
                           "energy_per_image_mJ": pr.energy_per_image_mJ(n) if n else None,
                           "energy_per_image_above_idle_mJ": pr.energy_per_image_mJ(n, above_idle=True) if n else None,
                           "protocol": {"settle_s": proto.settle_s, "idle_s": proto.idle_s, "window_s": proto.window_s,
                                        "min_samples": proto.min_samples}}
    if pr.n_samples < proto.min_samples:
        rec["warning"] = (f"only {pr.n_samples} power samples in the {pr.duration_s:.1f} s window "
                          f"(the protocol asks for >= {proto.min_samples}: lengthen --power-window-s)")
    return rec
