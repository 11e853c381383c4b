"""The report's PNG figures (matplotlib Agg, no pyplot) and the Pareto front they draw.

Layout rules every figure follows, so a payload engineer can read it without the JSON:

* legends sit outside the axes (right), never on the data; the figure is laid out with
  matplotlib's constrained layout, so no label or legend is cut at the edge;
* a scatter point's label is placed where it overlaps no other label, no marker and stays in
  the axes (a greedy search over offsets around the point); a label moved away from its point
  gets a thin leader line, so coincident points (an FP32 and its FP16) stay readable;
* colour = precision and marker = role (:func:`eo_edge.models.registry.display_role`, one word
  per model) everywhere, with a legend for both;
* every artifact is shown by its name and, where files differ only in their suffix (INT8-u8
  vs INT8-s8), by its file name.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..artifact.forms import PRECISIONS
from ..errors import EOEdgeError
from ..fileio import atomic_path
from .formatting import _artifacts, _get, fmt, role_of
from .schema import ROLES


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
#: gid of the point labels :func:`_place_labels` draws (tests find them by it)
LABEL_GID = "point-label"

PLOTS = ("accuracy_vs_latency.png", "accuracy_vs_macs.png", "size_by_precision.png", "latency_distributions.png",
         "robustness.png", "realtime_factor.png")


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight", pad_inches=0.1)
    return path


def _figure(w: float = 7.0, h: float = 4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)  # a renderer to measure text with
    return fig, fig.add_subplot(1, 1, 1)


def _freeze_layout(fig) -> None:
    """Run the constrained layout once and keep it: labels placed afterwards in display
    coordinates stay where they were measured."""
    fig.canvas.draw()
    fig.set_layout_engine("none")


def _plain_log(axis) -> None:
    """Log scale with plain tick labels (0.5, 1, 2, 5, ...) instead of 5 x 10^-1."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _legend_outside(ax, handles: list, title: str | None = None):
    """A legend right of the axes (constrained layout makes room for it)."""
    return ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=7,
                     title=title, title_fontsize=7)


def _precision_handles(arts: list[dict], patches: bool = False) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    precs = [p for p in PRECISIONS if any(a.get("precision") == p for a in arts)]
    if patches:
        return [Patch(facecolor=_PREC_COLOR[p], alpha=0.6, edgecolor="black", linewidth=0.5, label=p) for p in precs]
    return [Line2D([], [], ls="", marker="o", color=_PREC_COLOR[p], markeredgecolor="black", markeredgewidth=0.5,
                   label=p) for p in precs]


def _legend_handles(arts: list[dict]) -> list:
    from matplotlib.lines import Line2D

    roles = [r for r in ROLES if any(role_of(a) == r for a in arts)]
    return _precision_handles(arts) + [Line2D([], [], ls="", marker=_ROLE_MARKER[r], color="grey", label=r)
                                       for r in roles]


def _file_label(a: dict) -> str:
    """The artifact's file name (``resnet8_eurosat64.int8-minmax-u8.onnx``), or ``""``."""
    p = a.get("path")
    return Path(str(p)).name if p else ""


# candidate label offsets (points) around a point, nearest first: (dx, dy, ha, va) per radius
_RADII = (5.0, 10.0, 16.0, 24.0, 34.0, 46.0, 60.0)


def _directions(r: float) -> list[tuple[float, float, str, str]]:
    d = r * math.sqrt(0.5)
    return [(r, 0.0, "left", "center"), (d, d, "left", "bottom"), (d, -d, "left", "top"), (-r, 0.0, "right", "center"),
            (-d, d, "right", "bottom"), (-d, -d, "right", "top"), (0.0, r, "center", "bottom"),
            (0.0, -r, "center", "top")]


def _crosses(p, q, a, b) -> bool:
    """True when segments p-q and a-b (display coordinates) properly intersect."""
    def orient(u, v, w) -> float:
        return (v[0] - u[0]) * (w[1] - u[1]) - (v[1] - u[1]) * (w[0] - u[0])

    return (orient(p, q, a) * orient(p, q, b) < 0) and (orient(a, b, p) * orient(a, b, q) < 0)


def _through(p, q, box) -> bool:
    """True when the segment p-q (display coordinates) passes through ``box``."""
    return any(box.contains(p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])) for t in
               (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9))


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _segment_boxes(ax, xs: list[float], ys: list[float], pad_px: float = 1.5) -> list:
    """Display-space boxes around the segments of the polyline through ``(xs, ys)`` (data
    coordinates): obstacles for :func:`_place_labels`, so no label sits on a drawn line."""
    from matplotlib.transforms import Bbox

    pts = ax.transData.transform(list(zip(xs, ys))) if xs else []
    return [Bbox.from_extents(min(a[0], b[0]) - pad_px, min(a[1], b[1]) - pad_px, max(a[0], b[0]) + pad_px,
                              max(a[1], b[1]) + pad_px) for a, b in zip(pts[:-1], pts[1:])]


def _place_labels(fig, ax, points: list[tuple[float, float]], texts: list[str], fontsize: float = 7.0,
                  marker_pt: float = 4.5, obstacles: list | None = None) -> list:
    """Label each data point with its text where the label overlaps no other label or marker
    and stays inside the axes: the first free offset of :data:`_RADII` x 8 directions, else
    the least-overlapping one. A label farther than the nearest ring (5 pt) gets a leader line to its point.

    Call after the axes' limits, scales and layout are final (:func:`_freeze_layout`).

    Args:
        points: ``(x, y)`` in data coordinates, one per text.
        marker_pt: half-size of a marker in points (the area kept free around every point).
        obstacles: more display-space boxes to keep free (e.g. :func:`_segment_boxes` of a line).

    Returns:
        The annotations (gid :data:`LABEL_GID`), in the order of ``points``.
    """
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    axbox = ax.get_window_extent(renderer)
    px = fig.dpi / 72.0
    disp = [tuple(ax.transData.transform(p)) for p in points]
    m = marker_pt * px
    markers = [Bbox.from_extents(x - m, y - m, x + m, y + m) for x, y in disp] + list(obstacles or [])
    near = [sum(1 for q in disp if math.hypot(q[0] - p[0], q[1] - p[1]) < 40 * px) for p in disp]
    order = sorted(range(len(points)), key=lambda i: (-near[i], disp[i][0]))
    placed: list = []
    leaders: list = []
    out: dict[int, Any] = {}
    probe = ax.annotate("", (0, 0), xytext=(0, 0), textcoords="offset points", fontsize=fontsize)
    for i in order:
        probe.xy = points[i]
        probe.set_text(texts[i])
        best = None
        for r in _RADII:
            for dx, dy, ha, va in _directions(r):
                probe.xyann = (dx, dy)
                probe.set_horizontalalignment(ha)
                probe.set_verticalalignment(va)
                bb = probe.get_window_extent(renderer).padded(1.0 * px)
                cost = sum(_overlap(bb, o) for o in placed) + sum(_overlap(bb, o) for o in markers)
                if r > _RADII[0]:  # its leader line should cross no other marker and no other leader
                    tip = (disp[i][0] + dx * px, disp[i][1] + dy * px)
                    cost += 400 * px * px * (sum(_through(tip, disp[i], mk) for j, mk in enumerate(markers[:len(disp)])
                                                 if j != i and math.dist(disp[j], disp[i]) > m)  # not a twin
                                             + sum(_crosses(tip, disp[i], a, b) for a, b in leaders))
                if not (bb.x0 >= axbox.x0 and bb.x1 <= axbox.x1 and bb.y0 >= axbox.y0 and bb.y1 <= axbox.y1):
                    cost += 1e9  # outside the axes: only when nothing inside is left
                if best is None or cost < best[0]:
                    best = (cost, dx, dy, ha, va, bb)
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, dx, dy, ha, va, bb = best
        arrow = ({"arrowstyle": "-", "lw": 0.5, "color": "0.35", "shrinkA": 1, "shrinkB": marker_pt}
                 if math.hypot(dx, dy) > 7.0 else None)
        ann = ax.annotate(texts[i], points[i], xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                          fontsize=fontsize, arrowprops=arrow, zorder=4)
        ann.set_gid(LABEL_GID)
        placed.append(bb)
        if arrow is not None:
            leaders.append(((disp[i][0] + dx * px, disp[i][1] + dy * px), disp[i]))
        out[i] = ann
    probe.remove()
    return [out[i] for i in range(len(points))]


def _scatter(ax, arts: list[dict], xs: list[float], ys: list[float]) -> None:
    """One point per artifact: colour = precision, marker = role (slightly transparent, so
    coincident points show)."""
    for a, x, y in zip(arts, xs, ys):
        ax.scatter([x], [y], c=_PREC_COLOR.get(a.get("precision"), "grey"), marker=_ROLE_MARKER.get(role_of(a), "o"),
                   s=50, zorder=3, edgecolors="black", linewidths=0.5, alpha=0.85)


def _accuracy_vs_latency(acc: list[dict], host: str):
    fig, ax = _figure(8.0, 5.0)
    xs = [float(a["latency_ms"]["p50"]) for a in acc]
    ys = [float(a["accuracy"]["top1"]) for a in acc]
    front = pareto_front(list(zip(xs, ys)))
    fx, fy = [xs[i] for i in front], [ys[i] for i in front]
    ax.step(fx, fy, where="post", color="black", lw=1, ls="--", zorder=2, label="Pareto front")
    _scatter(ax, acc, xs, ys)
    if max(xs) / max(min(xs), 1e-9) > 5:
        ax.set_xscale("log")
        _plain_log(ax.xaxis)
    ax.margins(x=0.12, y=0.12)  # room for labels beside the outermost points
    ax.set_xlabel("p50 latency, batch 1 (ms)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"Accuracy vs latency ({host})", fontsize=9)
    ax.grid(True, alpha=0.3)
    _legend_outside(ax, _legend_handles(acc) + ax.get_legend_handles_labels()[0])
    _freeze_layout(fig)
    sx = [v for x in fx for v in (x, x)][1:]  # the step's corners (where="post")
    sy = [v for y in fy for v in (y, y)][:-1]
    _place_labels(fig, ax, list(zip(xs, ys)), [str(a.get("name", "?")) for a in acc],
                  obstacles=_segment_boxes(ax, sx, sy))
    return fig


def _accuracy_vs_macs(mac: list[dict]):
    fig, ax = _figure(8.0, 5.0)
    xs = [a["macs"] / 1e6 for a in mac]
    ys = [float(a["accuracy"]["top1"]) for a in mac]
    _scatter(ax, mac, xs, ys)
    ax.set_xscale("log")
    _plain_log(ax.xaxis)
    lo, hi = min(xs), max(xs)
    ax.set_xlim(lo / 1.6, hi * 1.6)
    ax.margins(y=0.12)
    sizes = sorted({a.get("macs_input_size") for a in mac} - {None})
    ax.set_xlabel(f"MACs per image (millions, log scale; at {'/'.join(map(str, sizes)) or '?'} px)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Accuracy vs compute (MACs = multiply-accumulates, FLOPs = 2 x MACs)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    _legend_outside(ax, _legend_handles(mac))
    _freeze_layout(fig)
    # one label per model and MACs value (its precisions share the x), at its most accurate point
    groups: dict[tuple[str, float], int] = {}
    for i, a in enumerate(mac):
        k = (str(a.get("model", "?")), float(xs[i]))
        if k not in groups or ys[i] > ys[groups[k]]:
            groups[k] = i
    idx = list(groups.values())
    _place_labels(fig, ax, [(xs[i], ys[i]) for i in idx], [k[0] for k in groups])
    return fig


def _size_by_artifact(sized: list[dict]):
    """Horizontal bars, one per artifact (grouped by model), labelled with the artifact and its
    file: two INT8 files of one model (u8 and s8 activations) are two bars."""
    models = list(dict.fromkeys(str(a.get("model", "?")) for a in sized))
    rows = sorted(sized, key=lambda a: (models.index(str(a.get("model", "?"))),
                                        PRECISIONS.index(a["precision"]) if a.get("precision") in PRECISIONS else 9,
                                        str(a.get("name"))))
    fig, ax = _figure(8.0, max(3.0, 0.42 * len(rows) + 1.4))
    ys = list(range(len(rows)))[::-1]  # the first row on top
    vals = [float(a["size_mb"]) for a in rows]
    ax.barh(ys, vals, height=0.7, color=[_PREC_COLOR.get(a.get("precision"), "grey") for a in rows],
            edgecolor="black", linewidth=0.4)
    labels = [f"{a.get('name', '?')}\n{_file_label(a)}" if _file_label(a) else str(a.get("name", "?")) for a in rows]
    ax.set_yticks(ys, labels, fontsize=7)
    for y, v in zip(ys, vals):
        ax.annotate(f"{fmt(v, 'size_mb')} MB", (v, y), xytext=(3, 0), textcoords="offset points", ha="left",
                    va="center", fontsize=7)
    for k in range(1, len(rows)):  # a thin line between models
        if rows[k].get("model") != rows[k - 1].get("model"):
            ax.axhline(ys[k] + 0.5, color="0.6", lw=0.6)
    lo, hi = min(vals), max(vals)
    if hi / max(lo, 1e-9) > 20:
        ax.set_xscale("log")
        _plain_log(ax.xaxis)
        ax.set_xlim(lo / 2.0, hi * 3.0)  # room for the value labels
    else:
        ax.set_xlim(0, hi * 1.3)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("model file size (MB)")
    ax.set_title("Model file size per artifact", fontsize=9)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    _legend_outside(ax, _precision_handles(rows, patches=True), title="precision")
    return fig


def _latency_distributions(sampled: list[dict]):
    fig, ax = _figure(8.0, max(3.0, 0.45 * len(sampled) + 1.4))
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
    ax.set_yticks(range(1, len(sampled) + 1), [str(a.get("name", "?")) for a in sampled], fontsize=7)
    lo = min(min(d) for d in data if d)
    if max(max(d) for d in data if d) / max(lo, 1e-9) > 10:
        ax.set_xscale("log")
        _plain_log(ax.xaxis)
    ax.set_xlabel("latency per image, batch 1 (ms); box = p25-p75, whiskers = p1-p99")
    ax.set_title("Latency distributions", fontsize=9)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    _legend_outside(ax, _precision_handles(sampled, patches=True), title="precision")
    return fig


def _robustness(rob: list[dict]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cnames = list(dict.fromkeys(c for a in rob for c in a["robustness"]))
    fig = Figure(figsize=(4.2 * len(cnames) + 1.8, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, len(cnames), i + 1) for i in range(len(cnames))]
    for ax, cname in zip(axes, cnames):
        for a in rob:
            sev = a["robustness"].get(cname) or {}
            pts = [(0, _get(a, "accuracy", "top1"))] + [(int(k), v) for k, v in sorted(sev.items())]
            pts = [(x, y) for x, y in pts if y is not None]
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker=_ROLE_MARKER.get(role_of(a), "o"),
                    color=_PREC_COLOR.get(a.get("precision"), "grey"), label=a["name"], lw=1, ms=4)
        ax.set_title(cname, fontsize=9)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_xticks(range(0, 6))
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("top-1 accuracy (%)")
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=6)
    return fig


def _realtime(sc: dict):
    """Real-time factor per artifact and backend against the sensor, the 1.0 line drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in sc["artifacts"] if not r.get("error")]
    fig = Figure(figsize=(7.0, 0.35 * len(rows) + 1.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    y = list(range(len(rows)))[::-1]
    ax.barh(y, [r["realtime_factor"] for r in rows], color=[_PREC_COLOR.get(r.get("precision"), "grey") for r in rows])
    ax.set_yticks(y, [r["name"] if "@" in r["name"] else f"{r['name']} ({r['backend']})" for r in rows], fontsize=7)
    ax.axvline(1.0, color="black", lw=1, ls="--")
    ax.text(1.0, 1.0, "keeps up", transform=ax.get_xaxis_transform(), fontsize=7, va="bottom", ha="center")
    ax.set_xlabel(f"real-time factor vs {sc['sensor']['title']} ({sc['sensor']['pixel_rate_mpx_s']:.1f} Mpx/s)")
    ax.grid(True, axis="x", alpha=0.3)
    _legend_outside(ax, _precision_handles(rows, patches=True), title="precision")
    return fig


def figures(run: dict) -> dict[str, Any]:
    """Build the report's figures without writing them (see :func:`plot_all` for what each shows).

    Returns:
        ``{file name: matplotlib Figure}`` in :data:`PLOTS` order; figures without data are
        left out. Each figure has an Agg canvas and a final layout, so its artists can be
        measured (``fig.canvas.get_renderer()``).
    """
    arts = _artifacts(run)
    host = _get(run, "host", "cpu") or "unknown host"
    figs: dict[str, Any] = {}
    acc = [a for a in arts if _get(a, "accuracy", "top1") is not None and _get(a, "latency_ms", "p50") is not None]
    if acc:
        figs[PLOTS[0]] = _accuracy_vs_latency(acc, host)
    mac = [a for a in arts if _get(a, "accuracy", "top1") is not None and a.get("macs")]
    if mac:
        figs[PLOTS[1]] = _accuracy_vs_macs(mac)
    sized = [a for a in arts if a.get("size_mb") is not None]
    if sized:
        figs[PLOTS[2]] = _size_by_artifact(sized)
    sampled = [a for a in arts if _get(a, "latency_ms", "samples")]
    if sampled:
        figs[PLOTS[3]] = _latency_distributions(sampled)
    rob = [a for a in arts if a.get("robustness")]
    if rob:
        figs[PLOTS[4]] = _robustness(rob)
    if (run.get("scene") or {}).get("artifacts") and any(not r.get("error") for r in run["scene"]["artifacts"]):
        figs[PLOTS[5]] = _realtime(run["scene"])
    for fig in figs.values():
        if fig.get_layout_engine() is not None:
            _freeze_layout(fig)
    return figs


def plot_all(run: dict, out_dir: Path) -> list[Path]:
    """Write the report's PNG figures into ``out_dir`` (atomically; matplotlib Agg, no pyplot).

    Figures (those without data are skipped): ``accuracy_vs_latency.png`` (top-1 % vs p50
    ms, log x when the range is wide, Pareto front dashed, every point labelled with its
    artifact name), ``accuracy_vs_macs.png`` (top-1 % vs MACs, log x, one label per model),
    ``size_by_precision.png`` (model file MB, one bar per artifact labelled with its name and
    file, colour = precision, log x when sizes span > 20x), ``latency_distributions.png``
    (box plots of ``latency_ms.samples``, log x, colour legend per precision),
    ``robustness.png`` (top-1 % vs severity per corruption), ``realtime_factor.png`` (``bench --scene``:
    real-time factor per artifact and backend against the sensor, the 1.0 line drawn).

    Returns:
        The paths written, in that order.

    Raises:
        EOEdgeError: ``out_dir`` does not exist.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise EOEdgeError(f"output folder does not exist: {out_dir}")
    return [_save(fig, out_dir / name) for name, fig in figures(run).items()]
