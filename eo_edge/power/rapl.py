"""RAPL power source: CPU package energy from the Linux powercap sysfs.

Each top-level zone ``<root>/intel-rapl:N`` (one per CPU package; AMD Zen CPUs use the
same driver and names) has (Linux kernel documentation, "Power Capping Framework"):

* ``energy_uj`` - energy counter in microjoules, wrapping to 0 after
  ``max_energy_range_uj``;
* ``max_energy_range_uj`` - the counter range in microjoules;
* ``name`` - ``package-N``, or ``psys`` (whole platform, some laptops).

Sub-zones ``intel-rapl:N:M`` (core, uncore, dram) are parts of their package and are not
added again; ``intel-rapl-mmio:*`` duplicates the package and is skipped. When a
``package-*`` zone exists only packages are summed (``psys`` would count them twice).

The counters are polled every ``interval_ms`` in a background thread so that a wrap
between two reads is seen and corrected (at most one wrap per poll; the range is tens
of kJ or more, so minutes at full power). Mean power = energy / time (uJ / s / 1000 = mW).

Since Linux 5.10 (CVE-2020-8694) ``energy_uj`` is readable by root only; unreadable
counters make the source unavailable rather than wrong.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from ..errors import BackendUnavailable
from .base import PowerResult, PowerSampler, make_result

DEFAULT_ROOT = "/sys/class/powercap"
_TOP_ZONE = re.compile(r"^intel-rapl:\d+$")


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


def find_zones(root: str | Path = DEFAULT_ROOT) -> list[tuple[str, Path, int]]:
    """Readable top-level RAPL zones under ``root``: ``(name, zone dir, max_energy_range_uj)``.

    Raises:
        BackendUnavailable: no zone, or a counter cannot be read (one line).
    """
    base = Path(root)
    try:
        dirs = sorted(p for p in base.iterdir() if _TOP_ZONE.match(p.name))
    except OSError as e:
        raise BackendUnavailable(f"power source RAPL unavailable: cannot list {base} ({e.strerror})") from e
    zones: list[tuple[str, Path, int]] = []
    for d in dirs:
        try:
            name = (d / "name").read_text().strip() if (d / "name").exists() else d.name
            max_range = _read_int(d / "max_energy_range_uj")
            _read_int(d / "energy_uj")
        except PermissionError as e:
            raise BackendUnavailable(
                f"power source RAPL unavailable: {d / 'energy_uj'} is readable by root only"
            ) from e
        except (OSError, ValueError) as e:
            raise BackendUnavailable(f"power source RAPL unavailable: cannot read {d}: {e}") from e
        zones.append((name, d, max_range))
    if not zones:
        raise BackendUnavailable(f"power source RAPL unavailable: no intel-rapl zone under {base}")
    packages = [z for z in zones if z[0].startswith("package")]
    return packages or zones


def energy_delta_uj(before: int, after: int, max_range_uj: int) -> int:
    """Energy in uJ between two reads of one counter, correcting a single wraparound.

    Pure function: ``after - before`` if the counter did not wrap, else
    ``after + max_range_uj - before``.
    """
    return after - before if after >= before else after + max_range_uj - before


class RaplSampler(PowerSampler):
    """CPU package power from RAPL energy counters.

    Args:
        root: the powercap directory (a parameter so tests can use a fake sysfs).
        interval_ms: counter polling interval in ms (wraparound detection).

    Raises:
        BackendUnavailable: no readable RAPL zone under ``root``.
    """

    name = "rapl"

    def __init__(self, root: str | Path = DEFAULT_ROOT, interval_ms: int = 100):
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        self.root = Path(root)
        self.interval_ms = int(interval_ms)
        self.zones = find_zones(self.root)
        self._lock = threading.Lock()
        self._last: list[int] = []
        self._total_uj = 0  # accumulated since polling started
        self._n_polls = 0
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle_mW: float | None = None
        self._t0: float | None = None
        self._acc0 = (0, 0)

    @property
    def scope(self) -> str:
        """``"CPU package (package-0+package-1)"`` style description of what is summed."""
        return "CPU package (" + "+".join(name for name, _d, _r in self.zones) + ")"

    @classmethod
    def available(cls, root: str | Path = DEFAULT_ROOT) -> tuple[bool, str]:
        """``(True, zone names)`` if RAPL counters are readable under ``root``, else
        ``(False, one-line reason)``."""
        try:
            zones = find_zones(root)
        except BackendUnavailable as e:
            return False, str(e)
        return True, ", ".join(name for name, _d, _r in zones)

    def idle_baseline(self, seconds: float) -> float | None:
        """Mean package power (mW) over the next ``seconds``; stored as the idle baseline."""
        self._ensure_polling()
        t0, acc0 = time.monotonic(), self._sample_now()
        time.sleep(max(0.0, seconds))
        t1, acc1 = time.monotonic(), self._sample_now()
        self._idle_mW = self._mean(t0, t1, acc0[0], acc1[0])
        return self._idle_mW

    def start(self) -> None:
        """Open the timed window."""
        self._ensure_polling()
        self._t0, self._acc0 = time.monotonic(), self._sample_now()

    def stop(self) -> PowerResult:
        """Close the window and return its :class:`PowerResult` (mean = energy / time).

        Raises:
            RuntimeError: :meth:`start` was not called.
        """
        if self._t0 is None:
            raise RuntimeError("RaplSampler.stop() called before start()")
        t1, acc1 = time.monotonic(), self._sample_now()
        t0, self._t0 = self._t0, None
        self._stop_polling()
        mean = self._mean(t0, t1, self._acc0[0], acc1[0])
        n_polls = acc1[1] - self._acc0[1]
        result = make_result(
            self.name, [], t1 - t0, self._idle_mW, mean_mW=mean, n_samples=n_polls, scope=self.scope
        )
        self._idle_mW = None
        return result

    def close(self) -> None:
        """Stop polling (safe to call twice)."""
        self._stop_polling()

    # -- internals ---------------------------------------------------------------------

    @staticmethod
    def _mean(t0: float, t1: float, uj0: int, uj1: int) -> float | None:
        if t1 <= t0:
            return None
        return (uj1 - uj0) / (t1 - t0) / 1000.0  # uJ/s -> mW

    def _read_counters(self) -> list[int]:
        return [_read_int(d / "energy_uj") for _n, d, _r in self.zones]

    def _sample_now(self) -> tuple[int, int]:
        """Poll once; return (accumulated uJ, number of polls so far)."""
        now = self._read_counters()
        with self._lock:
            if self._last:
                for i, (value, (_n, _d, max_range)) in enumerate(zip(now, self.zones)):
                    self._total_uj += energy_delta_uj(self._last[i], value, max_range)
            self._last = now
            self._n_polls += 1
            return self._total_uj, self._n_polls

    def _ensure_polling(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            self._last, self._total_uj, self._n_polls = [], 0, 0
        self._sample_now()
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._poll, name="rapl-poller", daemon=True)
        self._thread.start()

    def _stop_polling(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _poll(self) -> None:
        period = self.interval_ms / 1000.0
        while not self._stop_event.wait(period):
            try:
                self._sample_now()
            except (OSError, ValueError):  # transient read error: skip this poll
                continue
