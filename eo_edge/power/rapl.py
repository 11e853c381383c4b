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
import time
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable
from .base import EnergyCounterSampler

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


class RaplSampler(EnergyCounterSampler):
    """CPU package power from RAPL energy counters (mean = energy / time, in mW).

    Args:
        root: the powercap directory (a parameter so tests can use a fake sysfs).
        interval_ms: counter polling interval in ms (wraparound detection).

    Raises:
        BackendUnavailable: no readable RAPL zone under ``root``.
    """

    name = "rapl"

    def __init__(self, root: str | Path = DEFAULT_ROOT, interval_ms: int = 100):
        super().__init__(interval_ms)
        self.root = Path(root)
        self.zones = find_zones(self.root)
        self._last: list[int] = []
        self._total_uj = 0  # accumulated since polling started
        self._n_polls = 0

    @property
    def scope(self) -> str:  # type: ignore[override]
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

    # -- hooks (see EnergyCounterSampler) ---------------------------------------------

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

    def _read_counter(self) -> tuple[float | None, int]:
        total_uj, n_polls = self._sample_now()
        return total_uj / 1000.0, n_polls  # uJ -> mJ

    def _begin_polling(self) -> None:
        with self._lock:
            self._last, self._total_uj, self._n_polls = [], 0, 0
        self._sample_now()

    def _poll_once(self) -> None:
        try:
            self._sample_now()
        except (OSError, ValueError):  # transient read error: skip this poll
            pass

    def _clock(self) -> Any:
        return time  # this module's, so that tests can replace it
