"""`eo-edge train` and `eo-edge distill`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from .options import (
    BatchOpt,
    DataOpt,
    DeviceOpt,
    EpochsOpt,
    HomeOpt,
    ImgSizeOpt,
    JsonOpt,
    LimitOpt,
    LrOpt,
    OutOpt,
    QuietOpt,
    ResumeOpt,
    SeedOpt,
    ThreadsOpt,
    WdOpt,
)
from .root import _command_line, _log, _print_report, app, out


@app.command()
def train(
    arch: Annotated[str, typer.Option("--arch", metavar="NAME", help="Model name (see `eo-edge models`).")] = "resnet8",
    data: DataOpt = None, img_size: ImgSizeOpt = None, epochs: EpochsOpt = 15, batch_size: BatchOpt = 128,
    lr: LrOpt = 3e-3, weight_decay: WdOpt = 0.05, seed: SeedOpt = 0, device: DeviceOpt = "auto",
    threads: ThreadsOpt = None, out_dir: OutOpt = None, resume: ResumeOpt = True, limit_train: LimitOpt = None,
    home: Optional[Path] = HomeOpt, json_out: Optional[Path] = JsonOpt, quiet: bool = QuietOpt,
):
    """Train a classifier with cross-entropy; select on validation; evaluate once on test.

    The run folder gets best.pt (selected on validation top-1), last.pt (the resume state), history.json, metrics.json and confusion.png. One line per epoch (train loss, val top-1, learning rate, elapsed seconds) goes to stderr unless -q, so a log file or CI job shows progress too; progress bars draw only on a terminal.

    Example:
    eo-edge train --arch resnet8 --data ../shared/data/EuroSAT.zip --img-size 64 --epochs 15
    """
    from ..app.training import train as run
    from ..app.training import train_options

    opts = train_options(arch=arch, img_size=img_size, epochs=epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, seed=seed, device=device, threads=threads, limit_train=limit_train)
    res, run_dir = run(opts, data=data, home=home, out_dir=out_dir, resume=resume, quiet=quiet, log=_log,
                       command=_command_line())
    _finish_training(res, f"{arch} test split", run_dir, json_out)


def _finish_training(res: dict, title: str, run_dir: Path, json_out: Optional[Path]) -> None:
    """Print the test report and best checkpoint of a run; write --json. Quiet on non-zero torchrun ranks."""
    from ..fileio import write_json

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
    low: Annotated[float, typer.Option("--low", metavar="P", help="Confidence below which a teacher is ignored when all are (0.4: the authors' notebook ResNet-GLUSE_with_KD.ipynb); batch and sample weighting only.")] = 0.4,
    high: Annotated[float, typer.Option("--high", metavar="P", help="Confidence from which a teacher counts as confident (0.6: the authors' notebook ResNet-GLUSE_with_KD.ipynb); batch and sample weighting only.")] = 0.6,
    data: DataOpt = None, img_size: ImgSizeOpt = None, epochs: EpochsOpt = 15, batch_size: BatchOpt = 128,
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
    from ..app.training import distill as run

    res, run_dir = run(list(teacher), data=data, home=home, out_dir=out_dir, resume=resume, quiet=quiet, log=_log,
                       command=_command_line(), arch=student, img_size=img_size, epochs=epochs, batch_size=batch_size,
                       lr=lr, weight_decay=weight_decay, seed=seed, device=device, threads=threads,
                       limit_train=limit_train, weighting=weighting, temperature=temperature, low=low, high=high)
    _finish_training(res, f"{student} distilled ({weighting}) test split", run_dir, json_out)
