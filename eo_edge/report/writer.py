"""Write a bench run's report folder: ``report.md`` and its figures."""

from __future__ import annotations

from pathlib import Path

from ..errors import EOEdgeError
from ..fileio import write_bytes
from .formatting import with_display_roles
from .markdown import render_markdown
from .plots import plot_all
from .schema import check

RUN_FILES = ("bench.json", "report.md", "*.png")


def keep_previous_run(out_dir: str | Path) -> Path | None:
    """Move an earlier bench run out of ``out_dir`` before a new one is written there, so no run
    is silently replaced: its ``bench.json``, ``report.md`` and PNGs go to
    ``out_dir/previous/<its created timestamp>/``.

    Returns:
        the folder the earlier run was moved to, or None when ``out_dir`` held no run.

    Raises:
        EOEdgeError: the earlier run could not be moved (nothing was deleted).
    """
    import json
    import re

    out = Path(out_dir)
    old = out / "bench.json"
    if not old.is_file():
        return None
    try:
        created = str(json.loads(old.read_text()).get("created", ""))
    except (OSError, ValueError, AttributeError):
        created = ""
    stamp = re.sub(r"[^0-9A-Za-z]", "", created) or f"{int(old.stat().st_mtime)}"
    dest = out / "previous" / stamp
    n = 1
    while dest.exists():
        n += 1
        dest = out / "previous" / f"{stamp}-{n}"
    try:
        dest.mkdir(parents=True)
        for pat in RUN_FILES:
            for f in out.glob(pat):
                f.rename(dest / f.name)
    except OSError as e:
        raise EOEdgeError(f"cannot keep the previous run in {dest}: {e.strerror}; it was left in place, "
                          "choose another --out") from None
    return dest


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
    run = with_display_roles(run)  # the registry's role word per model (one for report.md and plots)
    pngs = plot_all(run, out)
    curves = {a["name"]: a["decision"]["risk_coverage"] for a in run.get("artifacts", [])
              if (a.get("decision") or {}).get("risk_coverage", {}).get("coverage_pct")}
    if curves:
        from ..metrics.stats import plot_risk_coverage

        tgt = next((a["decision"]["at_threshold"]["target_accuracy_pct"] for a in run["artifacts"]
                    if (a.get("decision") or {}).get("at_threshold")), 99.0)
        pngs.append(plot_risk_coverage(curves, out / "risk_coverage.png", target_pct=tgt))
    cals = {a["name"]: a["calibration"] for a in run.get("artifacts", []) if (a.get("calibration") or {}).get("bins")}
    if cals:
        from ..metrics.stats import plot_reliability_curves

        pngs.append(plot_reliability_curves(cals, out / "reliability.png"))
    captions = {"accuracy_vs_latency.png": "Top-1 vs p50 latency, Pareto front dashed",
                "accuracy_vs_macs.png": "Top-1 vs MACs", "size_by_precision.png": "Model size per precision",
                "latency_distributions.png": "Latency distributions",
                "robustness.png": "Top-1 under corruption",
                "realtime_factor.png": "Scene real-time factor per artifact and backend (1.0 = keeps up with the sensor)",
                "risk_coverage.png": "Accuracy of the kept images vs coverage (keep the most confident first)",
                "reliability.png": "Reliability diagram: accuracy vs confidence per bin, at the model's temperature"}
    md = render_markdown(run, {captions.get(p.name, p.stem): p.name for p in pngs})
    files = {p.name: p for p in pngs}
    files["report.md"] = write_bytes(out / "report.md", md.encode("utf-8"))
    return files
