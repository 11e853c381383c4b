"""Render an ``eo-edge bench`` run (JSON schema ``eo-edge-bench/1``): checks, Markdown, tables, plots.

The schema, every key with its unit, is documented in ``docs/bench-schema.md``;
:func:`validate` checks it by hand (no jsonschema dependency).

Every number in the Markdown is formatted from the JSON with a fixed rule per unit
(see :data:`FORMATS`), so any figure in a report can be traced back to its key:

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

MACs = multiply-accumulates, FLOPs = 2 x MACs (see :mod:`eo_edge.flops`).
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from .errors import EOEdgeError
from .fileio import atomic_path, write_bytes

SCHEMA = "eo-edge-bench/1"
ROLES = ("student", "baseline", "teacher")
PRECISIONS = ("fp32", "fp16", "int8")
#: at most this many raw latency samples are stored per artifact
MAX_SAMPLES = 2000
NA = "n/a"

#: decimals per unit (see the module docstring)
FORMATS = {"pct": 1, "ms": 3, "ips": 0, "M": 2, "size_mb": 3, "rss_mb": 1, "mW": 0, "mJ": 3, "gmacs": 2,
           "ratio": 3}

PAPER = "Le et al. (arXiv 2411.00209)"


# --------------------------------------------------------------------------- formatting

def fmt(x: Any, unit: str) -> str:
    """Format ``x`` for ``unit`` (a :data:`FORMATS` key, or ``"int"``); ``None`` -> ``"n/a"``.

    Examples: ``fmt(0.41, "ms") == "0.410"``, ``fmt(5200.0, "ips") == "5,200"``,
    ``fmt(58398336 / 1e6, "M") == "58.40"``, ``fmt(103642, "int") == "103,642"``.
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return NA
    if unit == "int":
        return f"{int(x):,}"
    return f"{float(x):,.{FORMATS[unit]}f}"


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


# --------------------------------------------------------------------------- validation

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
    if schema is not None and schema != SCHEMA:
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
            if samples is not None:
                if len(samples) > MAX_SAMPLES:
                    v.add(f"{q}.samples", f"{len(samples)} samples; at most {MAX_SAMPLES}")
                if n is not None and len(samples) > n:
                    v.add(f"{q}.samples", f"{len(samples)} samples but n = {n}")
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
    from .fileio import read_json

    run = read_json(path, "bench JSON")
    check(run)
    return run


# --------------------------------------------------------------------------- analysis

def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (latency, top-1) points no other point dominates, by latency ascending.

    A point dominates another when it is at least as fast (lower or equal latency) and at
    least as accurate (higher or equal top-1), and strictly better in one of them. Equal
    points do not dominate each other (both are kept).

    Args:
        points: ``(latency in ms, top-1 in %)`` pairs.
    """
    def dominates(q: tuple[float, float], p: tuple[float, float]) -> bool:
        return q[0] <= p[0] and q[1] >= p[1] and (q[0] < p[0] or q[1] > p[1])

    front = [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def _artifacts(run: dict) -> list[dict]:
    return [a for a in run.get("artifacts") or [] if isinstance(a, dict)]


def _by_name(run: dict) -> dict[str, dict]:
    return {a.get("name"): a for a in _artifacts(run)}


# --------------------------------------------------------------------------- Markdown

MAIN_COLUMNS: list[tuple[str, Callable[[dict], str]]] = [
    ("Artifact", lambda a: str(a.get("name", "?"))),
    ("Model", lambda a: str(a.get("model", "?"))),
    ("Role", lambda a: str(a.get("role", "?"))),
    ("Precision", lambda a: str(a.get("precision", "?"))),
    ("Backend", lambda a: str(a.get("backend", "?"))),
    ("Top-1 %", lambda a: fmt(_get(a, "accuracy", "top1"), "pct")),
    ("Macro P %", lambda a: fmt(_get(a, "accuracy", "macro_precision"), "pct")),
    ("Macro R %", lambda a: fmt(_get(a, "accuracy", "macro_recall"), "pct")),
    ("Macro F1 %", lambda a: fmt(_get(a, "accuracy", "macro_f1"), "pct")),
    ("p50 ms", lambda a: fmt(_get(a, "latency_ms", "p50"), "ms")),
    ("p90 ms", lambda a: fmt(_get(a, "latency_ms", "p90"), "ms")),
    ("p99 ms", lambda a: fmt(_get(a, "latency_ms", "p99"), "ms")),
    ("Images/s", lambda a: fmt(_get(a, "throughput", "images_per_s"), "ips")),
    ("Params", lambda a: fmt(a.get("params"), "int")),
    ("MACs (M)", lambda a: fmt_millions(a.get("macs"))),
    ("FLOPs (M)", lambda a: fmt_millions(a.get("flops"))),
    ("at", lambda a: NA if a.get("macs_input_size") is None else f"{a['macs_input_size']} px"),
    ("Size MB", lambda a: fmt(a.get("size_mb"), "size_mb")),
    ("Peak RSS MB", lambda a: fmt(a.get("peak_rss_mb"), "rss_mb")),
    ("Power mW", lambda a: fmt(_power_mean(a), "mW")),
    ("mJ/image", lambda a: fmt(_power_energy(a), "mJ")),
    ("GMAC/s", lambda a: fmt(a.get("mac_rate_gmacs"), "gmacs")),
    ("% of peak", lambda a: fmt(_peak_pct(a), "pct")),
]

#: the columns of :func:`print_table` (a subset of :data:`MAIN_COLUMNS`)
CONSOLE_COLUMNS = ("Artifact", "Precision", "Backend", "Top-1 %", "p50 ms", "p99 ms", "Images/s", "Params",
                   "MACs (M)", "at", "Size MB", "Power mW", "mJ/image")

_COMPARISON_ROWS = (
    ("Parameters reduction %", "params_reduction_pct", "params_reduction_pct"),
    ("MACs reduction % (paper: FLOPs)", "macs_reduction_pct", "flops_reduction_pct"),
    ("Power reduction %", "power_reduction_pct", "power_reduction_pct"),
    ("Latency reduction % (p50)", "latency_reduction_pct", "latency_reduction_pct"),
)


def _host_section(run: dict) -> str:
    h = run.get("host") or {}
    rows = [["CPU", str(h.get("cpu", NA))],
            ["Logical CPUs / threads used", f"{h.get('logical_cpus', NA)} / {h.get('threads_used', NA)}"],
            ["OS", str(h.get("os", NA))], ["Python", str(h.get("python", NA))]]
    for k, ver in (h.get("versions") or {}).items():
        rows.append([k, str(ver)])
    j = h.get("jetson")
    rows.append(["Jetson", NA if j is None else (j if isinstance(j, str) else
                                                  ", ".join(f"{k}: {val}" for k, val in j.items()))])
    srcs = []
    for s in h.get("power_sources") or []:
        state = "available" if s.get("available") else "unavailable"
        srcs.append(f"{s.get('source', '?')}: {state}" + (f" ({s['detail']})" if s.get("detail") else ""))
    rows.append(["Power sources", "; ".join(srcs) or "none"])
    return "## Host\n\n" + _md_table(["", ""], rows, ["l", "l"])


def _protocol_section(run: dict) -> str:
    d, p = run.get("data") or {}, run.get("protocol") or {}
    lat_batches = sorted({_get(a, "latency_ms", "batch") for a in _artifacts(run)} - {None})
    lines = [
        "## Data and protocol", "",
        f"- Data: {d.get('kind', NA)}, {fmt(d.get('n_images'), 'int')} images ({d.get('source', NA)}).",
        f"- Latency: batch {', '.join(map(str, lat_batches)) or NA}; {fmt(p.get('warmup'), 'int')} warm-up "
        f"then {fmt(p.get('runs'), 'int')} timed runs per artifact and round; "
        + (f"artifacts interleaved over {p.get('rounds')} rounds" if p.get("interleaved")
           else f"artifacts run one after another ({p.get('rounds')} rounds)")
        + f"; {p.get('threads', NA)} thread(s). p50/p90/p99 are percentiles of the per-image latencies in ms.",
        f"- Throughput: batch {p.get('throughput_batch', NA)}, images per second.",
        "- MACs = multiply-accumulates, FLOPs = 2 x MACs (Conv/Gemm/MatMul of the ONNX graph at the "
        "stated input size; `eo_edge.flops`).",
    ]
    peak = run.get("peak") or {}
    if peak:
        lines += ["", "Peak MAC rate of this host (what `% of peak` divides by):", "",
                  _md_table(["Precision", "GMAC/s", "Method"],
                            [[k, fmt(v.get("gmacs_per_s"), "gmacs"), str(v.get("method", NA))]
                             for k, v in peak.items() if isinstance(v, dict)], ["l", "r", "l"])]
    return "\n".join(lines)


def _power_section(run: dict) -> str:
    rows = []
    for a in _artifacts(run):
        pw = a.get("power") or {}
        if pw.get("source", NA) == NA:
            continue
        rows.append([a["name"], str(pw.get("source")), fmt(pw.get("mean_mW"), "mW"), fmt(pw.get("idle_mW"), "mW"),
                     fmt(pw.get("above_idle_mW"), "mW"), fmt(pw.get("energy_per_image_mJ"), "mJ"),
                     fmt(pw.get("energy_per_image_above_idle_mJ"), "mJ"), str(pw.get("scope") or "")])
    if not rows:
        return ("## Power\n\nNo power source was readable on this host: power and energy are n/a "
                "(see Host > Power sources).")
    return ("## Power\n\nEnergy per image = mean power x timed window / images (mW x s = mJ); "
            "'above idle' subtracts the idle baseline measured just before.\n\n"
            + _md_table(["Artifact", "Source", "Mean mW", "Idle mW", "Above idle mW", "mJ/image",
                         "mJ/image above idle", "Scope"], rows))


def _comparison_section(run: dict) -> str:
    comps = run.get("comparisons") or []
    if not comps:
        return ""
    arts = _by_name(run)
    out = ["## Paper comparison", "",
           f"Reduction = 100 x (1 - student / baseline), measured here, beside the claim of {PAPER}."]
    for c in comps:
        s, b = arts.get(c.get("student"), {}), arts.get(c.get("baseline"), {})
        paper = c.get("paper") or {}
        rows = [[label, fmt(c.get(ours), "pct"), fmt(paper.get(theirs), "pct")]
                for label, ours, theirs in _COMPARISON_ROWS]
        lr = c.get("latency_ratio")
        if lr:
            rows.append(["Latency ratio student / baseline (median [p05, p95])",
                         f"{fmt(lr.get('median'), 'ratio')} [{fmt(lr.get('p05'), 'ratio')}, "
                         f"{fmt(lr.get('p95'), 'ratio')}] over {lr.get('rounds')} rounds", NA])
        rows.append(["Top-1 difference (pts, student - baseline)", fmt_signed(c.get("top1_delta_pts")),
                     fmt_signed(paper.get("top1_delta_pts"))])
        out += ["", f"### {c.get('student')} vs {c.get('baseline')}", "",
                f"MACs at {s.get('macs_input_size', NA)} px (student) and {b.get('macs_input_size', NA)} px "
                f"(baseline); power: {(s.get('power') or {}).get('source', NA)} / "
                f"{(b.get('power') or {}).get('source', NA)}.", "",
                _md_table(["Metric", "Measured", "Paper"], rows)]
    return "\n".join(out)


def _robustness_section(run: dict) -> str:
    rows = []
    for a in _artifacts(run):
        for cname, sev in (a.get("robustness") or {}).items():
            vals = [sev.get(str(k)) for k in range(1, 6)]
            got = [x for x in vals if x is not None]
            rows.append([a["name"], cname, fmt(_get(a, "accuracy", "top1"), "pct")] + [fmt(x, "pct") for x in vals]
                        + [fmt(sum(got) / len(got) if got else None, "pct")])
    if not rows:
        return ""
    return ("## Robustness (top-1 % under corruption)\n\nImageNet-C corruptions (Hendrycks & Dietterich, "
            "ICLR 2019) scaled to the image size, see `eo_edge.corruptions`; mean over the severities run.\n\n"
            + _md_table(["Artifact", "Corruption", "Clean", "s1", "s2", "s3", "s4", "s5", "Mean"], rows,
                        ["l", "l"] + ["r"] * 7))


def render_markdown(run: dict, images: dict[str, str] | None = None) -> str:
    """The report of one bench run as Markdown.

    Sections: title, host, data and protocol (incl. peak MAC rates), one table of every
    artifact (:data:`MAIN_COLUMNS`), power, paper comparison (measured reduction beside the
    paper's claim), robustness (if present), figures (if ``images`` maps captions to
    relative PNG paths). Every number is formatted from the JSON with :func:`fmt`.
    """
    h = run.get("host") or {}
    parts = [f"# eo-edge benchmark: {h.get('cpu', 'unknown host')}",
             f"Run {run.get('created', NA)} by `{run.get('command', 'eo-edge bench')}` "
             f"(eo-edge {run.get('eo_edge_version', NA)}, schema {run.get('schema', NA)}). "
             "MACs = multiply-accumulates, FLOPs = 2 x MACs.",
             _host_section(run), _protocol_section(run),
             "## Results\n\nTop-1 and macro precision/recall/F1 in % on the data above; latency in ms per "
             "image; MACs and FLOPs in millions per image at the input size in `at`; size of the model file "
             "in MB; peak resident memory of the process in MB; MAC rate = MACs x throughput (images/s at the throughput batch).\n\n"
             + _md_table([c for c, _ in MAIN_COLUMNS], [[f(a) for _, f in MAIN_COLUMNS] for a in _artifacts(run)],
                         ["l"] * 5 + ["r"] * (len(MAIN_COLUMNS) - 5)),
             _power_section(run), _comparison_section(run), _robustness_section(run)]
    if images:
        parts.append("## Figures\n\n" + "\n\n".join(f"![{cap}]({path})" for cap, path in images.items()))
    return "\n\n".join(p for p in parts if p) + "\n"


def print_table(run: dict, console: Any) -> None:
    """Print the main columns (:data:`CONSOLE_COLUMNS`) and the paper comparison as rich tables.

    Args:
        console: a ``rich.console.Console``.
    """
    from rich.table import Table

    cols = [(n, f) for n, f in MAIN_COLUMNS if n in CONSOLE_COLUMNS]
    t = Table(title=f"eo-edge bench: {_get(run, 'host', 'cpu') or 'unknown host'}  "
                    f"({_get(run, 'data', 'kind') or NA}, {fmt(_get(run, 'data', 'n_images'), 'int')} images)")
    for i, (n, _) in enumerate(cols):
        t.add_column(n, justify="left" if i < 3 else "right", no_wrap=i == 0)
    for a in _artifacts(run):
        t.add_row(*[f(a) for _, f in cols])
    console.print(t)
    for c in run.get("comparisons") or []:
        ct = Table(title=f"{c.get('student')} vs {c.get('baseline')}")
        for n in ("Metric", "Measured", "Paper"):
            ct.add_column(n, justify="left" if n == "Metric" else "right")
        paper = c.get("paper") or {}
        for label, ours, theirs in _COMPARISON_ROWS:
            ct.add_row(label, fmt(c.get(ours), "pct"), fmt(paper.get(theirs), "pct"))
        lr = c.get("latency_ratio")
        if lr:
            ct.add_row(r"Latency ratio (median \[p05, p95])",
                       f"{fmt(lr.get('median'), 'ratio')} [{fmt(lr.get('p05'), 'ratio')}, {fmt(lr.get('p95'), 'ratio')}]",
                       NA)
        ct.add_row("Top-1 difference (pts)", fmt_signed(c.get("top1_delta_pts")), NA)
        console.print(ct)
    console.print("MACs = multiply-accumulates, FLOPs = 2 x MACs; latency in ms per image (batch 1).")


# --------------------------------------------------------------------------- plots

_PREC_COLOR = {"fp32": "#1f77b4", "fp16": "#ff7f0e", "int8": "#2ca02c"}
_ROLE_MARKER = {"student": "o", "baseline": "s", "teacher": "^"}

PLOTS = ("accuracy_vs_latency.png", "accuracy_vs_macs.png", "size_by_precision.png", "latency_distributions.png",
         "robustness.png")


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return path


def _figure(w: float = 7.0, h: float = 4.5):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    return fig, fig.add_subplot(1, 1, 1)


def _plain_log(axis) -> None:
    """Log scale with plain tick labels (0.5, 1, 2, 5, ...) instead of 5 x 10^-1."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _legend_handles(arts: list[dict]):
    from matplotlib.lines import Line2D

    precs = [p for p in PRECISIONS if any(a.get("precision") == p for a in arts)]
    roles = [r for r in ROLES if any(a.get("role") == r for a in arts)]
    return ([Line2D([], [], ls="", marker="o", color=_PREC_COLOR[p], label=p) for p in precs]
            + [Line2D([], [], ls="", marker=_ROLE_MARKER[r], color="grey", label=r) for r in roles])


def _scatter(ax, arts: list[dict], xs: list[float], ys: list[float], label: str = "name") -> None:
    """Scatter one point per artifact (colour = precision, marker = role); label each point
    with its artifact name, or (``label="model"``) each group of points sharing model and x
    once with the model name."""
    done: set[tuple[str, float]] = set()
    order = sorted(range(len(arts)), key=lambda i: -ys[i])
    for i in order:
        a, x, y = arts[i], xs[i], ys[i]
        ax.scatter([x], [y], c=_PREC_COLOR.get(a.get("precision"), "grey"), marker=_ROLE_MARKER.get(a.get("role"), "o"),
                   s=50, zorder=3, edgecolors="black", linewidths=0.5)
        key = (str(a.get("model")), float(x)) if label == "model" else (a["name"], float(x))
        if key not in done:
            done.add(key)
            ax.annotate(key[0], (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)


def plot_all(run: dict, out_dir: Path) -> list[Path]:
    """Write the report's PNG figures into ``out_dir`` (atomically; matplotlib Agg, no pyplot).

    Figures (those without data are skipped): ``accuracy_vs_latency.png`` (top-1 % vs p50
    ms, log x, Pareto front drawn), ``accuracy_vs_macs.png`` (top-1 % vs MACs, log x),
    ``size_by_precision.png`` (model file MB, grouped bars per model and precision, log y),
    ``latency_distributions.png`` (box plots of ``latency_ms.samples``, log x),
    ``robustness.png`` (top-1 % vs severity per corruption).

    Returns:
        The paths written, in that order.

    Raises:
        EOEdgeError: ``out_dir`` does not exist.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise EOEdgeError(f"output folder does not exist: {out_dir}")
    arts = _artifacts(run)
    host = _get(run, "host", "cpu") or "unknown host"
    written: list[Path] = []

    acc = [a for a in arts if _get(a, "accuracy", "top1") is not None and _get(a, "latency_ms", "p50") is not None]
    if acc:
        fig, ax = _figure()
        xs = [float(a["latency_ms"]["p50"]) for a in acc]
        ys = [float(a["accuracy"]["top1"]) for a in acc]
        front = pareto_front(list(zip(xs, ys)))
        fx, fy = [xs[i] for i in front], [ys[i] for i in front]
        ax.step(fx, fy, where="post", color="black", lw=1, ls="--", zorder=2, label="Pareto front")
        _scatter(ax, acc, xs, ys)
        if max(xs) / max(min(xs), 1e-9) > 5:
            ax.set_xscale("log")
            _plain_log(ax.xaxis)
        ax.set_xlabel("p50 latency, batch 1 (ms)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(f"Accuracy vs latency ({host})", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(handles=_legend_handles(acc) + ax.get_legend_handles_labels()[0], fontsize=7, loc="best")
        written.append(_save(fig, out_dir / PLOTS[0]))

    mac = [a for a in arts if _get(a, "accuracy", "top1") is not None and a.get("macs")]
    if mac:
        fig, ax = _figure()
        _scatter(ax, mac, [a["macs"] / 1e6 for a in mac], [a["accuracy"]["top1"] for a in mac], label="model")
        ax.set_xscale("log")
        _plain_log(ax.xaxis)
        lo, hi = min(a["macs"] for a in mac) / 1e6, max(a["macs"] for a in mac) / 1e6
        ax.set_xlim(lo / 1.5, hi * 1.5)
        sizes = sorted({a.get("macs_input_size") for a in mac} - {None})
        ax.set_xlabel(f"MACs per image (millions, log scale; at {'/'.join(map(str, sizes)) or '?'} px)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title("Accuracy vs compute (MACs = multiply-accumulates, FLOPs = 2 x MACs)", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(handles=_legend_handles(mac), fontsize=7, loc="best")
        written.append(_save(fig, out_dir / PLOTS[1]))

    sized = [a for a in arts if a.get("size_mb") is not None]
    if sized:
        models = list(dict.fromkeys(a.get("model", "?") for a in sized))
        precs = [p for p in PRECISIONS if any(a.get("precision") == p for a in sized)]
        fig, ax = _figure(max(6.0, 1.6 * len(models)), 4.5)
        width = 0.8 / max(len(precs), 1)
        for i, m in enumerate(models):
            present = [p for p in precs if any(a.get("model") == m and a.get("precision") == p for a in sized)]
            for j, prec in enumerate(present):
                val = max(a["size_mb"] for a in sized if a.get("model") == m and a.get("precision") == prec)
                x = i + width * (j - (len(present) - 1) / 2)
                ax.bar([x], [val], width, color=_PREC_COLOR[prec], label=prec)
                ax.annotate(fmt(val, "size_mb"), (x, val), ha="center", va="bottom", fontsize=6)
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), fontsize=7)
        ax.set_xticks(range(len(models)), models, fontsize=8)
        if max(a["size_mb"] for a in sized) / max(min(a["size_mb"] for a in sized), 1e-9) > 20:
            ax.set_yscale("log")
            _plain_log(ax.yaxis)
        ax.set_ylabel("model file size (MB)")
        ax.set_title("Model size per precision", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
        written.append(_save(fig, out_dir / PLOTS[2]))

    sampled = [a for a in arts if _get(a, "latency_ms", "samples")]
    if sampled:
        fig, ax = _figure(7.0, max(3.0, 0.45 * len(sampled) + 1.2))
        data = [[float(s) for s in a["latency_ms"]["samples"]] for a in sampled]
        kw = dict(whis=(1, 99), showfliers=True, patch_artist=True, flierprops={"markersize": 2, "alpha": 0.4},
                  medianprops={"color": "black"})
        try:
            bp = ax.boxplot(data, orientation="horizontal", **kw)  # matplotlib >= 3.10
        except TypeError:
            bp = ax.boxplot(data, vert=False, **kw)
        for patch, a in zip(bp["boxes"], sampled):
            patch.set_facecolor(_PREC_COLOR.get(a.get("precision"), "lightgrey"))
            patch.set_alpha(0.6)
        ax.set_yticks(range(1, len(sampled) + 1), [a["name"] for a in sampled], fontsize=7)
        lo = min(min(d) for d in data if d)
        if max(max(d) for d in data if d) / max(lo, 1e-9) > 10:
            ax.set_xscale("log")
            _plain_log(ax.xaxis)
        ax.set_xlabel("latency per image, batch 1 (ms); box = p25-p75, whiskers = p1-p99")
        ax.set_title("Latency distributions", fontsize=9)
        ax.grid(True, axis="x", which="both", alpha=0.3)
        written.append(_save(fig, out_dir / PLOTS[3]))

    rob = [a for a in arts if a.get("robustness")]
    if rob:
        cnames = list(dict.fromkeys(c for a in rob for c in a["robustness"]))
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.2 * len(cnames), 3.8))
        axes = [fig.add_subplot(1, len(cnames), i + 1) for i in range(len(cnames))]
        for ax, cname in zip(axes, cnames):
            for a in rob:
                sev = a["robustness"].get(cname) or {}
                pts = [(0, _get(a, "accuracy", "top1"))] + [(int(k), v) for k, v in sorted(sev.items())]
                pts = [(x, y) for x, y in pts if y is not None]
                ax.plot([x for x, _ in pts], [y for _, y in pts], marker=_ROLE_MARKER.get(a.get("role"), "o"),
                        color=_PREC_COLOR.get(a.get("precision"), "grey"), label=a["name"], lw=1, ms=4)
            ax.set_title(cname, fontsize=9)
            ax.set_xlabel("severity (0 = clean)")
            ax.set_xticks(range(0, 6))
            ax.grid(True, alpha=0.3)
        axes[0].set_ylabel("top-1 accuracy (%)")
        axes[-1].legend(fontsize=6)
        written.append(_save(fig, out_dir / PLOTS[4]))
    return written


# --------------------------------------------------------------------------- several runs

def compare_markdown(runs: list[dict], labels: list[str]) -> str:
    """Side-by-side Markdown of several bench runs (x86 vs Jetson, before vs after, ...).

    One row per artifact name (union over the runs, in order of first appearance): top-1 %,
    p50 ms, images/s, mean power mW and mJ/image from each run, and the ratios
    ``run_k / run_0`` of p50 and images/s (the first run is the reference); ``-`` marks an
    artifact a run does not have. Then the comparisons' measured reductions per run.

    Raises:
        EOEdgeError: fewer than 2 runs, or labels that do not match the runs one to one.
    """
    if len(runs) < 2:
        raise EOEdgeError("compare needs at least two bench runs")
    if len(labels) != len(runs) or len(set(labels)) != len(labels):
        raise EOEdgeError(f"need {len(runs)} distinct labels for {len(runs)} runs, got {labels}")
    ref = labels[0]
    out = [f"# eo-edge benchmark comparison: {' vs '.join(labels)}", "",
           f"Ratios are run / {ref} (p50 < 1: faster than {ref}; images/s > 1: more throughput). "
           "Latency in ms per image (batch 1), power in mW, energy in mJ per image. "
           "MACs = multiply-accumulates, FLOPs = 2 x MACs.", "",
           _md_table(["Run", "Created", "CPU", "Jetson", "Threads", "Data", "ORT"],
                     [[lb, str(r.get("created", NA)), str(_get(r, "host", "cpu") or NA),
                       "no" if _get(r, "host", "jetson") is None else
                       (_get(r, "host", "jetson") if isinstance(_get(r, "host", "jetson"), str)
                        else str(_get(r, "host", "jetson", "model") or "yes")),
                       str(_get(r, "protocol", "threads") or NA),
                       f"{_get(r, 'data', 'kind') or NA}, {fmt(_get(r, 'data', 'n_images'), 'int')}",
                       str(_get(r, "host", "versions", "onnxruntime") or NA)] for lb, r in zip(labels, runs)],
                     ["l"] * 7)]
    names = list(dict.fromkeys(a.get("name") for r in runs for a in _artifacts(r)))
    maps = [_by_name(r) for r in runs]

    def cell(a: dict | None, f: Callable[[dict], Any], unit: str) -> str:
        return "-" if a is None else fmt(f(a), unit)

    def ratio(a: dict | None, b: dict | None, f: Callable[[dict], Any]) -> str:
        if a is None or b is None or f(a) in (None, 0) or f(b) is None:
            return "-" if a is None or b is None else NA
        return fmt(f(b) / f(a), "ratio")

    metrics: list[tuple[str, Callable[[dict], Any], str, bool]] = [
        ("Top-1 %", lambda a: _get(a, "accuracy", "top1"), "pct", False),
        ("p50 ms", lambda a: _get(a, "latency_ms", "p50"), "ms", True),
        ("Images/s", lambda a: _get(a, "throughput", "images_per_s"), "ips", True),
        ("Power mW", _power_mean, "mW", False),
        ("mJ/image", _power_energy, "mJ", False),
    ]
    header, rows = ["Artifact"], []
    for m, _, _, with_ratio in metrics:
        header += [f"{m} ({lb})" for lb in labels]
        if with_ratio:
            header += [f"{m.split()[0]} {lb}/{ref}" for lb in labels[1:]]
    for n in names:
        row = [str(n)]
        arts = [mp.get(n) for mp in maps]
        for _, f, unit, with_ratio in metrics:
            row += [cell(a, f, unit) for a in arts]
            if with_ratio:
                row += [ratio(arts[0], a, f) for a in arts[1:]]
        rows.append(row)
    out += ["", "## Artifacts", "", _md_table(header, rows)]

    keys = list(dict.fromkeys((c.get("student"), c.get("baseline")) for r in runs for c in r.get("comparisons") or []))
    if keys:
        crow = []
        for s, b in keys:
            per = [next((c for c in r.get("comparisons") or [] if (c.get("student"), c.get("baseline")) == (s, b)),
                        None) for r in runs]
            for label, k, _ in _COMPARISON_ROWS:
                crow.append([f"{s} vs {b}", label] + ["-" if c is None else fmt(c.get(k), "pct") for c in per])
        out += ["", "## Reductions (measured, per run)", "",
                _md_table(["Comparison", "Metric"] + labels, crow, ["l", "l"] + ["r"] * len(labels))]
    return "\n".join(out) + "\n"


def write_report(run: dict, out_dir: str | Path) -> dict[str, Path]:
    """Validate ``run`` and write ``report.md`` plus the PNGs of :func:`plot_all` into ``out_dir``
    (created if missing; every file written atomically).

    Returns:
        ``{file name: path}``, e.g. ``{"accuracy_vs_latency.png": ..., "report.md": ...}``.

    Raises:
        EOEdgeError: the run is not valid :data:`SCHEMA` (first problem shown), or the
            folder cannot be created.
    """
    check(run)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EOEdgeError(f"cannot create report folder {out}: {e.strerror}") from None
    pngs = plot_all(run, out)
    captions = {"accuracy_vs_latency.png": "Top-1 vs p50 latency, Pareto front dashed",
                "accuracy_vs_macs.png": "Top-1 vs MACs", "size_by_precision.png": "Model size per precision",
                "latency_distributions.png": "Latency distributions",
                "robustness.png": "Top-1 under corruption"}
    md = render_markdown(run, {captions.get(p.name, p.stem): p.name for p in pngs})
    files = {p.name: p for p in pngs}
    files["report.md"] = write_bytes(out / "report.md", md.encode("utf-8"))
    return files

