"""Write a bench run's report folder: ``report.md`` and its figures."""

from __future__ import annotations

from pathlib import Path

from ..errors import EOEdgeError
from ..fileio import write_bytes
from .markdown import render_markdown
from .plots import plot_all
from .schema import check

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
