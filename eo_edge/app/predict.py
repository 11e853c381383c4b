"""``eo-edge predict``: per-image class, calibrated probability and keep/abstain flag.

This is how an onboard pipeline uses a classifier: each image gets the arg-max class, its
probability ``softmax(logits / T)`` (T from the model config, see ``eo-edge calibrate``) and a
keep flag ``probability >= threshold`` (the model's stored threshold unless ``--threshold``
is given). Output: one JSON object per line (JSON Lines).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import EOEdgeError


def image_files(inputs: list[Path]) -> list[Path]:
    """Image files of ``inputs`` (files as given; folders searched recursively, sorted naturally).

    Raises:
        EOEdgeError: an input does not exist, a file is not an image type, or no image was found.
    """
    from ..data.dataset import natural_key
    from ..data.decode import IMAGE_EXTS

    files: list[Path] = []
    for p in inputs:
        if not p.exists():
            raise EOEdgeError(f"image not found: {p}")
        if p.is_dir():
            found = sorted((q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_EXTS),
                           key=lambda q: natural_key(str(q)))
            files.extend(found)
        elif p.suffix.lower() not in IMAGE_EXTS:
            raise EOEdgeError(f"{p.name} is not an image ({', '.join(sorted(IMAGE_EXTS))})")
        else:
            files.append(p)
    if not files:
        raise EOEdgeError("no images found in " + ", ".join(str(p) for p in inputs))
    return files


def select_model_bands(arr: np.ndarray, cfg, name: str) -> np.ndarray:
    """The bands the model was trained on, from one decoded image (H, W, B).

    An image with the model's channel count is used as it is; a multispectral image with more
    bands is reduced to the model's bands by name (``config.extra["bands"]``, e.g. B04,B03,B02).

    Raises:
        EOEdgeError: the bands cannot be matched (one line naming both).
    """
    from ..data.bands import band_names

    c = cfg.in_chans
    if arr.shape[-1] == c:
        return arr
    want = list(cfg.extra.get("bands") or [])
    have = band_names(arr.shape[-1], arr.dtype)
    if len(want) == c and all(b in have for b in want):
        return arr[..., [have.index(b) for b in want]]
    raise EOEdgeError(f"{name} has {arr.shape[-1]} bands ({', '.join(have[:13])}); the model takes {c}"
                      + (f" ({', '.join(want)})" if want else ""))


def predict(fn: Callable[[np.ndarray], np.ndarray], cfg, files: list[Path], threshold: float,
            batch_size: int = 64) -> Iterator[dict[str, Any]]:
    """Yield one record per image: ``{"image", "class", "class_index", "probability", "keep",
    "threshold"}`` (probability = calibrated max softmax, float in [0, 1]).

    Images are decoded exactly (TIFF bands in their own dtype; see
    :func:`eo_edge.data.decode.decode_image`) and preprocessed like evaluation
    (:func:`eo_edge.data.transforms.preprocess`).

    Raises:
        EOEdgeError: an unreadable image (one line naming it), or mismatched bands.
    """
    from ..data.decode import decode_image
    from ..data.transforms import preprocess
    from ..metrics.stats import softmax

    def flush(batch: list[tuple[Path, np.ndarray]]) -> Iterator[dict[str, Any]]:
        x = np.concatenate([xi for _, xi in batch])
        p = softmax(np.asarray(fn(x)), cfg.temperature)  # the scalar divide before softmax (Runner.probabilities)
        for (f, _), row in zip(batch, p):
            k = int(row.argmax())
            yield {"image": str(f), "class": cfg.class_names[k], "class_index": k, "probability": float(row[k]),
                   "keep": bool(row[k] >= threshold), "threshold": float(threshold)}

    batch: list[tuple[Path, np.ndarray]] = []
    for f in files:
        try:
            arr, _ = decode_image(f.read_bytes(), size=None)
        except (ValueError, OSError) as e:
            raise EOEdgeError(f"cannot read image {f}: {str(e).splitlines()[0][:150]}") from None
        arr = select_model_bands(arr, cfg, f.name)
        batch.append((f, preprocess(arr[None], cfg.input_size, cfg.mean, cfg.std)))
        if len(batch) == batch_size:
            yield from flush(batch)
            batch = []
    if batch:
        yield from flush(batch)


def jsonl(records: list[dict]) -> bytes:
    """Records as JSON Lines (UTF-8, one object per line)."""
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def run_predict(model: Path, images: list[Path], *, threshold: float | None = None, backend: str = "onnxruntime",
                out_file: Path | None = None, batch_size: int = 64) -> tuple[list[dict], dict[str, Any]]:
    """``eo-edge predict``: classify image files with any model; write JSON Lines to ``out_file``
    (atomically) when given.

    Args:
        threshold: keep an image when its calibrated probability >= it (default: the model's
            threshold from ``eo-edge calibrate``, else 0 = keep all).

    Returns:
        ``(records, summary)``: one :func:`predict` record per image, and ``{"n_images", "kept",
        "threshold", "threshold_source", "temperature"}``.

    Raises:
        EOEdgeError: a bad threshold or batch size, an output that is an input or a folder, no
            images, an unreadable image (one line, before anything is written).
    """
    from ..fileio import check_not_input, write_bytes
    from .loading import open_model

    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise EOEdgeError(f"--threshold is a probability in [0, 1], got {threshold}")
    if batch_size < 1:
        raise EOEdgeError(f"--batch-size must be at least 1, got {batch_size}")
    if out_file is not None:
        if out_file.is_dir():
            raise EOEdgeError(f"--out {out_file} is a folder; give a file path")
        check_not_input(out_file, model, *images, what="--out")
    files = image_files(list(images))
    fn, cfg, _ = open_model(model, backend=backend)
    thr = threshold if threshold is not None else float(cfg.decision.get("threshold", 0.0))
    src = ("--threshold" if threshold is not None else
           f"the model's, fitted for {cfg.decision.get('target_accuracy_pct', '?')} % on validation"
           if "threshold" in cfg.decision else "none stored: keep all")
    recs = list(predict(fn, cfg, files, thr, batch_size))
    if out_file is not None:
        write_bytes(out_file, jsonl(recs))
    return recs, {"n_images": len(recs), "kept": sum(r["keep"] for r in recs), "threshold": thr,
                  "threshold_source": src, "temperature": cfg.temperature}
