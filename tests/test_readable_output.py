"""What a payload engineer reads: one role word per model, `--help` of every command, the plots."""

from __future__ import annotations

import copy
import re

import pytest

from conftest import ROOT, run_cli
from test_report import make_run

# ---------------------------------------------------------------------------------------------
# one role word per model, from the registry


def test_display_role_is_the_registry_word():
    from eo_edge.models.registry import REGISTRY, default_config, display_role

    assert display_role("mobilevitv2_100") == "baseline" == default_config("mobilevitv2_100").role
    assert display_role("mobilevitv2_100", "teacher") == "baseline"  # what the shipped files record
    assert display_role("resnet8", "teacher") == "student" and display_role("efficientvit_m2") == "teacher"
    assert display_role("my_own_net", "teacher") == "teacher" and display_role(None) == "student"
    for name, e in REGISTRY.items():
        assert display_role(name) == e.roles[0] == e.config.role, name


def test_bench_role_of_a_shipped_file_that_records_teacher():
    from eo_edge.measure.artifacts import _role
    from eo_edge.artifact.onnx_meta import read_metadata
    from eo_edge.artifact.config import ModelConfig

    cfg = ModelConfig.from_dict(read_metadata(ROOT / "models" / "mobilevitv2_100_eurosat64.onnx")["config"])
    assert cfg.role == "teacher"  # the shipped file is not rewritten ...
    assert _role(cfg) == "baseline"  # ... the registry decides what bench shows


def test_models_command_shows_one_role_word():
    p = run_cli("models")
    assert p.returncode == 0, p.stderr
    rows = {ln.split("│")[1].strip(): ln.split("│")[2].strip() for ln in p.stdout.splitlines() if ln.count("│") > 3}
    assert rows["mobilevitv2_100"] == "baseline" and rows["resnet8"] == "student"
    assert rows["efficientvit_m2"] == "teacher" and not any("/" in r for r in rows.values())


def test_report_and_plots_show_baseline_for_a_run_that_said_teacher(tmp_path):
    from eo_edge.report import write_report
    from eo_edge.report.plots import figures

    run = make_run()
    run["artifacts"][6]["role"] = "teacher"  # an older run of the MobileViTV2
    before = copy.deepcopy(run)
    md = write_report(run, tmp_path)["report.md"].read_text()
    assert run == before  # the caller's run is not changed
    row = next(ln for ln in md.splitlines() if ln.startswith("| mobilevitv2_100-fp32 |"))
    assert "| baseline |" in row and "teacher" not in md.split("## ")[1]
    legend = figures(run)["accuracy_vs_latency.png"].axes[0].get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert "baseline" in labels and "teacher" not in labels


# ---------------------------------------------------------------------------------------------
# --help of every command


def _command_paths() -> list[tuple[str, ...]]:
    import typer

    from eo_edge.cli import app

    paths: list[tuple[str, ...]] = []

    def walk(cmd, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            if not getattr(sub, "hidden", False):
                walk(sub, path + (name,))

    walk(typer.main.get_command(app), ())
    return paths


def _help_of(path: tuple[str, ...]) -> str:
    import typer

    from eo_edge.cli import app

    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd.help or ""


COMMANDS = _command_paths()
WIDTH = 100
TYPE_LABEL = re.compile(r"<(?:list\[[^>]*\]|str|path|Path|int|float|bool|file|dir|text|uuid|datetime)>")


def test_every_command_is_listed():
    names = {" ".join(p) for p in COMMANDS}
    assert names >= {"", "data", "data prepare", "data download", "train", "distill", "eval", "export", "compile",
                     "bench", "check", "report", "models"}


def _assert_soft_wrapped(text: str, width: int) -> None:
    """In the description above the option panels, a line ends only where its paragraph's next
    word would not have fitted (rich's own wrap); examples and their continuations excepted."""
    lines = text.splitlines()
    top = lines[: next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("╭")), len(lines))]
    start = next(i for i, ln in enumerate(top) if ln.strip().startswith("Usage:")) + 1
    body = [ln.rstrip() for ln in top[start:]]

    def example(ln: str) -> bool:
        return ln.strip().startswith("eo-edge ") or ln.startswith("   ")

    for a, b in zip(body, body[1:]):
        if not a.strip() or not b.strip() or example(a) or example(b) or a.endswith(":"):
            continue
        assert len(a) + 1 + len(b.split()[0]) > width - 1, f"hard line break at {width} columns after: {a.strip()!r}"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "eo-edge")
def test_help_is_readable_at_100_columns(path):
    p = run_cli(*path, "--help", env={"COLUMNS": str(WIDTH), "TERM": "dumb"})
    assert p.returncode == 0, p.stderr
    text = p.stdout
    assert not TYPE_LABEL.search(text), TYPE_LABEL.search(text).group(0)  # FILE, DIR, N... not <path>, <int>
    assert "…" not in text  # nothing cut off by rich
    lines = text.splitlines()
    for ln in lines:
        if "[default:" in ln:  # a default on one line, complete
            d = ln[ln.index("[default:"):]
            assert "]" in d and not d[:d.index("]")].endswith("..."), ln
    # the docstring's first sentence, whole
    doc = _help_of(path)
    first = re.split(r"(?<=[.!?])\s", " ".join(doc.split("\n\n")[0].split()), maxsplit=1)[0]
    assert first and first in " ".join(text.split()), first
    # prose paragraphs break only where the next word did not fit (no hard-wrapped docstring
    # lines), here and in a wider terminal
    _assert_soft_wrapped(text, WIDTH)
    # every example command is one line of the output (an example too long for 100 columns is
    # written over several lines with a trailing backslash)
    shown = [ln.strip() for ln in lines]
    for ln in doc.splitlines():
        m = re.search(r"(?:^|: )(eo-edge \S.*)$", ln.strip())
        if m:
            assert m.group(1).strip() in " ".join(shown) and any(s.endswith(m.group(1).strip()) for s in shown), ln


def test_report_help_says_what_each_form_writes():
    p = run_cli("report", "--help", env={"COLUMNS": str(WIDTH)})
    text = " ".join(p.stdout.replace("│", " ").split())
    assert "One run: writes OUT/report.md with its PNG plots" in text
    assert "Several runs: writes OUT/compare.md" in text and "no plots" in text


def test_readable_type_names():
    from eo_edge.cli.help import readable_type

    assert readable_type("<list[Path]>") == "PATH..." and readable_type("<path>") == "PATH"
    assert readable_type("<int>") == "N" and readable_type("<float>") == "FLOAT" and readable_type("<str>") == "TEXT"
    assert readable_type("<bool>") == "" and readable_type("<a|b>") == "a|b"


# ---------------------------------------------------------------------------------------------
# plots


def _crowded_run() -> dict:
    """The test run with an FP16 exactly on its FP32 (same latency and top-1) and two INT8
    files of one model that differ only in their activations (u8/s8)."""
    run = make_run()
    arts = run["artifacts"]
    fp32, fp16 = arts[0], arts[1]
    fp16["latency_ms"] = copy.deepcopy(fp32["latency_ms"])
    fp16["accuracy"] = copy.deepcopy(fp32["accuracy"])
    u8 = arts[2]
    u8["name"], u8["path"] = "resnet8-int8-u8", "models/resnet8_eurosat64.int8-minmax-u8.onnx"
    s8 = copy.deepcopy(u8)
    s8["name"], s8["path"], s8["size_mb"] = "resnet8-int8-s8", "models/resnet8_eurosat64.int8-minmax.onnx", 0.128
    s8["latency_ms"]["p50"] *= 1.02
    arts.insert(3, s8)
    return run


def _boxes(fig, artists):
    r = fig.canvas.get_renderer()
    return [a.get_window_extent(r) for a in artists]


def test_plot_texts_stay_inside_the_figure_and_labels_do_not_overlap():
    from eo_edge.report.plots import LABEL_GID, PLOTS, figures

    run = _crowded_run()
    run["scene"] = {"sensor": {"title": "Sentinel-2 MSI, 10 m bands", "pixel_rate_mpx_s": 19.27},  # bench --scene
                    "artifacts": [{"name": a["name"], "backend": a.get("backend", "onnxruntime"),
                                   "precision": a.get("precision"), "realtime_factor": 0.07 * (i + 1)}
                                  for i, a in enumerate(run["artifacts"])]}
    figs = figures(run)
    assert list(figs) == list(PLOTS)
    for name, fig in figs.items():
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        # everything drawn (what savefig's bbox_inches="tight" would measure) lies inside the figure
        tight, page = fig.get_tightbbox(r), fig.bbox_inches
        assert page.x0 - 0.01 <= tight.x0 and tight.x1 <= page.x1 + 0.01, (name, tight, page)
        assert page.y0 - 0.01 <= tight.y0 and tight.y1 <= page.y1 + 0.01, (name, tight, page)
        drawn = []
        for ax in fig.axes:
            lo, hi = sorted(ax.get_ylim())
            drawn += [t for t in ax.texts + [ax.title, ax.xaxis.label, ax.yaxis.label] if t.get_text().strip()]
            drawn += [t for t in ax.get_yticklabels() if t.get_text().strip() and lo <= t.get_position()[1] <= hi]
        fb = fig.bbox
        for t, bb in zip(drawn, _boxes(fig, drawn)):
            assert fb.x0 - 1 <= bb.x0 and bb.x1 <= fb.x1 + 1 and fb.y0 - 1 <= bb.y0 and bb.y1 <= fb.y1 + 1, \
                (name, t.get_text(), bb, fb)
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        assert legends, f"{name} has no legend"
        for ax in fig.axes:  # legends sit outside the data area
            if ax.get_legend() is not None:
                lb = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
                assert lb.x0 >= ax.get_window_extent().x1, name

    fig = figs["accuracy_vs_latency.png"]
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_gid() == LABEL_GID]
    assert sorted(t.get_text() for t in labels) == sorted(a["name"] for a in run["artifacts"])
    boxes = _boxes(fig, labels)
    axb = ax.get_window_extent()
    for i, b in enumerate(boxes):
        assert axb.x0 <= b.x0 and b.x1 <= axb.x1 and axb.y0 <= b.y0 and b.y1 <= axb.y1, labels[i].get_text()
        for j in range(i):
            assert not b.overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())
    # the FP16 sitting on its FP32 gets a leader line to its point: both stay identifiable
    twins = [t for t in labels if t.get_text() in ("resnet8-fp32", "resnet8-fp16")]
    assert len(twins) == 2 and any(t.arrow_patch is not None for t in twins)


def test_size_plot_names_each_file_and_latency_plot_has_a_colour_legend():
    from eo_edge.report.plots import figures

    run = _crowded_run()
    figs = figures(run)
    ticks = [t.get_text() for t in figs["size_by_precision.png"].axes[0].get_yticklabels()]
    for a in run["artifacts"]:
        assert any(a["name"] in t and a["path"].split("/")[-1] in t for t in ticks), a["name"]
    assert any("int8-minmax-u8.onnx" in t for t in ticks) and any(t.endswith("int8-minmax.onnx") for t in ticks)
    lat = figs["latency_distributions.png"].axes[0]
    assert [t.get_text() for t in lat.get_legend().get_texts()] == ["fp32", "fp16", "int8"]
    colours = [tuple(round(c, 3) for c in p.get_facecolor()[:3]) for p in lat.get_legend().get_patches()]
    assert len(set(colours)) == 3  # three distinct colours, the boxes' own
    assert {t.get_text() for t in lat.get_yticklabels()} == {a["name"] for a in run["artifacts"]}


@pytest.mark.slow  # 2 x 15 CLI start-ups (~45 s): the 100-column check above stays in the inner loop
@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "eo-edge")
def test_help_is_readable_at_80_and_160_columns(path):
    wide = run_cli(*path, "--help", env={"COLUMNS": "160", "TERM": "dumb"}).stdout
    _assert_soft_wrapped(wide, 160)
    narrow = run_cli(*path, "--help", env={"COLUMNS": "80", "TERM": "dumb"}).stdout
    assert "…" not in narrow, [ln for ln in narrow.splitlines() if "…" in ln]  # nothing cut at 80 columns either
