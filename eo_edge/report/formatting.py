"""How a bench run's numbers are formatted, and the accessors every renderer shares.

Every number in the Markdown is formatted from the JSON with a fixed rule per unit
(see :data:`UNIT_DIGITS`), so any figure in a report can be traced back to its key:

========================  ==========================  =========================
quantity (unit)           JSON key(s)                 format (example)
========================  ==========================  =========================
percent (%)               top1, macro_*, *_pct        1 decimal (``96.5``)
latency (ms)              latency_ms.p50/p90/p99/...  3 decimals (``0.410``)
throughput (images/s)     throughput.images_per_s     0 decimals, ``,`` (``5,200``)
count                     params, n_images            ``,`` separated (``103,642``)
MACs, FLOPs (millions)    macs / 1e6, flops / 1e6     2 decimals (``58.40``)
size, RSS (MB)            size_mb, peak_rss_mb        3 / 1 decimals
power (mW)                power.*_mW                  0 decimals, ``,``
energy (mJ per image)     power.energy_per_image_*    3 decimals
MAC rate (GMAC/s)         mac_rate_gmacs, peak        2 decimals
fraction of peak (%)      100 x peak_fraction         1 decimal
latency ratio (x)         latency_ratio.*             3 decimals (``0.300``)
========================  ==========================  =========================

MACs = multiply-accumulates, FLOPs = 2 x MACs (see :mod:`eo_edge.measure.flops`).
"""

from __future__ import annotations

import math
from typing import Any

from .schema import NA

#: decimals per unit (see the module docstring)
UNIT_DIGITS = {"pct": 1, "ms": 3, "ips": 0, "M": 2, "size_mb": 3, "rss_mb": 1, "mW": 0, "mJ": 3, "gmacs": 2,
           "ratio": 3, "s": 1, "score": 3}


def fmt(x: Any, unit: str) -> str:
    """Format ``x`` for ``unit`` (a :data:`UNIT_DIGITS` key, or ``"int"``); ``None`` -> ``"n/a"``.

    Examples: ``fmt(0.41, "ms") == "0.410"``, ``fmt(5200.0, "ips") == "5,200"``,
    ``fmt(58398336 / 1e6, "M") == "58.40"``, ``fmt(103642, "int") == "103,642"``.
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return NA
    if unit == "int":
        return f"{int(x):,}"
    return f"{float(x):,.{UNIT_DIGITS[unit]}f}"


def fmt_signed(x: Any, unit: str = "pct") -> str:
    """Like :func:`fmt` with an explicit sign (``+0.4``, ``-1.2``)."""
    s = fmt(x, unit)
    return s if s == NA or s.startswith("-") else "+" + s


def fmt_millions(x: Any) -> str:
    """MACs/FLOPs count -> millions with 2 decimals (``58398336 -> "58.40"``)."""
    return NA if x is None else fmt(x / 1e6, "M")


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _power_mean(a: dict) -> Any:
    p = a.get("power") or {}
    return None if p.get("source", NA) == NA else p.get("mean_mW")


def _power_energy(a: dict) -> Any:
    p = a.get("power") or {}
    return None if p.get("source", NA) == NA else p.get("energy_per_image_mJ")


def _peak_pct(a: dict) -> Any:
    f = a.get("peak_fraction")
    return None if f is None else 100.0 * f


def _md_table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _artifacts(run: dict) -> list[dict]:
    return [a for a in run.get("artifacts") or [] if isinstance(a, dict)]


def _by_name(run: dict) -> dict[str, dict]:
    return {a.get("name"): a for a in _artifacts(run)}


def role_of(a: dict) -> str:
    """The role word shown for artifact ``a``: :func:`eo_edge.models.registry.display_role` of its
    ``model`` (MobileViTV2 is ``baseline`` even in a run that recorded ``teacher``), else its own
    ``role``."""
    from ..models.registry import display_role

    return display_role(a.get("model"), a.get("role"))


def with_display_roles(run: dict) -> dict:
    """A shallow copy of ``run`` whose artifacts carry :func:`role_of` as ``role`` (``run`` itself
    is not changed), so every renderer of one report shows one role word per model."""
    arts = [dict(a, role=role_of(a)) if isinstance(a, dict) else a for a in run.get("artifacts") or []]
    return {**run, "artifacts": arts} if "artifacts" in run else dict(run)
