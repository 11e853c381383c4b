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
from .cli_help import install as _readable_help
from .errors import EOEdgeError
from .formats import PRECISIONS

_readable_help()  # --help shows FILE, DIR, N... (typer's <path>, <list[Path]> otherwise)

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich",
                  help="eo-edge: EO image classifiers from training to a satellite's payload computer.")
data_app = typer.Typer(no_args_is_help=True, help="Prepare a dataset cache (EuroSAT or your own class folders), or download EuroSAT RGB.")
app.add_typer(data_app, name="data")
out = Console(width=None if sys.stdout.isatty() else 200)  # files/pipes get the full table
err = Console(stderr=True)

HomeOpt = typer.Option(None, "--home", metavar="DIR", help="eo-edge home/cache folder (default: $EO_EDGE_HOME, else ~/.cache/eo-edge).")
def _json_path(p: Optional[Path]) -> Optional[Path]:
    """--json is checked when the command line is parsed, before any work: its folder must exist."""
    if p is not None:
        from .fileio import check_out_dir

        if p.is_dir():
            raise EOEdgeError(f"--json {p} is a folder; give a file path")
        check_out_dir(p)
    return p


JsonOpt = typer.Option(None, "--json", metavar="FILE", callback=_json_path, help="Write the results as JSON to this file.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bars or progress lines; results and errors still print.")


def _command_line() -> str:
    return "eo-edge " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _log(msg: str) -> None:
    err.print(msg, highlight=False, soft_wrap=True)  # one message, one line (log files, CI)


def _data(data: Optional[Path], home: Optional[Path], quiet: bool, dataset: Optional[str] = None):
    """The dataset of ``--data`` (see :func:`eo_edge.data.resolve.resolve_data`), logging to stderr;
    with no ``--data``, the cache named ``dataset`` (a model's own data; default eurosat)."""
    from .data.resolve import resolve_data

    return resolve_data(data, home, not quiet, _log, dataset=dataset)


@data_app.command("prepare")
def data_prepare(
    source: Path = typer.Option(..., "--source", metavar="PATH", help="EuroSAT.zip (official layout "
                                "2750/<Class>/*.jpg), a folder of class sub-folders, or a root with train/, optional "
                                "val/, and test/ class folders."),
    name: Optional[str] = typer.Option(None, "--name", metavar="NAME", help="Cache name under HOME/datasets (default: "
                                       "eurosat for EuroSAT.zip, else the source's own name)."),
    size: Optional[int] = typer.Option(None, "--size", metavar="PX", help="Resize every image to PX x PX pixels "
                                       "(default: keep their own size, which must then be equal)."),
    bands: Optional[str] = typer.Option(None, "--bands", metavar="BANDS", help="Keep these bands, in order: names "
                                        "(B04,B03,B02 for Sentinel-2) or 1-based numbers (default: all; GeoTIFFs keep "
                                        "every band)."),
    split_file: Optional[List[Path]] = typer.Option(None, "--split-file", metavar="FILE", help="Your split: a CSV with "
                                                    "path and split columns, or torchgeo-style lists (repeat: "
                                                    "x-train.txt, x-val.txt, x-test.txt)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="Cache folder (default: "
                                           "HOME/datasets/NAME)."),
    sha256: Optional[str] = typer.Option(None, "--sha256", metavar="HEX", help="Expected sha256 of the archive "
                                         "(default: the known EuroSAT one)."),
    replace: bool = typer.Option(False, "--replace", help="Replace a cache prepared from another source."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Decode every image once (RGB uint8 at its own size) and cache it for training and evaluation.

    Corrupt files are listed and skipped; converted images (mode, size) are reported. A root with train/ and test/ folders (my_scenes/train/<Class>/*.png, my_scenes/test/<Class>/*.png) keeps its own split; val is carved from train when there is no val/.

    Examples:
    eo-edge data prepare --source ../shared/data/EuroSAT.zip
    eo-edge data prepare --source my_scenes/ --name scenes256
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
    dest: Path = typer.Option(Path("EuroSAT.zip"), "--dest", metavar="FILE", help="Where to save the archive."),
    url: Optional[str] = typer.Option(None, "--url", metavar="URL", help="Archive URL (default: the official EuroSAT "
                                      "RGB archive)."),
    sha256: Optional[str] = typer.Option(None, "--sha256", metavar="HEX", help="Expected sha256 (default: the known "
                                         "EuroSAT one)."),
    quiet: bool = QuietOpt,
):
    """Download the official EuroSAT RGB archive (resumable, checksum-verified).

    Example (then prepare it):
    eo-edge data download --dest EuroSAT.zip
    eo-edge data prepare --source EuroSAT.zip
    """
    from .data.download import EUROSAT_SHA256, EUROSAT_URL, download

    p = download(url or EUROSAT_URL, dest, sha256 or (EUROSAT_SHA256 if url is None else None), progress=not quiet)
    out.print(f"downloaded {p}")


# Options shared by `train` and `distill` (typer Annotated aliases: one definition each).
DataOpt = Annotated[Optional[Path], typer.Option("--data", metavar="PATH", help="EuroSAT.zip, a folder of class sub-folders, or a prepared cache folder (default: the prepared EuroSAT cache).")]
ImgSizeOpt = Annotated[int, typer.Option("--img-size", metavar="PX", help="Input size in pixels (64 = native EuroSAT).")]
EpochsOpt = Annotated[int, typer.Option("--epochs", metavar="N", help="Training epochs (>= 1).")]
BatchOpt = Annotated[int, typer.Option("--batch-size", metavar="N", help="Images per optimizer step.")]
LrOpt = Annotated[float, typer.Option("--lr", metavar="LR", help="Peak AdamW learning rate.")]
WdOpt = Annotated[float, typer.Option("--weight-decay", metavar="FLOAT", help="AdamW weight decay.")]
SeedOpt = Annotated[int, typer.Option("--seed", metavar="N", help="Seed of initialisation, batch order and augmentation.")]
DeviceOpt = Annotated[str, typer.Option("--device", metavar="DEVICE", help="auto, cpu, cuda or cuda:N.")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", metavar="N", help="CPU threads for torch (default: torch's own).")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", metavar="DIR", help="Run folder (default: in HOME/runs/, ARCH-PXpx-sSEED for train, kd-STUDENT-RULE-sSEED for distill; RULE = --weighting, plus -lLOW-hHIGH for other thresholds).")]
ResumeOpt = Annotated[bool, typer.Option("--resume/--no-resume", help="Continue from OUT/last.pt when present (a finished run is not trained again); --no-resume starts over.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit-train", metavar="N", help="Use only N training images (smoke tests).")]


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
    arch: Annotated[str, typer.Option("--arch", metavar="NAME", help="Model name (see `eo-edge models`).")] = "resnet8",
    data: DataOpt = None, img_size: ImgSizeOpt = 64, epochs: EpochsOpt = 15, batch_size: BatchOpt = 128,
    lr: LrOpt = 3e-3, weight_decay: WdOpt = 0.05, seed: SeedOpt = 0, device: DeviceOpt = "auto",
    threads: ThreadsOpt = None, out_dir: OutOpt = None, resume: ResumeOpt = True, limit_train: LimitOpt = None,
    home: Optional[Path] = HomeOpt, json_out: Optional[Path] = JsonOpt, quiet: bool = QuietOpt,
):
    """Train a classifier with cross-entropy; select on validation; evaluate once on test.

    The run folder gets best.pt (selected on validation top-1), last.pt (the resume state), history.json, metrics.json and confusion.png. One line per epoch (train loss, val top-1, learning rate, elapsed seconds) goes to stderr unless -q, so a log file or CI job shows progress too; progress bars draw only on a terminal.

    Example:
    eo-edge train --arch resnet8 --data ../shared/data/EuroSAT.zip --img-size 64 --epochs 15
    """
    from .home import home_dir
    from .train import check_resume, train as run_train

    opts = _train_options(arch=arch, img_size=img_size, epochs=epochs, batch_size=batch_size, lr=lr,
                          weight_decay=weight_decay, seed=seed, device=device, threads=threads, limit_train=limit_train)
    run_dir = out_dir or home_dir(home) / "runs" / f"{arch}-{img_size}px-s{seed}"
    if resume:
        check_resume(run_dir, opts)  # before the data is resolved or prepared
    ds = _data(data, home, quiet)
    res = run_train(opts, ds, run_dir, resume=resume, progress=not quiet, log=_log, command=_command_line(),
                    verbose=not quiet)
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
    student: Annotated[str, typer.Option("--student", metavar="NAME", help="Student architecture: resnet8 or resnet16 (any registry name works).")] = "resnet8",
    teacher: Annotated[List[Path], typer.Option("--teacher", metavar="FILE", help="Teacher checkpoint (.pt); repeat for several (the paper: EfficientViT-M2 and MobileViTV2).")] = ...,
    weighting: Annotated[str, typer.Option("--weighting", metavar="RULE", help="batch (the paper's per-batch confidence rule), sample (per image) or static (0.5/0.5).")] = "batch",
    temperature: Annotated[float, typer.Option("--temperature", metavar="T", help="Softmax temperature T of the KD terms.")] = 5.0,
    low: Annotated[float, typer.Option("--low", metavar="P", help="Confidence below which a teacher is ignored when all are (the paper: 0.4); batch and sample weighting only.")] = 0.4,
    high: Annotated[float, typer.Option("--high", metavar="P", help="Confidence from which a teacher counts as confident (the paper: 0.6); batch and sample weighting only.")] = 0.6,
    data: DataOpt = None, img_size: ImgSizeOpt = 64, epochs: EpochsOpt = 15, batch_size: BatchOpt = 128,
    lr: LrOpt = 3e-3, weight_decay: WdOpt = 0.05, seed: SeedOpt = 0, device: DeviceOpt = "auto",
    threads: ThreadsOpt = None, out_dir: OutOpt = None, resume: ResumeOpt = True, limit_train: LimitOpt = None,
    home: Optional[Path] = HomeOpt, json_out: Optional[Path] = JsonOpt, quiet: bool = QuietOpt,
):
    """Distil frozen teachers into a student with confidence-based dynamic weighting (Le et al., arXiv 2411.00209).

    The teachers' logits on all 8 flip/rotation views of every training image are computed once per teacher and cached (exact: augmentation is that finite group), so an epoch costs about one student epoch. One line per epoch goes to stderr unless -q: train loss, val top-1, learning rate, elapsed seconds, the teachers' mean confidences, the weights used and the branches of the rule taken.

    --low and --high set the rule's thresholds; which values make it switch at all for a pair of teachers is in benchmarks/ablation/rule_analysis.md (at T = 5, per batch, only thresholds inside a narrow band of the batch-mean confidence).

    Example:
    eo-edge distill --student resnet8 --epochs 30 \\
        --teacher models/resnet16_eurosat64.pt --teacher models/mobilevitv2_100_eurosat64.pt
    """
    from .data.split import train_rows
    from .home import home_dir
    from .teacher_cache import build_teacher_cache
    from .train import check_resume, pick_device, train as run_train

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
                          teachers=[str(t) for t in teacher], weighting=weighting, temperature=temperature,
                          low=low, high=high)
    from .distill import PAPER_HIGH, PAPER_LOW

    rule = weighting if (low, high) == (PAPER_LOW, PAPER_HIGH) else f"{weighting}-l{low:g}-h{high:g}"
    run_dir = out_dir or home_dir(home) / "runs" / f"kd-{student}-{rule}-s{seed}"
    if resume:
        check_resume(run_dir, opts)  # before the teacher-logit cache (minutes), not after it
    ds = _data(data, home, quiet)
    cache = build_teacher_cache(list(teacher), ds, train_rows(ds, limit_train, seed), home_dir(home) / "teacher-cache",
                                device=pick_device(device), progress=not quiet, log=_log)
    res = run_train(opts, ds, run_dir, resume=resume, progress=not quiet, log=_log, command=_command_line(),
                    teacher_logits=cache, verbose=not quiet)
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
        dq = rep.get("decision") or {}
        t = dq.get("temperature", 1.0)
        before = "" if t == 1.0 else f" (T = {t:.3f}; uncalibrated ECE {dq['uncalibrated']['ece_pct']:.2f} %)"
        out.print(f"confidence: ECE {rep['ece_pct']:.2f} % (15 bins), NLL {rep['nll']:.4f}, Brier {rep['brier']:.4f}"
                  f"{before}; AURC {dq.get('aurc_pct', float('nan')):.2f} %", highlight=False)
        at = dq.get("at_threshold")
        if at:
            out.print(f"keep rule (p >= {at['threshold']:.4f}, fitted on {at['fitted_on']} for "
                      f"{at['target_accuracy_pct']:g} %): keeps {at['coverage_pct']:.1f} % at {at['accuracy_pct']:.2f} % "
                      f"top-1 ({'meets' if at['meets_target'] else 'misses'} the target)", highlight=False)


@app.command("eval")
def eval_cmd(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="Checkpoint (.pt/.pth, ours or the authors'), ONNX file or compiled artifact."),
    data: Optional[Path] = typer.Option(None, "--data", metavar="PATH", help="EuroSAT.zip, a folder of class sub-folders, or a prepared cache folder (default: the model's own prepared dataset)."),
    split: str = typer.Option("test", "--split", metavar="SPLIT", help="train, val, test or all."),
    img_size: Optional[int] = typer.Option(None, "--img-size", metavar="PX", help="Override the input size (pixels)."),
    preset: Optional[str] = typer.Option(None, "--preset", metavar="NAME", help="For bare state_dicts: sentry (224 px, ImageNet mean/std; default) or eurosat64."),
    arch: Optional[str] = typer.Option(None, "--arch", metavar="NAME", help="Architecture of a bare state_dict, if it can't be inferred."),
    backend: str = typer.Option("onnxruntime", "--backend", metavar="NAME", help="Runtime for ONNX/compiled artifacts: onnxruntime or tensorrt."),
    batch_size: int = typer.Option(256, "--batch-size", metavar="N", help="Images per inference batch."),
    reliability: Optional[Path] = typer.Option(None, "--reliability", metavar="FILE", help="Write the reliability diagram (PNG) of the calibrated confidence."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Evaluate a checkpoint, ONNX file or compiled artifact with its own preprocessing.

    Prints per-class accuracy, precision, recall and F1, and the confidence quality (ECE, NLL, Brier).

    Examples:
    eo-edge eval models/resnet8_eurosat64.pt --data ../shared/data/EuroSAT.zip
    eo-edge eval ../shared/weights/sentry/resnet8_dual.pth --preset sentry \\
        --data ../shared/data/EuroSAT.zip
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
    if reliability is not None:
        from .fileio import check_out_dir

        if reliability.suffix.lower() != ".png" or reliability.is_dir():
            raise EOEdgeError(f"--reliability {reliability}: give a .png file path")
        check_out_dir(reliability)
        check_not_input(reliability, model_path, what="--reliability")
    fn, cfg, info = open_model(model_path, arch=arch, preset=preset, img_size=img_size, backend=backend)
    from .data.resolve import model_dataset

    ds = _data(data, home, quiet, dataset=model_dataset(cfg))
    check_classes(cfg.class_names, ds.class_names, model_path.name)
    sub = ds.subset(split_indices(ds, split))
    from .data.split import split_source

    _log(f"data: {split} split of {ds.root or data} ({len(sub)} images; {split_source(ds)})")
    from .evaluate import evaluate

    rep = evaluate(fn, sub, cfg.input_size, cfg.mean, cfg.std, cfg.class_names, batch_size=batch_size, progress=not quiet,
                   temperature=cfg.temperature, decision=cfg.decision)
    rep.update({"model": str(model_path), "split": split, "input_size": cfg.input_size, "arch": cfg.arch,
                "kind": info.get("kind"), "sha256": info.get("sha256")})
    _print_report(rep, f"{model_path.name} on {split}")
    if reliability is not None:
        from .metrics import plot_reliability

        plot_reliability(rep["calibration"], reliability, title=f"{model_path.name} on {split}\nECE "
                         f"{rep['ece_pct']:.2f} % (15 bins, T = {cfg.temperature:.3f})")
        _log(f"reliability diagram: {reliability}")
    if json_out:
        write_json(json_out, rep)


@app.command("calibrate")
def calibrate_cmd(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="An eo-edge checkpoint (.pt) or FP32 ONNX file."),
    data: Optional[Path] = typer.Option(None, "--data", metavar="PATH", help="The model's data (default: its own prepared dataset); its val split is used."),
    target_accuracy: float = typer.Option(99.0, "--target-accuracy", metavar="PCT", help="Accuracy (percent) the kept images must reach on validation."),
    backend: str = typer.Option("onnxruntime", "--backend", metavar="NAME", help="Runtime for an ONNX model: onnxruntime or openvino."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Fit and print; change no file."),
    batch_size: int = typer.Option(256, "--batch-size", metavar="N", help="Images per inference batch."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Fit post-hoc temperature scaling and the onboard keep threshold on the validation split.

    T minimises the validation NLL of softmax(logits / T) (Guo et al., ICML 2017). The threshold is the lowest calibrated max-probability whose kept images reach --target-accuracy on validation. Both are stored in the config of the model, its ONNX export and the FP16/INT8 files compiled from it, so every backend and `eo-edge predict` apply them; `eval` and `bench` then report calibration before/after and the coverage at that threshold on test.

    Example: eo-edge calibrate models/resnet8_eurosat64.pt --target-accuracy 99
    """
    from .calibrate_cmd import run_calibrate
    from .data.resolve import model_dataset
    from .fileio import write_json

    if not model_path.exists():
        raise EOEdgeError(f"model not found: {model_path}")
    if model_path.is_dir():
        raise EOEdgeError(f"{model_path} is a folder; give a checkpoint or FP32 ONNX file")
    if not 0 < target_accuracy <= 100:
        raise EOEdgeError(f"--target-accuracy must be in (0, 100] percent, got {target_accuracy}")
    if batch_size < 1:
        raise EOEdgeError(f"--batch-size must be at least 1, got {batch_size}")
    rec = run_calibrate(model_path, lambda cfg: _data(data, home, quiet, dataset=model_dataset(cfg)),
                        target_accuracy=target_accuracy, backend=backend, batch_size=batch_size, progress=not quiet,
                        dry_run=dry_run, log=_log)
    d = rec["decision"]
    out.print(f"temperature T = {rec['temperature']:.4f}: validation ECE {d['val_ece_pct_before']:.2f} % -> "
              f"{d['val_ece_pct_after']:.2f} % (15 bins)", highlight=False)
    out.print(f"keep rule: p >= {d['threshold']:.4f} keeps {d['val_coverage_pct']:.1f} % of validation images at "
              f"{d['val_accuracy_pct']:.2f} % top-1 (target {d['target_accuracy_pct']:g} %"
              f"{'' if d['reached'] else ', NOT reached'})", highlight=False)
    for p in rec["updated"]:
        _log(f"updated {p}")
    if dry_run:
        _log("dry run: no file changed")
    if json_out:
        write_json(json_out, rec)


@app.command("predict")
def predict_cmd(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="Checkpoint, ONNX file or compiled artifact."),
    images: List[Path] = typer.Argument(..., metavar="IMAGES...", help="Image files or folders (JPEG/PNG/TIFF, searched recursively)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", metavar="P", help="Keep an image when its calibrated probability >= P (default: the model's threshold from `eo-edge calibrate`, else 0 = keep all)."),
    backend: str = typer.Option("onnxruntime", "--backend", metavar="NAME", help="Runtime for ONNX/compiled artifacts: onnxruntime, openvino or tensorrt."),
    out_file: Optional[Path] = typer.Option(None, "--out", metavar="FILE", help="Write JSON Lines here (default: stdout)."),
    batch_size: int = typer.Option(64, "--batch-size", metavar="N", help="Images per inference batch."),
):
    """Classify images: one JSON line per image with its class, calibrated probability and keep flag.

    The probability is softmax(logits / T) with the model's temperature T; an image is kept when it reaches the threshold, otherwise the pipeline abstains on it. A summary (images, kept) goes to stderr.

    Example:
    eo-edge predict models/resnet8_eurosat64.int8-minmax.onnx samples/eurosat-test-1000 \\
        --out preds.jsonl
    """
    from .fileio import check_not_input, write_bytes
    from .loading import open_model
    from .predict_cmd import image_files, jsonl, predict

    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise EOEdgeError(f"--threshold is a probability in [0, 1], got {threshold}")
    if batch_size < 1:
        raise EOEdgeError(f"--batch-size must be at least 1, got {batch_size}")
    if out_file is not None:
        if out_file.is_dir():
            raise EOEdgeError(f"--out {out_file} is a folder; give a file path")
        check_not_input(out_file, model_path, *images, what="--out")
    files = image_files(list(images))
    fn, cfg, _ = open_model(model_path, backend=backend)
    thr = threshold if threshold is not None else float(cfg.decision.get("threshold", 0.0))
    src = ("--threshold" if threshold is not None else
           f"the model's, fitted for {cfg.decision.get('target_accuracy_pct', '?')} % on validation"
           if "threshold" in cfg.decision else "none stored: keep all")
    recs = list(predict(fn, cfg, files, thr, batch_size))
    data = jsonl(recs)
    if out_file is not None:
        write_bytes(out_file, data)
    else:
        sys.stdout.write(data.decode())
    kept = sum(r["keep"] for r in recs)
    _log(f"{len(recs)} images: kept {kept} ({100 * kept / len(recs):.1f} %), abstained on {len(recs) - kept}; "
         f"threshold {thr:.4f} ({src}); T = {cfg.temperature:.4f}" + (f"; wrote {out_file}" if out_file else ""))


@app.command()
def export(
    ckpt: Path = typer.Argument(..., metavar="CKPT", help="Checkpoint (.pt/.pth): ours or a bare state_dict."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="FILE", help="Output .onnx (default: ./CKPT-STEM.onnx, the checkpoint's name with .onnx)."),
    img_size: Optional[int] = typer.Option(None, "--img-size", metavar="PX", help="Input size in pixels (default: the checkpoint's)."),
    opset: int = typer.Option(17, "--opset", metavar="N", help="ONNX opset (13..21)."),
    dynamic_batch: bool = typer.Option(True, "--dynamic-batch/--static-batch", help="Symbolic batch dimension, or batch 1."),
    preset: Optional[str] = typer.Option(None, "--preset", metavar="NAME", help="For bare state_dicts: sentry (224 px) or eurosat64."),
    arch: Optional[str] = typer.Option(None, "--arch", metavar="NAME", help="Architecture of a bare state_dict."),
    data: Optional[Path] = typer.Option(None, "--data", metavar="PATH", help="Dataset for the parity check (default: prepared EuroSAT, else the shipped test subset)."),
    parity_images: int = typer.Option(512, "--parity-images", metavar="N", help="Real test images for the PyTorch/ONNX Runtime parity check (0 = all)."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Export to one self-contained ONNX file (input `input`, output `logits`), simplify, check, verify.

    Normalisation is not inside the graph: the input is float32 NCHW normalised with the mean/std stored in the file's metadata_props (eo_edge.config).

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
    model: Path = typer.Argument(..., metavar="ONNX", help="FP32 ONNX file made by `eo-edge export`."),
    fp16: bool = typer.Option(False, "--fp16", help="Make an FP16 ONNX (I/O kept FP32)."),
    int8: bool = typer.Option(False, "--int8", help="Make a QDQ INT8 ONNX calibrated on real images."),
    calib: Optional[Path] = typer.Option(None, "--calib", metavar="DIR", help="Calibration image folder (default: the committed calibration/ set)."),
    calib_size: int = typer.Option(512, "--calib-size", metavar="N", help="Number of calibration images."),
    method: str = typer.Option("minmax", "--method", metavar="NAME", help="Calibration: minmax, entropy or percentile."),
    activations: str = typer.Option("auto", "--activations", metavar="MODE", help="INT8 activations: s8 (symmetric, TensorRT-ready), u8 (asymmetric, fast on ONNX Runtime x86), auto (u8 for onnxruntime, s8 for tensorrt)."),
    quantize_ops: str = typer.Option("all", "--quantize-ops", metavar="OPS", help="INT8 Q/DQ placement: all (every op ONNX Runtime quantizes), weighted (Conv/Gemm/MatMul inputs only, TensorRT's advice) or a list, e.g. Conv,MatMul."),
    backend: str = typer.Option("onnxruntime", "--backend", metavar="NAME", help="onnxruntime (x86, CI) or tensorrt (Jetson: builds an engine)."),
    eval_data: Optional[Path] = typer.Option(None, "--eval-data", metavar="PATH", help="Data for the accuracy gate (default: validation split of the prepared dataset)."),
    max_drop: Optional[float] = typer.Option(None, "--max-drop", metavar="PTS", help="Fail if top-1 drops more than PTS points below the FP32 parent (to hold on other data, set it ~1.5 SE below your goal)."),
    auto_fallback: bool = typer.Option(False, "--auto-fallback", help="INT8: keep the most error-sensitive activations in float (their Q/DQ pairs removed; weights stay int8) until --max-drop (default 0.5) passes."),
    fallback_rank: str = typer.Option("output", "--fallback-rank", metavar="NAME", help="--auto-fallback ranking: output (leave-one-out effect on the logits, 128 calibration images, cached) or local (own Q/DQ error; fast, less accurate)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="FILE", help="Output path (one precision only; default beside the input)."),
    workspace_mb: int = typer.Option(1024, "--workspace-mb", metavar="MB", help="TensorRT builder workspace limit (MB)."),
    dla_core: Optional[int] = typer.Option(None, "--dla-core", metavar="N", help="TensorRT: build for this DLA core (GPU fallback on)."),
    timing_cache: Optional[Path] = typer.Option(None, "--timing-cache", metavar="FILE", help="TensorRT: timing-cache file, loaded if present and saved after the build."),
    batch_profile: str = typer.Option("1,1,32", "--batch-profile", metavar="MIN,OPT,MAX", help="TensorRT optimisation profile: min,opt,max batch."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Compile an FP32 ONNX to FP16 and/or calibrated INT8 (QDQ), then gate it on accuracy.

    The files lie beside the input unless -o: NAME.fp16.onnx, NAME.int8-METHOD.onnx (symmetric s8 activations) or NAME.int8-METHOD-u8.onnx (u8), each with a .json record beside it (tools, calibration images, accuracy gate).

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
    inputs: Optional[List[Path]] = typer.Argument(None, metavar="MODEL", help="Checkpoints, ONNX files or compiled artifacts (default: the shipped models/)."),
    config: Optional[Path] = typer.Option(None, "--config", metavar="FILE", help="Bench config JSON (models x precisions x backends x batch sizes), e.g. benchmarks/default.json."),
    precisions: str = typer.Option(",".join(PRECISIONS), "--precisions", metavar="LIST", help="Precisions to compile FP32 inputs to (comma-separated)."),
    backend: str = typer.Option("onnxruntime", "--backend", metavar="NAME", help="onnxruntime (x86, CI), openvino (Intel), tensorrt "
                                "(Jetson), or all: every runtime available here, side by side."),
    data: Optional[Path] = typer.Option(None, "--data", metavar="PATH", help="Dataset (default: prepared EuroSAT test split, else the shipped 1,000-image test subset)."),
    split: str = typer.Option("test", "--split", metavar="SPLIT", help="Split of --data to measure on: test, val, train or all."),
    runs: int = typer.Option(200, "--runs", metavar="N", help="Timed batch-1 runs per artifact (at least 200 for the reference protocol)."),
    warmup: int = typer.Option(50, "--warmup", metavar="N", help="Untimed warm-up runs per artifact."),
    rounds: int = typer.Option(10, "--rounds", metavar="N", help="Interleaved rounds the timed runs are split into."),
    batch: int = typer.Option(64, "--batch", metavar="N", help="Batch size for throughput."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", help="CPU threads per session (default: min(cores, 4))."),
    corruptions: Optional[str] = typer.Option(None, "--corruptions", metavar="LIST", help="Robustness: corruptions to apply, comma-separated, e.g. gaussian_noise,motion_blur."),
    severities: str = typer.Option("1-5", "--severities", metavar="RANGE", help="Corruption severities, e.g. 1-5 or 1,3,5."),
    idle_s: float = typer.Option(10.0, "--idle-s", metavar="S", help="Power: idle baseline per artifact, s (after --settle-s)."),
    settle_s: float = typer.Option(5.0, "--settle-s", metavar="S", help="Power: pause after each burst before the idle baseline, s."),
    power_window_s: float = typer.Option(30.0, "--power-window-s", metavar="S", help="Power: timed window per artifact, s "
                                         "(>= 100 power samples wanted, else the report warns)."),
    peak: bool = typer.Option(True, "--peak/--no-peak", help="Measure the backend's GEMM peak per precision."),
    memory: bool = typer.Option(True, "--memory/--no-memory", help="Measure peak process memory per artifact (a subprocess each)."),
    max_drop: float = typer.Option(0.5, "--max-drop", metavar="PTS", help="Accuracy gate of every FP16/INT8 artifact vs its FP32 parent in this run (points; as `eo-edge compile --max-drop`): a failing artifact is measured, warned about and marked in the report."),
    faults: Optional[str] = typer.Option(None, "--faults", metavar="K,...", help="Fault tolerance: flip K random bits in each artifact's stored weights (e.g. 1,10), 3 seeded trials per K on 500 of the images (see `eo-edge faults` for the full campaign)."),
    out_dir: Path = typer.Option(Path("eo-edge-bench"), "--out", metavar="DIR", help="Folder for bench.json, report.md and the PNG plots."),
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
    fault_ks: list[int] = []
    if faults:
        from .faults_cmd import parse_bits

        try:
            fault_ks = parse_bits(faults)
        except EOEdgeError as e:
            raise EOEdgeError(str(e).replace("--bits", "--faults")) from None
    if not (max_drop >= 0 and max_drop < float("inf")):
        raise EOEdgeError(f"--max-drop must be a finite number of points >= 0, got {max_drop}")
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
                        engine_dir=home_dir(home) / "engines", max_drop=max_drop, faults=fault_ks)
    run = run_bench(arts, ds, info, opts, command=_command_line(), progress=not quiet, log=_log)
    if not run["comparisons"]:
        _log("[yellow]note:[/] no FP32 baseline (role 'baseline', e.g. MobileViTV2) among the inputs: "
             "the paper comparison is skipped")
    from .report import print_table, write_report
    from .report.writer import keep_previous_run

    kept = keep_previous_run(out_dir)  # no run is silently replaced
    if kept is not None:
        _log(f"the previous run in {out_dir} was kept in {kept}")
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
    onnx_files: Optional[List[Path]] = typer.Argument(None, metavar="ONNX", help="ONNX file(s) to check (default: the shipped "
                                                      "models in the forms TensorRT runs: FP32, FP16, INT8-s8)."),
    target: Optional[List[str]] = typer.Option(None, "--target", metavar="TARGET", help="Rule-table target; repeat for "
                                               "several: tensorrt-8.5, tensorrt-8.6, tensorrt-10.0, tensorrt-10.1 or "
                                               "tensorrt-10.3, or the bare version, e.g. 8.6 (default: all)."),
    dla: bool = typer.Option(False, "--dla", help="Also apply the DLA rules (static shapes, FP16/INT8 only)."),
    backend: str = typer.Option("tensorrt", "--backend", metavar="NAME", help="tensorrt (the static rule table) or openvino (compile and run each file in OpenVINO's CPU plugin, f32 hint)."),
    json_out: Optional[Path] = JsonOpt,
):
    """Static TensorRT preflight, without TensorRT: check ONNX files against the rule table (or, with --backend openvino, compile them in OpenVINO).

    The table (eo_edge/trt_rules) holds, per TensorRT release, the operators and tensor types of onnx-tensorrt's docs/operators.md at that release, the Q/DQ rules and the DLA restrictions, each with its source. One line per violation names the node; exit 1 when any.

    Examples:
    eo-edge check models/resnet8_eurosat64.int8-minmax.onnx --target tensorrt-8.6
    eo-edge check models/*.onnx --target 8.5 --target 10.3 --json check.json
    eo-edge check model.onnx --target 8.6 --dla
    eo-edge check --target tensorrt-10.3     (the shipped models)
    """
    from .check_cmd import run_check, run_openvino_check, shipped_tensorrt_files
    from .fileio import check_not_input, write_json

    if backend not in ("tensorrt", "openvino"):
        raise EOEdgeError(f"--backend {backend!r}: check knows tensorrt (static rule table) and openvino")
    if backend == "openvino" and (target or dla):
        raise EOEdgeError("--target/--dla are TensorRT rule-table options; drop them with --backend openvino")
    files = list(onnx_files or []) or shipped_tensorrt_files()
    if json_out is not None:
        check_not_input(json_out, *files, what="--json")
    say = lambda m: out.print(m, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    res = run_openvino_check(files, log=say) if backend == "openvino" else run_check(files, target, dla=dla, log=say)
    if json_out:
        write_json(json_out, res)
    if not res["ok"]:
        raise typer.Exit(1)


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
    from .faults_cmd import FaultOptions, markdown, print_table, run_faults
    from .fileio import check_not_input, check_out_dir, write_bytes, write_json

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


@app.command("models")
def models_cmd():
    """List the registered architectures with their role (student, baseline or teacher) and default input size.

    Example: eo-edge models
    """
    from rich.table import Table

    from .models.registry import REGISTRY, display_role

    t = Table(title="eo-edge model registry")
    for c in ("name", "role", "input px", "mean", "std"):
        t.add_column(c)
    for name, e in REGISTRY.items():
        cfg = e.config
        t.add_row(name, display_role(name), str(cfg.input_size), str(tuple(round(v, 3) for v in cfg.mean)),
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
