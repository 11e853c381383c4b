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
from typing import List, Optional

import typer
from rich.console import Console

from . import __version__
from .errors import EOEdgeError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich",
                  help="eo-edge: EO image classifiers from training to a satellite's payload computer.")
data_app = typer.Typer(no_args_is_help=True, help="Prepare or download the EuroSAT RGB dataset.")
app.add_typer(data_app, name="data")
out = Console()
err = Console(stderr=True)

HomeOpt = typer.Option(None, "--home", help="eo-edge home/cache folder (default $EO_EDGE_HOME or ~/.cache/eo-edge).")
JsonOpt = typer.Option(None, "--json", help="Write the results as JSON to this file.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bars.")


def _command_line() -> str:
    return "eo-edge " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _log(msg: str) -> None:
    err.print(msg, highlight=False)


def resolve_data(data: Optional[Path], home: Optional[Path], progress: bool = True):
    """Load a prepared dataset from ``--data``: a prepared cache folder, or a source
    (EuroSAT.zip / folder) that is prepared into the home folder first (once)."""
    from .data.prepare import load_prepared, prepare
    from .home import home_dir

    h = home_dir(home)
    if data is None:
        default = h / "datasets" / "eurosat"
        if (default / "manifest.json").is_file():
            return load_prepared(default)
        raise EOEdgeError("no dataset: pass --data EuroSAT.zip (or a prepared folder), "
                          "or run `eo-edge data prepare --source EuroSAT.zip` once")
    if not data.exists():
        raise EOEdgeError(f"data not found: {data}")
    if data.is_dir() and (data / "manifest.json").is_file():
        return load_prepared(data)
    import hashlib

    key = hashlib.sha1(str(data.resolve()).encode()).hexdigest()[:10]
    cache = h / "datasets" / (f"eurosat" if data.name == "EuroSAT.zip" else f"{data.stem}-{key}")
    if (cache / "manifest.json").is_file():
        import json

        if json.loads((cache / "manifest.json").read_text()).get("source") == str(data.resolve()):
            return load_prepared(cache)
    _log(f"preparing {data} -> {cache}")
    prepare(data, cache, progress=progress)
    return load_prepared(cache)


@data_app.command("prepare")
def data_prepare(
    source: Path = typer.Option(..., "--source", help="EuroSAT.zip (official layout 2750/<Class>/*.jpg) or a folder of class sub-folders."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Cache folder (default HOME/datasets/eurosat)."),
    sha256: Optional[str] = typer.Option(None, "--sha256", help="Expected sha256 of the archive (default: the known EuroSAT one)."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Decode every image once (64x64 RGB uint8) and cache it for training and evaluation.

    Corrupt files are listed and skipped; converted images (other size or mode) are reported.

    Example: eo-edge data prepare --source ../shared/data/EuroSAT.zip
    """
    from .data.prepare import prepare
    from .data.split import split_indices
    from .data.prepare import load_prepared
    from .fileio import write_json
    from .home import home_dir

    dest = out_dir or home_dir(home) / "datasets" / ("eurosat" if source.name == "EuroSAT.zip" or source.is_dir() else source.stem)
    m = prepare(source, dest, sha256=sha256, progress=not quiet)
    d = load_prepared(dest)
    sizes = {s: int(len(split_indices(d, s))) for s in ("train", "val", "test")}
    for w in m["warnings"]:
        _log(f"[yellow]warning:[/] {w}")
    for s in m["skipped"]:
        _log(f"[yellow]skipped:[/] {s}")
    if m["converted"]:
        _log(f"converted {len(m['converted'])} images to 64x64 RGB (e.g. {m['converted'][0]})")
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


@app.command()
def train(
    arch: str = typer.Option("resnet8", "--arch", help="Model name: resnet8, resnet16, efficientvit_m2, mobilevitv2_100, mobilevit_xxs, mobilevit_s."),
    data: Optional[Path] = typer.Option(None, "--data", help="EuroSAT.zip, a folder of class sub-folders, or a prepared cache folder."),
    img_size: int = typer.Option(64, "--img-size", help="Input size in pixels (64 = native EuroSAT)."),
    epochs: int = typer.Option(15, "--epochs"),
    batch_size: int = typer.Option(128, "--batch-size"),
    lr: float = typer.Option(3e-3, "--lr", help="Peak AdamW learning rate."),
    weight_decay: float = typer.Option(0.05, "--weight-decay"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Run folder (default HOME/runs/<arch>-<img-size>px-s<seed>)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from OUT/last.pt when present."),
    limit_train: Optional[int] = typer.Option(None, "--limit-train", help="Use only N training images (smoke tests)."),
    home: Optional[Path] = HomeOpt,
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Train a classifier with cross-entropy; select on validation; evaluate once on test.

    Example: eo-edge train --arch resnet8 --data ../shared/data/EuroSAT.zip --img-size 64 --epochs 15
    """
    from .fileio import write_json
    from .home import home_dir
    from .train import TrainOptions, train as run_train

    opts = TrainOptions(arch=arch, img_size=img_size, epochs=epochs, batch_size=batch_size, lr=lr,
                        weight_decay=weight_decay, seed=seed, device=device, threads=threads, limit_train=limit_train)
    from .models.registry import default_config

    default_config(arch)
    ds = resolve_data(data, home, not quiet)
    run_dir = out_dir or home_dir(home) / "runs" / f"{arch}-{img_size}px-s{seed}"
    res = run_train(opts, ds, run_dir, resume=resume, progress=not quiet, log=_log, command=_command_line())
    _print_report(res["test"], f"{arch} test split", res)
    out.print(f"best checkpoint: {run_dir / 'best.pt'}  (epoch {res['best_epoch']}, val top-1 {res['best_val_top1']:.2f} %)")
    if json_out:
        write_json(json_out, res)


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
    from .fileio import write_json
    from .loading import open_model

    if not model_path.exists():
        raise EOEdgeError(f"model not found: {model_path}")
    ds = resolve_data(data, home, not quiet)
    sub = ds.subset(split_indices(ds, split))
    fn, cfg, info = open_model(model_path, arch=arch, preset=preset, img_size=img_size, backend=backend)
    from .evaluate import evaluate

    rep = evaluate(fn, sub, cfg.input_size, cfg.mean, cfg.std, cfg.class_names, batch_size=batch_size, progress=not quiet)
    rep.update({"model": str(model_path), "split": split, "input_size": cfg.input_size, "arch": cfg.arch,
                "kind": info.get("kind"), "sha256": info.get("sha256")})
    _print_report(rep, f"{model_path.name} on {split}")
    if json_out:
        write_json(json_out, rep)


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
    for name, (_, cfg) in REGISTRY.items():
        t.add_row(name, cfg.role, str(cfg.input_size), str(tuple(round(v, 3) for v in cfg.mean)),
                  str(tuple(round(v, 3) for v in cfg.std)))
    out.print(t)


def _version_cb(value: bool):
    if value:
        out.print(f"eo-edge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version_cb, is_eager=True, help="Print the version.")):
    """eo-edge: EO image classifiers from training to a satellite's payload computer."""


def main() -> None:
    """Console-script entry point: runs the typer app, turning errors into one line + exit code."""
    debug = os.environ.get("EO_EDGE_DEBUG") == "1"
    try:
        app()
    except EOEdgeError as e:
        if debug:
            raise
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
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
