"""The ``eo-edge`` command line (typer).

Conventions for every command: ``--help`` with examples; bad input gives one line on
stderr and a non-zero exit, never a traceback (``EO_EDGE_DEBUG=1`` shows one); commands that
measure something take ``--json PATH`` (accuracy as ``top1`` in percent, counts as
``n_images``); the cache/home folder is ``--home`` or ``$EO_EDGE_HOME``.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console

from . import __version__
from .errors import EOEdgeError
from .formats import PRECISIONS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich",
                  help="eo-edge: EO image classifiers from training to a satellite's payload computer.")
data_app = typer.Typer(no_args_is_help=True, help="Prepare or download the EuroSAT RGB dataset.")
app.add_typer(data_app, name="data")
out = Console(width=None if sys.stdout.isatty() else 200)  # files/pipes get the full table
err = Console(stderr=True)

HomeOpt = typer.Option(None, "--home", help="eo-edge home/cache folder (default $EO_EDGE_HOME or ~/.cache/eo-edge).")
def _json_path(p: Optional[Path]) -> Optional[Path]:
    """--json is checked when the command line is parsed, before any work: its folder must exist."""
    if p is not None:
        from .fileio import check_out_dir

        if p.is_dir():
            raise EOEdgeError(f"--json {p} is a folder; give a file path")
        check_out_dir(p)
    return p


JsonOpt = typer.Option(None, "--json", callback=_json_path, help="Write the results as JSON to this file.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bars.")


def _command_line() -> str:
    return "eo-edge " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _log(msg: str) -> None:
    err.print(msg, highlight=False)


def _data(data: Optional[Path], home: Optional[Path], quiet: bool, dataset: Optional[str] = None):
    """The dataset of ``--data`` (see :func:`eo_edge.data.resolve.resolve_data`), logging to stderr;
    with no ``--data``, the cache named ``dataset`` (a model's own data; default eurosat)."""
    from .data.resolve import resolve_data

    return resolve_data(data, home, not quiet, _log, dataset=dataset)


@data_app.command("prepare")
def data_prepare(
    source: Path = typer.Option(..., "--source", help="EuroSAT.zip (official layout 2750/<Class>/*.jpg), a folder of "
                                "class sub-folders, or a root with train/, optional val/, and test/ class folders."),
    name: Optional[str] = typer.Option(None, "--name", help="Cache name under HOME/datasets (default: eurosat for "
                                       "EuroSAT.zip, else the source's own name)."),
    size: Optional[int] = typer.Option(None, "--size", help="Resize every image to SIZE x SIZE px (default: keep "
                                       "their own size, which must then be equal)."),
    bands: Optional[str] = typer.Option(None, "--bands", help="Keep these bands, in order: names (B04,B03,B02 for "
                                        "Sentinel-2) or 1-based numbers (default: all; GeoTIFFs keep every band)."),
    split_file: Optional[List[Path]] = typer.Option(None, "--split-file", help="Your split: a CSV with path and "
                                                    "split columns, or torchgeo-style lists (repeat: x-train.txt, "
                                                    "x-val.txt, x-test.txt)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Cache folder (default HOME/datasets/<name>)."),
    sha256: Optional[str] = typer.Option(None, "--sha256", help="Expected sha256 of the archive (default: the known EuroSAT one)."),
    replace: bool = typer.Option(False, "--replace", help="Replace a cache prepared from another source."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Decode every image once (RGB uint8 at its own size) and cache it for training and evaluation.

    Corrupt files are listed and skipped; converted images (mode, size) are reported. A root with
    train/ and test/ folders keeps its own split (val carved from train when there is no val/).

    Examples:
      eo-edge data prepare --source ../shared/data/EuroSAT.zip
      eo-edge data prepare --source my_scenes/ --name scenes256      (my_scenes/train/<Class>/..., test/...)
    """
    from .data.prepare import prepare
    from .data.split import split_indices
    from .data.prepare import load_prepared
    from .fileio import write_json
    from .home import home_dir

    from .data.resolve import dataset_name, source_fingerprint

    if size is not None and not 1 <= size <= 4096:
        raise EOEdgeError(f"--size must be between 1 and 4096 px, got {size}")
    if name is not None and (not name or "/" in name or name.startswith(".")):
        raise EOEdgeError(f"--name {name!r}: give a plain folder name")
    if not source.exists():
        raise EOEdgeError(f"data source not found: {source}")
    dest = out_dir or home_dir(home) / "datasets" / (name or dataset_name(source))
    m = prepare(source, dest, sha256=sha256, progress=not quiet, replace=replace, size=size,
                source_key=source_fingerprint(source), bands=bands, split_files=list(split_file or []) or None)
    from .data.resolve import report_issues

    report_issues(m, _log, most=10**9)
    d = load_prepared(dest)

    def size(s: str) -> int:
        try:
            return int(len(split_indices(d, s)))
        except EOEdgeError:  # an empty split is reported as 0 here; commands that need it say so
            return 0

    sizes = {s: size(s) for s in ("train", "val", "test")}
    out.print(f"prepared {m['n_images']} images in {len(m['class_names'])} classes -> {dest}  "
              f"(train {sizes['train']}, val {sizes['val']}, test {sizes['test']}; skipped {len(m['skipped'])})")
    if json_out:
        res = {k: v for k, v in m.items() if k != "names"}
        res.update({"cache": str(dest), "splits": sizes})
        write_json(json_out, res)


@data_app.command("download")
def data_download(
    dest: Path = typer.Option(Path("EuroSAT.zip"), "--dest", help="Where to save the archive."),
    url: Optional[str] = typer.Option(None, "--url", help="Archive URL (default: the official EuroSAT RGB archive)."),
    sha256: Optional[str] = typer.Option(None, "--sha256", help="Expected sha256 (default: the known EuroSAT one)."),
    quiet: bool = QuietOpt,
):
    """Download the official EuroSAT RGB archive (resumable, checksum-verified).

    Example: eo-edge data download --dest EuroSAT.zip && eo-edge data prepare --source EuroSAT.zip
    """
    from .data.download import EUROSAT_SHA256, EUROSAT_URL, download

    p = download(url or EUROSAT_URL, dest, sha256 or (EUROSAT_SHA256 if url is None else None), progress=not quiet)
    out.print(f"downloaded {p}")


# Options shared by `train` and `distill` (typer Annotated aliases: one definition each).
DataOpt = Annotated[Optional[Path], typer.Option("--data", help="EuroSAT.zip, a folder of class sub-folders, or a prepared cache folder.")]
ImgSizeOpt = Annotated[int, typer.Option("--img-size", help="Input size in pixels (64 = native EuroSAT).")]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="Training epochs (>= 1).")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Images per optimizer step.")]
LrOpt = Annotated[float, typer.Option("--lr", help="Peak AdamW learning rate.")]
WdOpt = Annotated[float, typer.Option("--weight-decay", help="AdamW weight decay.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of initialisation, batch order and augmentation.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="CPU threads for torch.")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Run folder (default HOME/runs/<name>).")]
ResumeOpt = Annotated[bool, typer.Option("--resume/--no-resume", help="Continue from OUT/last.pt when present.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit-train", help="Use only N training images (smoke tests).")]


def _train_options(**kw):
    """A validated :class:`eo_edge.train.TrainOptions` from the shared CLI options."""
    from .models.registry import default_config
    from .train import TrainOptions, check_options

    opts = TrainOptions(**kw)
    default_config(opts.arch)
    check_options(opts)
    return opts


@app.command()
def train(
    arch: Annotated[str, typer.Option("--arch", help="Model name (see `eo-edge models`).")] = "resnet8",
    data: DataOpt = None, img_size: ImgSizeOpt = 64, epochs: EpochsOpt = 15, batch_size: BatchOpt = 128,
    lr: LrOpt = 3e-3, weight_decay: WdOpt = 0.05, seed: SeedOpt = 0, device: DeviceOpt = "auto",
    threads: ThreadsOpt = None, out_dir: OutOpt = None, resume: ResumeOpt = True, limit_train: LimitOpt = None,
    home: Optional[Path] = HomeOpt, json_out: Optional[Path] = JsonOpt, quiet: bool = QuietOpt,
):
    """Train a classifier with cross-entropy; select on validation; evaluate once on test.

    Example: eo-edge train --arch resnet8 --data ../shared/data/EuroSAT.zip --img-size 64 --epochs 15
    """
    from .home import home_dir
    from .train import train as run_train

    opts = _train_options(arch=arch, img_size=img_size, epochs=epochs, batch_size=batch_size, lr=lr,
                          weight_decay=weight_decay, seed=seed, device=device, threads=threads, limit_train=limit_train)
    ds = _data(data, home, quiet)
    run_dir = out_dir or home_dir(home) / "runs" / f"{arch}-{img_size}px-s{seed}"
    res = run_train(opts, ds, run_dir, resume=resume, progress=not quiet, log=_log, command=_command_line())
    _finish_training(res, f"{arch} test split", run_dir, json_out)


def _finish_training(res: dict, title: str, run_dir: Path, json_out: Optional[Path]) -> None:
    """Print the test report and best checkpoint of a run; write --json. Quiet on non-zero torchrun ranks."""
    from .fileio import write_json

    if "test" not in res:  # a non-zero rank under torchrun: rank 0 reports
        return
    _print_report(res["test"], title, res)
    out.print(f"best checkpoint: {run_dir / 'best.pt'}  (epoch {res['best_epoch']}, val top-1 {res['best_val_top1']:.2f} %)")
    if json_out:
        write_json(json_out, res)


@app.command()
def distill(
    student: Annotated[str, typer.Option("--student", help="Student architecture: resnet8 or resnet16 (any registry name works).")] = "resnet8",
    teacher: Annotated[List[Path], typer.Option("--teacher", help="Teacher checkpoint; repeat for several (the paper: EfficientViT-M2 and MobileViTV2).")] = ...,
    weighting: Annotated[str, typer.Option("--weighting", help="batch (the paper's per-batch confidence rule), sample (per image) or static (0.5/0.5).")] = "batch",
    temperature: Annotated[float, typer.Option("--temperature", help="Softmax temperature T of the KD terms.")] = 5.0,
    data: DataOpt = None, img_size: ImgSizeOpt = 64, epochs: EpochsOpt = 15, batch_size: BatchOpt = 128,
    lr: LrOpt = 3e-3, weight_decay: WdOpt = 0.05, seed: SeedOpt = 0, device: DeviceOpt = "auto",
    threads: ThreadsOpt = None, out_dir: OutOpt = None, resume: ResumeOpt = True, limit_train: LimitOpt = None,
    home: Optional[Path] = HomeOpt, json_out: Optional[Path] = JsonOpt, quiet: bool = QuietOpt,
):
    """Distil frozen teachers into a student with confidence-based dynamic weighting (Le et al., arXiv 2411.00209).

    The teachers' logits on all 8 flip/rotation views of every training image are computed
    once per teacher and cached (exact: augmentation is that finite group), so an epoch costs
    about one student epoch. Per epoch the log shows the teachers' mean confidences and the weights used.

    Example: eo-edge distill --student resnet8 --teacher models/resnet16_eurosat64.pt --teacher models/mobilevitv2_100_eurosat64.pt --epochs 30
    """
    from .data.split import train_rows
    from .home import home_dir
    from .teacher_cache import build_teacher_cache
    from .train import pick_device, train as run_train

    if weighting not in ("batch", "sample", "static"):
        raise EOEdgeError(f"unknown --weighting {weighting!r}; choose batch, sample or static")
    if temperature <= 0:
        raise EOEdgeError("--temperature must be positive")
    from .models.checkpoint import load_checkpoint

    for t in teacher:  # every teacher readable and trained before any data work
        if not t.is_file():
            raise EOEdgeError(f"teacher {t} is a folder" if t.is_dir() else f"teacher checkpoint not found: {t}")
        load_checkpoint(t)
    opts = _train_options(arch=student, img_size=img_size, epochs=epochs, batch_size=batch_size, lr=lr,
                          weight_decay=weight_decay, seed=seed, device=device, threads=threads, limit_train=limit_train,
                          teachers=[str(t) for t in teacher], weighting=weighting, temperature=temperature)
    ds = _data(data, home, quiet)
    cache = build_teacher_cache(list(teacher), ds, train_rows(ds, limit_train, seed), home_dir(home) / "teacher-cache",
                                device=pick_device(device), progress=not quiet, log=_log)
    run_dir = out_dir or home_dir(home) / "runs" / f"kd-{student}-{weighting}-s{seed}"
    res = run_train(opts, ds, run_dir, resume=resume, progress=not quiet, log=_log, command=_command_line(),
                    teacher_logits=cache)
    _finish_training(res, f"{student} distilled ({weighting}) test split", run_dir, json_out)


def _print_report(rep: dict, title: str, extra: dict | None = None) -> None:
    from rich.table import Table

    t = Table(title=f"{title}: top-1 {rep['top1']:.2f} %  (n_images {rep['n_images']})")
    for c in ("class", "accuracy %", "precision %", "recall %", "F1 %", "support"):
        t.add_column(c, justify="left" if c == "class" else "right")
    for name, r in rep["per_class"].items():
        t.add_row(name, f"{r['accuracy']:.2f}", f"{r['precision']:.2f}", f"{r['recall']:.2f}", f"{r['f1']:.2f}", str(r["support"]))
    t.add_row("[bold]macro", "", f"{rep['macro_precision']:.2f}", f"{rep['macro_recall']:.2f}", f"{rep['macro_f1']:.2f}",
              str(rep["n_images"]))
    out.print(t)
    if "ece_pct" in rep:
        out.print(f"confidence: ECE {rep['ece_pct']:.2f} % (15 bins), NLL {rep['nll']:.4f}, Brier {rep['brier']:.4f}",
                  highlight=False)


@app.command("eval")
def eval_cmd(
    model_path: Path = typer.Argument(..., help="Checkpoint (.pt/.pth, ours or the authors'), ONNX file or compiled artifact."),
    data: Optional[Path] = typer.Option(None, "--data", help="EuroSAT.zip, a folder of class sub-folders, or a prepared cache folder."),
    split: str = typer.Option("test", "--split", help="train, val, test or all."),
    img_size: Optional[int] = typer.Option(None, "--img-size", help="Override the input size (pixels)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="For bare state_dicts: sentry (224 px, ImageNet mean/std; default) or eurosat64."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture of a bare state_dict, if it can't be inferred."),
    backend: str = typer.Option("onnxruntime", "--backend", help="Runtime for ONNX/compiled artifacts: onnxruntime or tensorrt."),
    batch_size: int = typer.Option(256, "--batch-size"),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Evaluate a checkpoint, ONNX file or compiled artifact with its own preprocessing.

    Examples:
      eo-edge eval models/resnet8_eurosat64.pt --data ../shared/data/EuroSAT.zip
      eo-edge eval ../shared/weights/sentry/resnet8_dual.pth --data ../shared/data/EuroSAT.zip --preset sentry
      eo-edge eval resnet8.int8.onnx --split val --json r.json
    """
    from .data.split import split_indices
    from .evaluate import check_classes
    from .fileio import check_not_input, write_json
    from .loading import open_model

    if not model_path.exists():
        raise EOEdgeError(f"model not found: {model_path}")
    if model_path.is_dir():
        raise EOEdgeError(f"{model_path} is a folder; give a checkpoint, ONNX or engine file")
    if img_size is not None and not 1 <= img_size <= 4096:
        raise EOEdgeError(f"--img-size must be between 1 and 4096 px, got {img_size}")
    if batch_size < 1:
        raise EOEdgeError(f"--batch-size must be at least 1, got {batch_size}")
    if json_out is not None:
        check_not_input(json_out, model_path, what="--json")
    fn, cfg, info = open_model(model_path, arch=arch, preset=preset, img_size=img_size, backend=backend)
    from .data.resolve import model_dataset

    ds = _data(data, home, quiet, dataset=model_dataset(cfg))
    check_classes(cfg.class_names, ds.class_names, model_path.name)
    sub = ds.subset(split_indices(ds, split))
    from .data.split import split_source

    _log(f"data: {split} split of {ds.root or data} ({len(sub)} images; {split_source(ds)})")
    from .evaluate import evaluate

    rep = evaluate(fn, sub, cfg.input_size, cfg.mean, cfg.std, cfg.class_names, batch_size=batch_size, progress=not quiet)
    rep.update({"model": str(model_path), "split": split, "input_size": cfg.input_size, "arch": cfg.arch,
                "kind": info.get("kind"), "sha256": info.get("sha256")})
    _print_report(rep, f"{model_path.name} on {split}")
    if json_out:
        write_json(json_out, rep)


@app.command()
def export(
    ckpt: Path = typer.Argument(..., help="Checkpoint (.pt/.pth): ours or a bare state_dict."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output .onnx (default ./<checkpoint stem>.onnx)."),
    img_size: Optional[int] = typer.Option(None, "--img-size", help="Input size in pixels (default: the checkpoint's)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (13..21)."),
    dynamic_batch: bool = typer.Option(True, "--dynamic-batch/--static-batch", help="Symbolic batch dimension, or batch 1."),
    preset: Optional[str] = typer.Option(None, "--preset", help="For bare state_dicts: sentry (224 px) or eurosat64."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture of a bare state_dict."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset for the parity check (default: prepared EuroSAT, else the shipped test subset)."),
    parity_images: int = typer.Option(512, "--parity-images", help="Real test images for the PyTorch/ONNX Runtime parity check (0 = all)."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Export to one self-contained ONNX file (input `input`, output `logits`), simplify, check, verify.

    Normalisation is not inside the graph: the input is float32 NCHW normalised with the
    mean/std stored in the file's metadata_props (eo_edge.config).

    Examples:
      eo-edge export models/resnet8_eurosat64.pt -o resnet8.onnx
      eo-edge export ../shared/weights/sentry/resnet8_dual.pth --preset sentry -o sentry_r8.onnx
    """
    import numpy as np

    from .export import export as do_export
    from .fileio import check_not_input, check_out_dir, write_json

    if not ckpt.is_file():
        raise EOEdgeError(f"checkpoint not found: {ckpt}")
    output = check_out_dir(output or Path.cwd() / f"{ckpt.stem}.onnx")
    check_not_input(output, ckpt, what="-o")
    if json_out is not None:
        check_not_input(json_out, ckpt, output, what="--json")
    from .data.resolve import measurement_data, model_dataset
    from .models.checkpoint import load_checkpoint

    _, ccfg, _ = load_checkpoint(ckpt, arch=arch, preset=preset, img_size=img_size)  # its data: parity images
    pd, pinfo = measurement_data(data, home, not quiet, n=parity_images, log=_log, dataset=model_dataset(ccfg))
    if pd.images.shape[-1] != ccfg.in_chans:
        raise EOEdgeError(f"parity data has {pd.images.shape[-1]} bands, {ckpt.name} takes {ccfg.in_chans}; pass --data "
                          "with the model's own data")
    imgs, src = np.asarray(pd.images), f"{pinfo['kind']} ({pinfo['n_images']} images)"
    rec = do_export(ckpt, output, img_size=img_size, opset=opset, dynamic_batch=dynamic_batch, parity_images=imgs,
                    arch=arch, preset=preset)
    rec["parity_data"] = src
    p = rec["parity"]
    out.print(f"exported {output}  ({rec['nodes']} nodes, opset {rec['opset']}, {rec['size_mb']:.3f} MB, "
              f"exporter {rec['exporter']}, simplifier {rec['simplifier']}, {rec['seconds']:.1f} s)")
    for r in rec["replaced_pools"]:
        out.print(f"  AdaptiveAvgPool2d -> AveragePool: {r}")
    out.print(f"  parity vs PyTorch on {src}: max |logit diff| {p['max_abs_diff']:.2e}, "
              f"top-1 agreement {p['top1_agreement']:.2f} %")
    if json_out:
        write_json(json_out, rec)


@app.command("compile")
def compile_cmd(
    model: Path = typer.Argument(..., help="FP32 ONNX file made by `eo-edge export`."),
    fp16: bool = typer.Option(False, "--fp16", help="Make an FP16 ONNX (I/O kept FP32)."),
    int8: bool = typer.Option(False, "--int8", help="Make a QDQ INT8 ONNX calibrated on real images."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Calibration image folder (default: the committed calibration/ set)."),
    calib_size: int = typer.Option(512, "--calib-size", help="Number of calibration images."),
    method: str = typer.Option("minmax", "--method", help="Calibration: minmax, entropy or percentile."),
    activations: str = typer.Option("auto", "--activations", help="INT8 activations: s8 (symmetric, TensorRT-ready), u8 (asymmetric, fast on ONNX Runtime x86), auto (u8 for onnxruntime, s8 for tensorrt)."),
    quantize_ops: str = typer.Option("all", "--quantize-ops", help="INT8 Q/DQ placement: all (every op ONNX Runtime quantizes), weighted (Conv/Gemm/MatMul inputs only, TensorRT's advice) or a list, e.g. Conv,MatMul."),
    backend: str = typer.Option("onnxruntime", "--backend", help="onnxruntime (x86, CI) or tensorrt (Jetson: builds an engine)."),
    eval_data: Optional[Path] = typer.Option(None, "--eval-data", help="Data for the accuracy gate (default: validation split of the prepared dataset)."),
    max_drop: Optional[float] = typer.Option(None, "--max-drop", help="Fail if top-1 drops more than PTS points below the FP32 parent (to hold on other data, set it ~1.5 SE below your goal)."),
    auto_fallback: bool = typer.Option(False, "--auto-fallback", help="INT8: keep the most error-sensitive activations in float (their Q/DQ pairs removed; weights stay int8) until --max-drop (default 0.5) passes."),
    fallback_rank: str = typer.Option("output", "--fallback-rank", help="--auto-fallback ranking: output (leave-one-out effect on the logits, 128 calibration images, cached) or local (own Q/DQ error; fast, less accurate)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output path (one precision only; default beside the input)."),
    workspace_mb: int = typer.Option(1024, "--workspace-mb", help="TensorRT builder workspace limit (MB)."),
    dla_core: Optional[int] = typer.Option(None, "--dla-core", help="TensorRT: build for this DLA core (GPU fallback on)."),
    timing_cache: Optional[Path] = typer.Option(None, "--timing-cache", help="TensorRT: timing-cache file, loaded if present and saved after the build."),
    batch_profile: str = typer.Option("1,1,32", "--batch-profile", help="TensorRT optimisation profile: min,opt,max batch."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Compile an FP32 ONNX to FP16 and/or calibrated INT8 (QDQ), then gate it on accuracy.

    Examples:
      eo-edge compile resnet8.onnx --fp16 --int8
      eo-edge compile resnet8.onnx --int8 --method entropy --max-drop 0.3
      eo-edge compile mobilevitv2.onnx --int8 --activations s8 --auto-fallback --max-drop 0.25
      eo-edge compile resnet8.onnx --int8 --backend tensorrt     (on a Jetson)
    """
    from .compile_cmd import CompileOptions, run_compile

    opts = CompileOptions(fp16=fp16, int8=int8, calib=calib, calib_size=calib_size, method=method,
                          activations=activations, quantize_ops=quantize_ops, fallback_rank=fallback_rank,
                          backend=backend, eval_data=eval_data, max_drop=max_drop, auto_fallback=auto_fallback,
                          output=output, workspace_mb=workspace_mb, dla_core=dla_core, timing_cache=timing_cache,
                          batch_profile=batch_profile, home=home)
    run_compile(model, opts, json_out=json_out, quiet=quiet, log=_log)


@app.command()
def bench(
    inputs: Optional[List[Path]] = typer.Argument(None, help="Checkpoints, ONNX files or compiled artifacts (default: the shipped models/)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Bench config JSON (models x precisions x backends x batch sizes), e.g. benchmarks/default.json."),
    precisions: str = typer.Option(",".join(PRECISIONS), "--precisions", help="Precisions to compile FP32 inputs to (comma-separated)."),
    backend: str = typer.Option("onnxruntime", "--backend", help="onnxruntime (x86, CI), openvino (Intel), tensorrt "
                                "(Jetson), or all: every runtime available here, side by side."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset (default: prepared EuroSAT test split, else the shipped 1,000-image test subset)."),
    split: str = typer.Option("test", "--split", help="Split of --data to measure on: test, val, train or all."),
    runs: int = typer.Option(200, "--runs", help="Timed batch-1 runs per artifact (at least 200 for the reference protocol)."),
    warmup: int = typer.Option(50, "--warmup", help="Untimed warm-up runs per artifact."),
    rounds: int = typer.Option(10, "--rounds", help="Interleaved rounds the timed runs are split into."),
    batch: int = typer.Option(64, "--batch", help="Batch size for throughput."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads per session (default: min(cores, 4))."),
    corruptions: Optional[str] = typer.Option(None, "--corruptions", help="Robustness: e.g. gaussian_noise,motion_blur."),
    severities: str = typer.Option("1-5", "--severities", help="Corruption severities, e.g. 1-5 or 1,3,5."),
    idle_s: float = typer.Option(10.0, "--idle-s", help="Power: idle baseline per artifact, s (after --settle-s)."),
    settle_s: float = typer.Option(5.0, "--settle-s", help="Power: pause after each burst before the idle baseline, s."),
    power_window_s: float = typer.Option(30.0, "--power-window-s", help="Power: timed window per artifact, s "
                                         "(>= 100 power samples wanted, else the report warns)."),
    peak: bool = typer.Option(True, "--peak/--no-peak", help="Measure the backend's GEMM peak per precision."),
    memory: bool = typer.Option(True, "--memory/--no-memory", help="Measure peak process memory per artifact (a subprocess each)."),
    out_dir: Path = typer.Option(Path("eo-edge-bench"), "--out", help="Folder for bench.json, report.md and plots."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Benchmark artifacts with one protocol: top-1, latency p50/p90/p99, throughput, params,
    MACs/FLOPs, size, memory, power; students vs the MobileViTV2 baseline, as in the paper.

    Examples:
      eo-edge bench                                   (the shipped students and baseline, FP32/FP16/INT8)
      eo-edge bench models/resnet8_eurosat64.onnx --precisions fp32,int8 --runs 1000
      eo-edge bench --config benchmarks/default.json --corruptions gaussian_noise,motion_blur --severities 1-5
      eo-edge bench --backend tensorrt                (on a Jetson)
    """
    from .bench import BenchOptions, default_inputs, load_config, prepare_artifacts, run_bench
    from .data.resolve import measurement_data
    from .fileio import write_json
    from .home import home_dir

    from .backends import get_backend
    from .formats import check_precisions

    precs = check_precisions([p.strip() for p in precisions.split(",") if p.strip()], " in --precisions")

    from .formats import BACKENDS

    if backend in ("all", "auto"):  # every runtime available here, side by side
        backends = [b for b in BACKENDS if get_backend(b).available()[0]]
    else:
        backends = [backend]
        ok, why = get_backend(backend).available()
        if not ok:
            raise EOEdgeError(why)
    if runs < 1 or rounds < 1 or warmup < 0 or batch < 1:
        raise EOEdgeError("--runs, --rounds and --batch must be positive, --warmup non-negative")
    from .power.protocol import PowerProtocol

    power = PowerProtocol(idle_s=idle_s, settle_s=settle_s, window_s=power_window_s)
    power.check()
    paths = list(inputs or [])
    if config:
        cfgd = load_config(config)
        paths += [Path(m) for m in cfgd.get("models", [])]
        precs = cfgd.get("precisions", precs)
        if cfgd.get("backends"):
            backend = cfgd["backends"][0]
        if cfgd.get("batch_sizes"):
            batch = max(int(b) for b in cfgd["batch_sizes"])
    if not paths:
        paths = default_inputs()
        if not paths:
            raise EOEdgeError("no inputs and no shipped models/*.onnx found")
    cors, sevs = [], []
    if corruptions:
        from .corruptions import CORRUPTIONS, parse_severities

        cors = [c.strip() for c in corruptions.split(",") if c.strip()]
        for c in cors:
            if c not in CORRUPTIONS:
                raise EOEdgeError(f"unknown corruption {c!r}; known: {', '.join(CORRUPTIONS)}")
        sevs = parse_severities(severities)
    from .bench import check_batch_memory

    check_batch_memory([Path(p) for p in paths], batch)
    arts = []
    for b in backends:
        got = prepare_artifacts(paths, precs, home_dir(home) / "bench-cache", _log, backend=b, home=home)
        for a in got:
            a.backend = b
            if len(backends) > 1:
                a.name = f"{a.name}@{b}"
        arts += got
    out_dir.mkdir(parents=True, exist_ok=True)
    if split not in ("train", "val", "test", "all"):
        raise EOEdgeError(f"unknown --split {split!r}; choose train, val, test or all")
    ds, info = measurement_data(data, home, not quiet, log=_log, split=split)
    _log(f"benchmarking {len(arts)} artifacts on {info['kind']} ({info['n_images']} images), backend {backend}")
    opts = BenchOptions(warmup=warmup, runs=runs, rounds=rounds, throughput_batch=batch, threads=threads,
                        backend=backend, corruptions=cors, severities=sevs, peak=peak, memory=memory, power=power,
                        engine_dir=home_dir(home) / "engines")
    run = run_bench(arts, ds, info, opts, command=_command_line(), progress=not quiet, log=_log)
    if not run["comparisons"]:
        _log("[yellow]note:[/] no FP32 baseline (role 'baseline', e.g. MobileViTV2) among the inputs: "
             "the paper comparison is skipped")
    from .report import print_table, write_report

    write_json(out_dir / "bench.json", run)
    files = write_report(run, out_dir)
    print_table(run, out)
    if json_out:
        write_json(json_out, run)
    out.print(f"report: {files.get('report.md', out_dir / 'report.md')}  (JSON {out_dir / 'bench.json'}, plots in {out_dir})")
    if run.get("interrupted"):
        raise typer.Exit(130)


@app.command("check")
def check_cmd(
    onnx_files: Optional[List[Path]] = typer.Argument(None, help="ONNX file(s) to check (default: the shipped "
                                                      "models in the forms TensorRT runs: FP32, FP16, INT8-s8)."),
    target: Optional[List[str]] = typer.Option(None, "--target", help="Rule-table target, repeatable: tensorrt-8.5, "
                                               "tensorrt-8.6, tensorrt-10.0, tensorrt-10.1, tensorrt-10.3 (or 8.6 ...); "
                                               "default: all."),
    dla: bool = typer.Option(False, "--dla", help="Also apply the DLA rules (static shapes, FP16/INT8 only)."),
    json_out: Optional[Path] = JsonOpt,
):
    """Static TensorRT preflight, without TensorRT: check ONNX files against the rule table.

    The table (eo_edge/trt_rules) holds, per TensorRT release, the operators and tensor types of
    onnx-tensorrt's docs/operators.md at that release, the Q/DQ rules and the DLA restrictions,
    each with its source. One line per violation names the node; exit 1 when any.

    Examples:
      eo-edge check models/resnet8_eurosat64.int8-minmax.onnx --target tensorrt-8.6
      eo-edge check models/*.onnx --target 8.5 --target 10.3 --json check.json
      eo-edge check model.onnx --target 8.6 --dla
      eo-edge check --target tensorrt-10.3     (the shipped models)
    """
    from .check_cmd import run_check, shipped_tensorrt_files
    from .fileio import check_not_input, write_json

    files = list(onnx_files or []) or shipped_tensorrt_files()
    if json_out is not None:
        check_not_input(json_out, *files, what="--json")
    res = run_check(files, target, dla=dla, log=lambda m: out.print(m, markup=False, highlight=False, soft_wrap=True))
    if json_out:
        write_json(json_out, res)
    if not res["ok"]:
        raise typer.Exit(1)


@app.command()
def report(
    runs: List[Path] = typer.Argument(..., help="bench.json files; one re-renders it, several are compared side by side."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Comma-separated labels for the runs (e.g. x86,jetson)."),
    out_dir: Path = typer.Option(Path("eo-edge-report"), "--out", help="Folder for report.md and plots."),
):
    """Re-render a bench run, or compare several (x86 vs Jetson, before vs after).

    Examples:
      eo-edge report eo-edge-bench/bench.json
      eo-edge report x86/bench.json jetson/bench.json --labels x86,orin-nano
    """
    from .fileio import write_bytes
    from .report import compare_markdown, load_run, print_table, write_report

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


@app.command("models")
def models_cmd():
    """List the registered architectures with their default input size and role.

    Example: eo-edge models
    """
    from rich.table import Table

    from .models.registry import REGISTRY

    t = Table(title="eo-edge model registry")
    for c in ("name", "role", "input px", "mean", "std"):
        t.add_column(c)
    for name, e in REGISTRY.items():
        cfg = e.config
        t.add_row(name, "/".join(e.roles), str(cfg.input_size), str(tuple(round(v, 3) for v in cfg.mean)),
                  str(tuple(round(v, 3) for v in cfg.std)))
    out.print(t)


def _version_cb(value: bool):
    if value:
        out.print(f"eo-edge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version_cb, is_eager=True, help="Print the version.")):
    """eo-edge: EO image classifiers from training to a satellite's payload computer."""


def _interrupted() -> None:
    err.print("interrupted: files already finished are kept; partial outputs were removed and no earlier file "
              "was replaced (train/distill resume from OUT/last.pt, the last finished epoch)", highlight=False,
              soft_wrap=True)


def main() -> None:
    """Console-script entry point: runs the typer app, turning errors into one line + exit code."""
    try:  # typer >= 0.24 vendors its click as typer._click
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover - older typer on the real click
        from click import exceptions as cx

    debug = os.environ.get("EO_EDGE_DEBUG") == "1"
    try:
        # standalone_mode=False: usage errors reach us as exceptions, so they print as one
        # `error:` line like every other error (not typer's boxed panel)
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            if code == 130:  # typer returns Ctrl-C as exit code 130 in this mode
                _interrupted()
            sys.exit(code)
    except typer.Exit as e:
        if isinstance(e.__cause__, KeyboardInterrupt):  # typer turns Ctrl-C into Exit(130)
            _interrupted()
        sys.exit(e.exit_code)
    except typer.Abort:  # Ctrl-C inside a prompt
        err.print("interrupted", highlight=False)
        sys.exit(130)
    except cx.UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError" and e.ctx is not None:  # a bare group: its help
            out.print(e.ctx.get_help())
            sys.exit(0)
        cmd = e.ctx.command_path if e.ctx is not None else "eo-edge"
        err.print(f"[bold red]error:[/] {e.format_message()} (see `{cmd} --help`)", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except EOEdgeError as e:
        if debug:
            raise
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        _interrupted()
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - last line of defence: never a traceback
        if debug:
            raise
        msg = (str(e).strip().splitlines() or [""])[0][:300]
        err.print(f"[bold red]error:[/] {type(e).__name__}: {msg} (EO_EDGE_DEBUG=1 for a traceback)", highlight=False,
                  soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
