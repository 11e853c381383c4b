"""Options shared by several commands (typer), with their help texts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import EOEdgeError

HomeOpt = typer.Option(None, "--home", metavar="DIR", help="eo-edge home/cache folder (default: $EO_EDGE_HOME, else ~/.cache/eo-edge).")


def _json_path(p: Optional[Path]) -> Optional[Path]:
    """--json is checked when the command line is parsed, before any work: its folder must exist."""
    if p is not None:
        from ..fileio import check_out_dir

        if p.is_dir():
            raise EOEdgeError(f"--json {p} is a folder; give a file path")
        check_out_dir(p)
    return p


JsonOpt = typer.Option(None, "--json", metavar="FILE", callback=_json_path, help="Write the results as JSON to this file.")


QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bars or progress lines; results and errors still print.")


# Options shared by `train` and `distill` (typer Annotated aliases: one definition each).
DataOpt = Annotated[Optional[Path], typer.Option("--data", metavar="PATH", help="EuroSAT.zip, a folder of class sub-folders, or a prepared cache folder (default: the prepared EuroSAT cache).")]


ImgSizeOpt = Annotated[Optional[int], typer.Option("--img-size", metavar="PX", help="Input size in pixels (default: the dataset's own image size, 64 for EuroSAT).")]


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
