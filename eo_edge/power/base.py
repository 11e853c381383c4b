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
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

from ..resource import Closeable


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


class PowerSampler(Closeable, ABC):
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


class EnergyCounterSampler(PowerSampler):
    """A sampler over a cumulative energy counter, polled in a background thread.

    The window's mean power is energy difference / time (mJ / s = mW), exact whatever
    the polling rate; ``n_samples`` is the number of polls inside the window. A subclass
    supplies :meth:`_read_counter`, :meth:`_begin_polling` and :meth:`_poll_once`, and
    may supply :meth:`_polled_mean` (used when the energy counter gives ``None``).

    Args:
        interval_ms: polling interval of the background thread in ms.
    """

    scope: str = ""
    #: whether the thread polls as soon as it starts (else only after each interval)
    _poll_on_start: bool = False

    def __init__(self, interval_ms: int = 100):
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        self.interval_ms = int(interval_ms)
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle_mW: float | None = None
        self._t0: float | None = None
        self._c0: tuple[float | None, int] = (None, 0)

    def idle_baseline(self, seconds: float) -> float | None:
        """Mean power (mW) of this source over the next ``seconds``; stored as the idle baseline."""
        clock = self._clock()
        self._ensure_polling()
        t0, c0 = clock.monotonic(), self._read_counter()
        clock.sleep(max(0.0, seconds))
        t1, c1 = clock.monotonic(), self._read_counter()
        self._idle_mW = self._mean(t0, t1, c0, c1)
        return self._idle_mW

    def start(self) -> None:
        """Open the timed window."""
        self._ensure_polling()
        self._t0, self._c0 = self._clock().monotonic(), self._read_counter()

    def stop(self) -> PowerResult:
        """Close the window and return its :class:`PowerResult` (mW, s; mean = energy / time).

        Raises:
            RuntimeError: :meth:`start` was not called.
        """
        if self._t0 is None:
            raise RuntimeError(f"{type(self).__name__}.stop() called before start()")
        t1, c1 = self._clock().monotonic(), self._read_counter()
        t0, c0, self._t0 = self._t0, self._c0, None
        self._stop_polling()
        mean = self._mean(t0, t1, c0, c1)
        n_polls = c1[1] - c0[1]
        result = make_result(
            self.name, [], t1 - t0, self._idle_mW, mean_mW=mean, n_samples=n_polls, scope=self.scope
        )
        self._idle_mW = None
        return result

    def close(self) -> None:
        """Stop polling (safe to call twice)."""
        if getattr(self, "_thread", None) is not None:
            self._stop_polling()

    # -- hooks -------------------------------------------------------------------------

    @abstractmethod
    def _read_counter(self) -> tuple[float | None, int]:
        """``(energy in mJ, or None if the counter is not usable; polls since polling began)``."""

    @abstractmethod
    def _begin_polling(self) -> None:
        """Reset the poll state (called before the polling thread starts)."""

    @abstractmethod
    def _poll_once(self) -> None:
        """One poll, from the background thread; must not raise on a transient error."""

    def _polled_mean(self, n0: int, n1: int) -> float | None:
        """Mean power (mW) of polls ``n0:n1``, used when the energy counter gives ``None``."""
        return None

    def _clock(self) -> Any:
        """The ``time`` module the window is timed with (a subclass returns its own module's)."""
        return time

    # -- internals ---------------------------------------------------------------------

    def _mean(self, t0: float, t1: float, c0: tuple[float | None, int], c1: tuple[float | None, int]) -> float | None:
        (e0, n0), (e1, n1) = c0, c1
        if e0 is not None and e1 is not None and t1 > t0:
            return (e1 - e0) / (t1 - t0)  # mJ / s = mW
        return self._polled_mean(n0, n1)

    def _ensure_polling(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._begin_polling()
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._poll_loop, name=f"{self.name}-poller", daemon=True)
        self._thread.start()

    def _stop_polling(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _poll_loop(self) -> None:
        period = self.interval_ms / 1000.0
        if self._poll_on_start and not self._stop_event.is_set():
            self._poll_once()
        while not self._stop_event.wait(period):
            self._poll_once()
