"""Power and energy measurement, one interface for every source.

Sources, best first: tegrastats (Jetson boards), NVML (NVIDIA desktop/datacenter GPUs),
RAPL (Intel/AMD CPU package energy via powercap sysfs). Where none is readable,
power is reported as "n/a", never guessed.
"""

from __future__ import annotations

import shutil
from typing import Any

from .base import PowerResult, PowerSampler

#: Source names, best first (the order :func:`best_sampler` tries them).
SOURCES = ("tegrastats", "nvml", "rapl")


def best_sampler(interval_ms: int = 100, *, rapl_root: str = "/sys/class/powercap") -> PowerSampler | None:
    """The best power source readable here, or ``None`` (power is then "n/a").

    Order: tegrastats (executable on ``PATH``: a Jetson board, or a container with it
    mounted) > NVML (an NVIDIA GPU that reports power) > RAPL (readable powercap
    counters) > ``None``. Never raises: an unusable source is skipped.

    Args:
        interval_ms: sampling / polling interval in ms for the chosen source.
        rapl_root: powercap directory for RAPL (a parameter for tests).
    """
    from ..errors import BackendUnavailable

    if shutil.which("tegrastats"):
        from .tegrastats import TegrastatsSampler

        return TegrastatsSampler(interval_ms=interval_ms)
    try:
        from .nvml import NvmlSampler

        return NvmlSampler(interval_ms=interval_ms)
    except BackendUnavailable:
        pass
    try:
        from .rapl import RaplSampler

        return RaplSampler(root=rapl_root, interval_ms=interval_ms)
    except BackendUnavailable:
        pass
    return None


def describe_sources(*, rapl_root: str = "/sys/class/powercap") -> list[dict[str, Any]]:
    """Availability of every source, best first, for the benchmark's host record.

    Args:
        rapl_root: powercap directory for RAPL (a parameter for tests).

    Returns:
        ``[{"source": "tegrastats", "available": False, "detail": "one line"}, ...]``
        in :data:`SOURCES` order. Never raises.
    """
    from .nvml import NvmlSampler
    from .rapl import RaplSampler
    from .tegrastats import TegrastatsSampler

    probes = (TegrastatsSampler.available, NvmlSampler.available, lambda: RaplSampler.available(rapl_root))
    rows = []
    for name, probe in zip(SOURCES, probes):
        try:
            ok, detail = probe()
        except Exception as e:  # a broken driver must not break the host record
            ok, detail = False, f"{type(e).__name__}: {e}".splitlines()[0][:200]
        rows.append({"source": name, "available": bool(ok), "detail": detail})
    return rows


__all__ = ["SOURCES", "PowerResult", "PowerSampler", "best_sampler", "describe_sources"]
