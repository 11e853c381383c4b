"""The bench run schema ``eo-edge-bench/1``: its one owner.

The schema string, every enum and limit the checks use, the checks themselves
(:func:`validate`, hand-written, no jsonschema dependency), the reader (:func:`load_run`)
and the writer's sample cap (:func:`cap_samples`). Every key with its unit is documented
in ``docs/bench-schema.md``.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from ..artifact.forms import PRECISIONS
from ..errors import EOEdgeError
from ..schemas import BENCH as SCHEMA
from ..schemas import MAX_SAMPLES, accepts, cap_samples  # noqa: F401  (the record rules; re-exported)

ROLES = ("student", "baseline", "teacher")
#: at most this many raw latency samples are stored per artifact
#: `power.source` when no power source was readable; the report also prints null as this
NA = "n/a"


class _V:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, msg: str) -> None:
        self.problems.append(f"{path}: {msg}")

    def key(self, d: dict, k: str, path: str, kind: Any, *, none_ok: bool = False, required: bool = True) -> Any:
        p = f"{path}.{k}" if path else k
        if k not in d:
            if required:
                self.add(p, "missing")
            return None
        v = d[k]
        if v is None:
            if not none_ok:
                self.add(p, "is null")
            return None
        ok = {"str": lambda: isinstance(v, str), "dict": lambda: isinstance(v, dict),
              "list": lambda: isinstance(v, list), "bool": lambda: isinstance(v, bool),
              "int": lambda: isinstance(v, int) and not isinstance(v, bool),
              "num": lambda: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}[kind]()
        if not ok:
            self.add(p, f"expected {kind}, got {type(v).__name__} {v!r}"[:160])
            return None
        return v

    def num(self, d: dict, k: str, path: str, *, lo: float | None = 0.0, hi: float | None = None,
            strict: bool = False, none_ok: bool = False, required: bool = True, integer: bool = False) -> Any:
        v = self.key(d, k, path, "int" if integer else "num", none_ok=none_ok, required=required)
        if v is None:
            return None
        p = f"{path}.{k}" if path else k
        if lo is not None and (v <= lo if strict else v < lo):
            self.add(p, f"{'not positive' if strict and lo == 0 else 'negative' if lo == 0 else f'below {lo}'} ({v})")
        if hi is not None and v > hi:
            self.add(p, f"above {hi} ({v})")
        return v


def validate(run: Any) -> list[str]:
    """Check a bench run against ``eo-edge-bench/1`` (``docs/bench-schema.md``).

    Returns:
        A list of problems, each ``"path: message"`` (e.g. ``"artifacts[2].latency_ms.p50:
        negative (-0.1)"``); an empty list means valid.
    """
    v = _V()
    if not isinstance(run, dict):
        return [f"run: expected a JSON object, got {type(run).__name__}"]
    schema = v.key(run, "schema", "", "str")
    if schema is not None and not accepts(SCHEMA, schema):
        v.add("schema", f"expected {SCHEMA!r}, got {schema!r}")
    created = v.key(run, "created", "", "str")
    if created is not None:
        try:
            datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            v.add("created", f"not an ISO 8601 time: {created!r}")
    v.key(run, "eo_edge_version", "", "str")
    v.key(run, "command", "", "str")

    host = v.key(run, "host", "", "dict")
    if host is not None:
        v.key(host, "cpu", "host", "str")
        v.num(host, "logical_cpus", "host", lo=1, integer=True)
        v.num(host, "threads_used", "host", lo=1, integer=True, none_ok=True)
        v.key(host, "os", "host", "str")
        v.key(host, "python", "host", "str")
        vers = v.key(host, "versions", "host", "dict")
        for name, ver in (vers or {}).items():
            if not isinstance(ver, str):
                v.add(f"host.versions.{name}", f"expected str, got {type(ver).__name__}")
        if "jetson" not in host:
            v.add("host.jetson", "missing (null when not a Jetson)")
        elif host["jetson"] is not None and not isinstance(host["jetson"], (dict, str)):
            v.add("host.jetson", "expected null, an object or a string")
        ps = v.key(host, "power_sources", "host", "list")
        for i, s in enumerate(ps or []):
            p = f"host.power_sources[{i}]"
            if not isinstance(s, dict):
                v.add(p, "expected an object")
                continue
            v.key(s, "source", p, "str")
            v.key(s, "available", p, "bool")
            v.key(s, "detail", p, "str", required=False)

    data = v.key(run, "data", "", "dict")
    if data is not None:
        v.key(data, "kind", "data", "str")
        v.num(data, "n_images", "data", lo=1, integer=True)
        v.key(data, "source", "data", "str")

    proto = v.key(run, "protocol", "", "dict")
    if proto is not None:
        v.num(proto, "warmup", "protocol", integer=True)
        v.num(proto, "runs", "protocol", lo=1, integer=True)
        v.num(proto, "throughput_batch", "protocol", lo=1, integer=True)
        v.key(proto, "interleaved", "protocol", "bool")
        v.num(proto, "rounds", "protocol", integer=True)
        v.num(proto, "threads", "protocol", lo=1, integer=True, none_ok=True)

    peak = v.key(run, "peak", "", "dict", required=False, none_ok=True)
    for prec, pk in (peak or {}).items():
        p = f"peak.{prec}"
        if not isinstance(pk, dict):
            v.add(p, "expected an object")
            continue
        v.num(pk, "gmacs_per_s", p, strict=True, none_ok=True)
        v.key(pk, "method", p, "str")

    arts = v.key(run, "artifacts", "", "list")
    names: list[str] = []
    if arts is not None and not arts:
        v.add("artifacts", "empty")
    for i, a in enumerate(arts or []):
        p = f"artifacts[{i}]"
        if not isinstance(a, dict):
            v.add(p, "expected an object")
            continue
        name = v.key(a, "name", p, "str")
        if name is not None:
            if name in names:
                v.add(f"{p}.name", f"duplicate artifact name {name!r}")
            names.append(name)
        v.key(a, "model", p, "str")
        role = v.key(a, "role", p, "str")
        if role is not None and role not in ROLES:
            v.add(f"{p}.role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        prec = v.key(a, "precision", p, "str")
        if prec is not None and prec not in PRECISIONS:
            v.add(f"{p}.precision", f"expected one of {', '.join(PRECISIONS)}, got {prec!r}")
        v.key(a, "backend", p, "str")
        v.key(a, "path", p, "str")
        v.num(a, "input_size", p, lo=1, integer=True)
        acc = v.key(a, "accuracy", p, "dict", none_ok=True)
        if acc is not None:
            for k in ("top1", "macro_precision", "macro_recall", "macro_f1"):
                v.num(acc, k, f"{p}.accuracy", hi=100.0)
            v.num(acc, "n_images", f"{p}.accuracy", lo=1, integer=True)
        lat = v.key(a, "latency_ms", p, "dict")
        if lat is not None:
            q = f"{p}.latency_ms"
            v.num(lat, "batch", q, lo=1, integer=True)
            pct = [v.num(lat, k, q) for k in ("p50", "p90", "p99")]
            v.num(lat, "mean", q)
            v.num(lat, "std", q)
            n = v.num(lat, "n", q, lo=1, integer=True)
            if None not in pct and not pct[0] <= pct[1] <= pct[2]:
                v.add(q, f"percentiles not ordered: p50 {pct[0]} <= p90 {pct[1]} <= p99 {pct[2]} fails")
            samples = v.key(lat, "samples", q, "list", required=False, none_ok=True)
            stride = v.num(lat, "samples_stride", q, lo=1, integer=True, required=False)
            if samples is not None:
                if len(samples) > MAX_SAMPLES:
                    v.add(f"{q}.samples", f"{len(samples)} samples; at most {MAX_SAMPLES}")
                if n is not None and len(samples) > n:
                    v.add(f"{q}.samples", f"{len(samples)} samples but n = {n}")
                if stride is not None and stride >= 1 and n is not None and len(samples) != -(-n // stride):
                    v.add(f"{q}.samples", f"{len(samples)} samples, but samples_stride {stride} of n = {n} "
                                          f"keeps {-(-n // stride)}")
                bad = [s for s in samples if isinstance(s, bool) or not isinstance(s, (int, float))
                       or not math.isfinite(s) or s < 0]
                if bad:
                    v.add(f"{q}.samples", f"{len(bad)} value(s) not non-negative numbers, e.g. {bad[0]!r}")
        thr = v.key(a, "throughput", p, "dict", none_ok=True)
        if thr is not None:
            v.num(thr, "batch", f"{p}.throughput", lo=1, integer=True)
            v.num(thr, "images_per_s", f"{p}.throughput", strict=True)
        v.num(a, "params", p, integer=True, none_ok=True)
        macs = v.num(a, "macs", p, integer=True, none_ok=True)
        flops = v.num(a, "flops", p, integer=True, none_ok=True)
        if macs is not None and flops is not None and flops != 2 * macs:
            v.add(f"{p}.flops", f"must be 2 x macs ({2 * macs}), got {flops}")
        v.num(a, "macs_input_size", p, lo=1, integer=True, none_ok=True)
        v.num(a, "size_mb", p)
        v.num(a, "peak_rss_mb", p, none_ok=True)
        pw = v.key(a, "power", p, "dict")
        if pw is not None:
            src = v.key(pw, "source", f"{p}.power", "str")
            if src is not None and src != NA:
                for k in ("mean_mW", "idle_mW", "energy_per_image_mJ"):
                    v.num(pw, k, f"{p}.power", none_ok=True)
                for k in ("above_idle_mW", "energy_per_image_above_idle_mJ"):  # may be < 0 (noise)
                    v.num(pw, k, f"{p}.power", lo=None, none_ok=True, required=False)
        v.num(a, "mac_rate_gmacs", p, none_ok=True, required=False)
        v.num(a, "peak_fraction", p, none_ok=True, required=False)
        rob = v.key(a, "robustness", p, "dict", required=False, none_ok=True)
        for cname, sev in (rob or {}).items():
            q = f"{p}.robustness.{cname}"
            if not isinstance(sev, dict) or not sev:
                v.add(q, "expected a non-empty object {severity: top-1 %}")
                continue
            for s, t in sev.items():
                if s not in ("1", "2", "3", "4", "5"):
                    v.add(q, f"severity key {s!r} not in '1'..'5'")
                v.num(sev, s, q, hi=100.0, none_ok=True)

    for i, f in enumerate(v.key(run, "failed", "", "list", required=False, none_ok=True) or []):
        if not isinstance(f, dict):
            v.add(f"failed[{i}]", "expected an object")
            continue
        for k in ("name", "error"):
            v.key(f, k, f"failed[{i}]", "str")
    comps = v.key(run, "comparisons", "", "list", required=False, none_ok=True)
    for i, c in enumerate(comps or []):
        p = f"comparisons[{i}]"
        if not isinstance(c, dict):
            v.add(p, "expected an object")
            continue
        for role in ("student", "baseline"):
            nm = v.key(c, role, p, "str")
            if nm is not None and arts is not None and nm not in names:
                v.add(f"{p}.{role}", f"no artifact named {nm!r}")
        for k in ("params_reduction_pct", "macs_reduction_pct", "power_reduction_pct", "latency_reduction_pct"):
            v.num(c, k, p, lo=None, hi=100.0, none_ok=True)
        v.num(c, "top1_delta_pts", p, lo=None, none_ok=True)
        lr = v.key(c, "latency_ratio", p, "dict", none_ok=True)
        if lr is not None:
            q = f"{p}.latency_ratio"
            vals = [v.num(lr, k, q, strict=True) for k in ("p05", "median", "p95")]
            v.num(lr, "rounds", q, lo=1, integer=True)
            if None not in vals and not vals[0] <= vals[1] <= vals[2]:
                v.add(q, f"not ordered: p05 {vals[0]} <= median {vals[1]} <= p95 {vals[2]} fails")
        paper = v.key(c, "paper", p, "dict", none_ok=True, required=False)
        for k, val in (paper or {}).items():
            if val is not None and (isinstance(val, bool) or not isinstance(val, (int, float))):
                v.add(f"{p}.paper.{k}", f"expected a number or null, got {val!r}")
    return v.problems


def check(run: Any) -> None:
    """Raise :class:`EOEdgeError` (one line) if :func:`validate` finds problems."""
    problems = validate(run)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise EOEdgeError(f"not a valid {SCHEMA} run: {problems[0]}{more}")


def load_run(path: str | Path) -> dict[str, Any]:
    """Read and :func:`check` a bench JSON file.

    Raises:
        EOEdgeError: file missing, not JSON, or not a valid run.
    """
    from ..fileio import read_json

    run = read_json(path, "bench JSON")
    check(run)
    return run

