"""What every power source returns, and the interface every sampler follows.

Units, everywhere in ``eo_edge.power``: power in milliwatts (mW), time in seconds (s),
energy in millijoules (mJ). 1 mW x 1 s = 1 mJ, so energy needs no conversion factor.

A sampler is used like this (``bench`` is the only caller)::

    sampler = best_sampler()            # or None: power is then reported as "n/a"
    if sampler is not None:
        sampler.idle_baseline(3.0)      # measured just before the timed window
        sampler.start()
    ...timed inference loop over n_images...
    if sampler is not None:
        result = sampler.stop()         # PowerResult
        result.energy_per_image_mJ(n_images)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class PowerResult:
    """Power over one timed window, from one source.

    Attributes:
        source: source name: ``"tegrastats"``, ``"nvml"`` or ``"rapl"``.
        mean_mW: mean power over the timed window in mW, or ``None`` when the source
            delivered no power reading inside the window (window shorter than the
            sampling interval, rails not readable, ...; see ``note``).
        idle_mW: mean power in mW over the idle baseline measured just before the
            window, or ``None`` if :meth:`PowerSampler.idle_baseline` was not called.
        above_idle_mW: ``mean_mW - idle_mW`` in mW (``None`` if either is missing); the
            power attributable to the workload.
        n_samples: number of power readings that fell inside the timed window.
        duration_s: length of the timed window in seconds (``stop() - start()``,
            monotonic clock).
        scope: what the number covers, e.g. ``"board input (VDD_IN)"``,
            ``"GPU board power"``, ``"CPU package"``; power from different scopes must
            not be compared with each other.
        note: empty, or one line explaining a ``None`` above.
    """

    source: str
    mean_mW: float | None
    idle_mW: float | None
    above_idle_mW: float | None
    n_samples: int
    duration_s: float
    scope: str = ""
    note: str = ""

    def energy_per_image_mJ(self, n_images: int, *, above_idle: bool = False) -> float | None:
        """Energy per image in mJ: ``mean_mW x duration_s / n_images`` (mW x s = mJ).

        Args:
            n_images: images processed inside the timed window (> 0).
            above_idle: use ``above_idle_mW`` instead of ``mean_mW`` (the energy the
                workload added on top of the idle board).

        Returns:
            mJ per image, or ``None`` if the power needed is ``None``.

        Raises:
            ValueError: ``n_images`` is not positive.
        """
        if n_images <= 0:
            raise ValueError(f"n_images must be positive, got {n_images}")
        power = self.above_idle_mW if above_idle else self.mean_mW
        if power is None:
            return None
        return power * self.duration_s / n_images

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of all fields (for the benchmark record)."""
        return asdict(self)


def mean_or_none(values: list[float]) -> float | None:
    """Arithmetic mean of ``values`` (mW), ``None`` for an empty list."""
    return math.fsum(values) / len(values) if values else None


def make_result(
    source: str,
    window_mW: list[float],
    duration_s: float,
    idle_mW: float | None,
    *,
    mean_mW: float | None = None,
    n_samples: int | None = None,
    scope: str = "",
    note: str = "",
) -> PowerResult:
    """Build a :class:`PowerResult` from the readings of a window.

    Args:
        source: source name.
        window_mW: power readings (mW) that fell inside the timed window.
        duration_s: window length in seconds.
        idle_mW: idle baseline in mW, or ``None``.
        mean_mW: override the mean (energy-counter sources compute it as
            energy / time rather than as the mean of readings).
        n_samples: override the reading count (default ``len(window_mW)``).
        scope: what the power covers.
        note: one-line explanation when a value is ``None``.
    """
    mean = mean_or_none(window_mW) if mean_mW is None else mean_mW
    above = mean - idle_mW if (mean is not None and idle_mW is not None) else None
    if mean is None and not note:
        note = f"no {source} power reading inside the {duration_s:.3f} s window"
    count = len(window_mW) if n_samples is None else n_samples
    return PowerResult(source, mean, idle_mW, above, count, duration_s, scope, note)


class PowerSampler(ABC):
    """A power source that measures one timed window at a time.

    Lifecycle: optional :meth:`idle_baseline`, then :meth:`start`, then :meth:`stop`.
    A sampler may be reused for another window after ``stop()``.
    """

    name: str = "?"

    @classmethod
    @abstractmethod
    def available(cls) -> tuple[bool, str]:
        """``(True, detail)`` if this source can be read here, else ``(False, one-line reason)``."""

    @abstractmethod
    def idle_baseline(self, seconds: float) -> float | None:
        """Measure mean power (mW) for ``seconds`` with nothing else running; remember it.

        Call it just before :meth:`start`; the value becomes ``PowerResult.idle_mW``.
        Returns ``None`` if no reading arrived.
        """

    @abstractmethod
    def start(self) -> None:
        """Open the timed window."""

    @abstractmethod
    def stop(self) -> PowerResult:
        """Close the timed window and return its :class:`PowerResult`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the source (subprocess, library handle); safe to call twice."""

    def __enter__(self) -> "PowerSampler":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
