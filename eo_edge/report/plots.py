"""The report's PNG figures (matplotlib Agg, no pyplot) and the Pareto front they draw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import EOEdgeError
from ..fileio import atomic_path
from .formatting import _artifacts, _get, fmt
from .schema import PRECISIONS, ROLES


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
