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
from typing import Optional

import typer
from rich.console import Console

from .. import __version__
from ..errors import EOEdgeError
from .help import install as _readable_help

_readable_help()  # --help shows FILE, DIR, N... (typer's <path>, <list[Path]> otherwise)

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich",
                  help="eo-edge: EO image classifiers from training to a satellite's payload computer.")
data_app = typer.Typer(no_args_is_help=True, help="Prepare a dataset cache (EuroSAT or your own class folders), or download EuroSAT RGB.")
app.add_typer(data_app, name="data")
out = Console(width=None if sys.stdout.isatty() else 200)  # files/pipes get the full table
err = Console(stderr=True)

def _command_line() -> str:
    return "eo-edge " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _log(msg: str) -> None:
    err.print(msg, highlight=False, soft_wrap=True)  # one message, one line (log files, CI)


def _data(data: Optional[Path], home: Optional[Path], quiet: bool, dataset: Optional[str] = None):
    """The dataset of ``--data`` (see :func:`eo_edge.data.resolve.resolve_data`), logging to stderr;
    with no ``--data``, the cache named ``dataset`` (a model's own data; default eurosat)."""
    from ..app.data import resolve

    return resolve(data, home, quiet, _log, dataset=dataset)


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
