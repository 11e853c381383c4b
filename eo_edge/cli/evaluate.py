"""`eo-edge eval`, `eo-edge calibrate` and `eo-edge predict`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..fileio import write_json
from .options import HomeOpt, JsonOpt, QuietOpt
from .root import _log, _print_report, app, out


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
    from ..app.evaluate import evaluate_model

    rep = evaluate_model(model_path, data=data, split=split, img_size=img_size, preset=preset, arch=arch,
                         backend=backend, batch_size=batch_size, reliability=reliability, json_out=json_out,
                         home=home, quiet=quiet, log=_log)
    _print_report(rep, f"{model_path.name} on {split}")
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
    from ..app.temperature import run_calibrate

    rec = run_calibrate(model_path, data=data, home=home, target_accuracy=target_accuracy, backend=backend,
                        batch_size=batch_size, progress=not quiet, dry_run=dry_run, log=_log)
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
    from ..app.predict import jsonl, run_predict

    recs, sm = run_predict(model_path, list(images), threshold=threshold, backend=backend, out_file=out_file,
                           batch_size=batch_size)
    if out_file is None:
        sys.stdout.write(jsonl(recs).decode())
    n, kept = sm["n_images"], sm["kept"]
    _log(f"{n} images: kept {kept} ({100 * kept / n:.1f} %), abstained on {n - kept}; "
         f"threshold {sm['threshold']:.4f} ({sm['threshold_source']}); T = {sm['temperature']:.4f}"
         + (f"; wrote {out_file}" if out_file else ""))
