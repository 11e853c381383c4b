"""`eo-edge bench`, `eo-edge report` and `eo-edge faults`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .. import defaults as D
from ..artifact.forms import PRECISIONS
from ..errors import EOEdgeError
from ..fileio import write_json
from .options import HomeOpt, JsonOpt, QuietOpt
from .root import _command_line, _log, app, out


@app.command()
def bench(
    inputs: Optional[List[Path]] = typer.Argument(None, metavar="MODEL", help="Checkpoints, ONNX files or compiled artifacts (default: the shipped models/)."),
    config: Optional[Path] = typer.Option(None, "--config", metavar="FILE", help="Bench config JSON (models, precisions, backends, batch_sizes, protocol), e.g. benchmarks/default.json; a setting given on the command line wins."),
    precisions: Optional[str] = typer.Option(None, "--precisions", metavar="LIST", help=f"Precisions to compile FP32 inputs to (comma-separated; default: the --config file's, else {','.join(PRECISIONS)}). Files given explicitly are always measured."),
    backend: Optional[str] = typer.Option(None, "--backend", metavar="NAME", help="onnxruntime (x86, CI), openvino (Intel), tensorrt "
                                "(Jetson), or all: every runtime available here, side by side (default: the --config file's backends, else all)."),
    data: Optional[Path] = typer.Option(None, "--data", metavar="PATH", help="Dataset (default: prepared EuroSAT test split, else the shipped 1,000-image test subset)."),
    split: str = typer.Option("test", "--split", metavar="SPLIT", help="Split of --data to measure on: test, val, train or all."),
    runs: Optional[int] = typer.Option(None, "--runs", metavar="N", help=f"Timed batch-1 runs per artifact (default {D.BENCH_RUNS}; at least 200 for the reference protocol)."),
    warmup: Optional[int] = typer.Option(None, "--warmup", metavar="N", help=f"Untimed warm-up runs per artifact (default {D.BENCH_WARMUP})."),
    rounds: Optional[int] = typer.Option(None, "--rounds", metavar="N", help=f"Interleaved rounds the timed runs are split into (default {D.BENCH_ROUNDS})."),
    batch: Optional[int] = typer.Option(None, "--batch", metavar="N", help=f"Batch size for throughput (default: the --config file's largest batch size, else {D.BENCH_BATCH})."),
    throughput_s: Optional[float] = typer.Option(None, "--throughput-s", metavar="S", help=f"Sustained throughput: seconds of back-to-back calls per round (default {D.THROUGHPUT_WINDOW_S:g})."),
    throughput_rounds: Optional[int] = typer.Option(None, "--throughput-rounds", metavar="N", help=f"Sustained throughput: interleaved rounds at most; a third and later only where the first two differ by > 3 % (default {D.THROUGHPUT_ROUNDS})."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", help="CPU threads per session (default: min(cores, 4))."),
    corruptions: Optional[str] = typer.Option(None, "--corruptions", metavar="LIST", help="Robustness: corruptions to apply, comma-separated, e.g. gaussian_noise,motion_blur."),
    severities: str = typer.Option("1-5", "--severities", metavar="RANGE", help="Corruption severities, e.g. 1-5 or 1,3,5."),
    idle_s: float = typer.Option(D.POWER_IDLE_S, "--idle-s", metavar="S", help="Power: idle baseline per artifact, s (after --settle-s)."),
    settle_s: float = typer.Option(D.POWER_SETTLE_S, "--settle-s", metavar="S", help="Power: pause after each burst before the idle baseline, s."),
    power_window_s: float = typer.Option(D.POWER_WINDOW_S, "--power-window-s", metavar="S", help="Power: timed window per artifact, s "
                                         "(>= 100 power samples wanted, else the report warns)."),
    peak: bool = typer.Option(True, "--peak/--no-peak", help="Measure the backend's GEMM peak per precision."),
    memory: bool = typer.Option(True, "--memory/--no-memory", help="Measure peak process memory per artifact (a subprocess each)."),
    max_drop: float = typer.Option(D.MAX_DROP_PTS, "--max-drop", metavar="PTS", help="Accuracy gate of every FP16/INT8 artifact vs its FP32 parent in this run (points; as `eo-edge compile --max-drop`): a failing artifact is measured, warned about and marked in the report."),
    faults: Optional[str] = typer.Option(None, "--faults", metavar="K,...", help="Fault tolerance: flip K random bits in each artifact's stored weights (e.g. 1,10), 3 seeded trials per K on 500 of the images (see `eo-edge faults` for the full campaign)."),
    out_dir: Path = typer.Option(Path("eo-edge-bench"), "--out", metavar="DIR", help="Folder for bench.json, report.md and the PNG plots."),
    scene: Optional[Path] = typer.Option(None, "--scene", metavar="RASTER", help="Also classify this georeferenced raster with every artifact (as `eo-edge scene`, no outputs): tiles/s, km²/s and the real-time factor against --sensor, table and plot."),
    sensor: str = typer.Option("sentinel-2-msi", "--sensor", metavar="NAME", help="Sensor of the --scene real-time factor: sentinel-2-msi, landsat-oli or planetscope."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Benchmark artifacts with one protocol: top-1, latency p50/p90/p99, throughput, params, MACs/FLOPs, size, memory, power; students vs the MobileViTV2 baseline, as in the paper.

    FP32 inputs are compiled to the other --precisions first. OUT gets bench.json, report.md and the plots: accuracy vs latency (with the Pareto front), accuracy vs MACs, file size per artifact, latency distributions, and robustness when --corruptions is given.

    Examples:
    eo-edge bench     (the shipped students and baseline, FP32/FP16/INT8)
    eo-edge bench models/resnet8_eurosat64.onnx --precisions fp32,int8 --runs 1000
    eo-edge bench --config benchmarks/default.json --severities 1-5 \\
        --corruptions gaussian_noise,motion_blur
    eo-edge bench --backend tensorrt     (on a Jetson)
    eo-edge bench --backend all --scene ../shared/data/scenes/landsat7-rgb-byte.tif
    """
    from ..app.bench import BenchRequest, run
    from ..report import print_table

    req = BenchRequest(
        inputs=list(inputs or []), config=config,
        precisions=None if precisions is None else [p.strip() for p in precisions.split(",") if p.strip()],
        backend=backend, data=data, split=split, runs=runs, warmup=warmup, rounds=rounds, batch=batch, threads=threads,
        throughput_s=throughput_s, throughput_rounds=throughput_rounds,
        corruptions=[c.strip() for c in (corruptions or "").split(",") if c.strip()], severities=severities,
        idle_s=idle_s, settle_s=settle_s, power_window_s=power_window_s, peak=peak, memory=memory,
        max_drop=max_drop, faults=faults, out_dir=out_dir, home=home, scene=scene, sensor=sensor)
    result, files = run(req, command=_command_line(), quiet=quiet, log=_log)
    print_table(result, out)
    if json_out:
        write_json(json_out, result)
    out.print(f"report: {files.get('report.md', out_dir / 'report.md')}  (JSON {out_dir / 'bench.json'}, plots in {out_dir})")
    if result.get("interrupted"):
        raise typer.Exit(130)


@app.command()
def report(
    runs: List[Path] = typer.Argument(..., metavar="BENCH_JSON", help="bench.json files; one re-renders it, several are compared side by side."),
    labels: Optional[str] = typer.Option(None, "--labels", metavar="LIST", help="Comma-separated labels for the runs, in order (e.g. x86,jetson; default: each file's folder name)."),
    out_dir: Path = typer.Option(Path("eo-edge-report"), "--out", metavar="DIR", help="Folder to write to: report.md and its PNG plots (one run), or compare.md (several runs; no plots)."),
):
    """Re-render a bench run, or compare several (x86 vs Jetson, before vs after).

    One run: writes OUT/report.md with its PNG plots (accuracy vs latency, accuracy vs MACs, size, latency distributions; robustness when the run measured it) and prints the table. Several runs: writes OUT/compare.md, one Markdown table of the runs side by side, and prints it; no plots.

    Examples:
    eo-edge report eo-edge-bench/bench.json
    eo-edge report x86/bench.json jetson/bench.json --labels x86,orin-nano
    """
    from ..fileio import write_bytes
    from ..report import compare_markdown, load_run, print_table, write_report

    loaded = [load_run(p) for p in runs]
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(loaded) == 1:
        files = write_report(loaded[0], out_dir)
        print_table(loaded[0], out)
        out.print(f"report: {files.get('report.md')}")
    else:
        labs = labels.split(",") if labels else [p.parent.name or p.stem for p in runs]
        if len(labs) != len(loaded):
            raise EOEdgeError(f"--labels names {len(labs)} runs, but {len(loaded)} were given")
        md = compare_markdown(loaded, labs)
        write_bytes(out_dir / "compare.md", md.encode())
        out.print(md)


@app.command("faults")
def faults_cmd(
    models: List[Path] = typer.Argument(..., metavar="ONNX", help="ONNX file(s) with eo-edge metadata, e.g. the FP32, FP16 and INT8 "
                                        "files of one model."),
    bits: str = typer.Option("1,10,100", "--bits", metavar="LIST", help="Numbers of bits k flipped per trial (comma-separated)."),
    repeats: int = typer.Option(5, "--repeats", metavar="N", help="Trials per (position class, k), each with its own seeded positions."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Seed of the flip positions."),
    classes: Optional[str] = typer.Option(None, "--classes", metavar="LIST", help="Position classes: sign, exponent, mantissa (floats), "
                                          "msb, lsb (int8), any (default: every class of each file's weight dtype)."),
    images: int = typer.Option(1000, "--images", metavar="N", help="Test-split images, a seeded sample as bench takes (0 = the whole split)."),
    data: Optional[Path] = typer.Option(None, "--data", metavar="PATH", help="EuroSAT.zip, a folder of class sub-folders, or a prepared cache folder."),
    throughput_s: Optional[float] = typer.Option(None, "--throughput-s", metavar="S", help=f"Sustained throughput: seconds of back-to-back calls per round (default {D.THROUGHPUT_WINDOW_S:g})."),
    throughput_rounds: Optional[int] = typer.Option(None, "--throughput-rounds", metavar="N", help=f"Sustained throughput: interleaved rounds at most; a third and later only where the first two differ by > 3 % (default {D.THROUGHPUT_ROUNDS})."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", help="ONNX Runtime intra-op threads (default: its own)."),
    md_out: Optional[Path] = typer.Option(None, "--md", metavar="FILE", help="Write the table as markdown to this file."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Bit-flip (single-event upset) tolerance: flip k random bits of the stored weights, measure top-1.

    Per file and position class (float: sign/exponent/mantissa; int8: MSB/LSB; any), k bits are flipped in the Conv/Gemm/MatMul weights (INT8: the stored int8 weights, not scales or zero points), --repeats times with seeded positions; the table gives clean, mean and worst top-1.

    Examples:
    eo-edge faults models/resnet8_eurosat64.onnx models/resnet8_eurosat64.int8-minmax.onnx
    eo-edge faults models/resnet8_eurosat64.fp16.onnx --bits 1,10 --repeats 10 \\
        --classes exponent --json f.json
    """
    from ..app.faults import FaultOptions, run_faults
    from ..fileio import check_not_input, check_out_dir, write_bytes, write_json
    from ..report.faults import markdown, print_table

    for p, what in ((json_out, "--json"), (md_out, "--md")):
        if p is not None:
            if p.is_dir():
                raise EOEdgeError(f"{what} {p} is a folder; give a file path")
            check_out_dir(p)
            check_not_input(p, *models, what=what)
    opts = FaultOptions(bits=bits, repeats=repeats, seed=seed, classes=classes, images=images, data=data, home=home,
                        threads=threads)
    res = run_faults(models, opts, command=_command_line(), quiet=quiet, log=_log)
    print_table(res, out)
    if json_out:
        write_json(json_out, res)
    if md_out:
        write_bytes(md_out, markdown(res).encode())
