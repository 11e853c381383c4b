"""``eo-edge train`` and ``eo-edge distill`` as use cases: validate everything (options, resume
state, teachers) before any data work, then train (:func:`eo_edge.train.loop.train`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from ..errors import EOEdgeError

WEIGHTINGS = ("batch", "sample", "static")  # the rule of eo_edge.train.distill: per batch (the paper's), per image, 0.5/0.5


def train_options(**kw: Any):
    """A validated :class:`eo_edge.train.loop.TrainOptions` (unknown arch, bad sizes ... refused, one
    line). ``img_size=None`` is kept as "not given" (see :func:`native_size`)."""
    from ..models.registry import default_config
    from ..train.loop import TrainOptions, check_options

    given = kw.get("img_size")
    opts = TrainOptions(**{**kw, "img_size": given if given is not None else 64})
    default_config(opts.arch)
    check_options(opts)
    return replace(opts, img_size=given)


def native_size(opts, ds, log: Callable[[str], None]):
    """``opts`` with the input size the data's own when ``--img-size`` was not given (a prepared
    dataset holds one image size: its images as prepared)."""
    if opts.img_size is not None:
        return opts
    h, w = ds.images.shape[1:3]
    size = int(h) if h == w else 64
    log(f"--img-size not given: {size} px, the dataset's own image size" if h == w else
        f"--img-size not given and the images are {w} x {h} px: 64 px")
    return replace(opts, img_size=size)


def run_dir_name(arch: str, img_size: int, seed: int, weighting: str | None = None, low: float | None = None,
                 high: float | None = None) -> str:
    """The default run folder name under ``HOME/runs``: ``ARCH-PXpx-sSEED`` (train) or
    ``kd-STUDENT-RULE-sSEED`` (distill; RULE = the weighting, plus ``-lLOW-hHIGH`` for non-default thresholds)."""
    if weighting is None:
        return f"{arch}-{img_size}px-s{seed}"
    from ..train.distill import PAPER_HIGH, PAPER_LOW

    rule = weighting if (low, high) == (PAPER_LOW, PAPER_HIGH) else f"{weighting}-l{low:g}-h{high:g}"
    return f"kd-{arch}-{rule}-s{seed}"


def train(opts, *, data: Path | None, home: Path | None, out_dir: Path | None, resume: bool, quiet: bool,
          log: Callable[[str], None], command: str = "") -> tuple[dict, Path]:
    """Cross-entropy training of ``opts.arch``. Returns ``(result, run folder)`` (result as
    :func:`eo_edge.train.loop.train`: ``test`` report, ``best_epoch``, ``best_val_top1``, ...)."""
    from ..home import home_dir
    from ..train.loop import check_resume
    from ..train.loop import train as run_train
    from .data import resolve

    ds = None
    if opts.img_size is None:  # the data's own size: resolve the data first
        ds = resolve(data, home, quiet, log)
        opts = native_size(opts, ds, log)
    run_dir = out_dir or home_dir(home) / "runs" / run_dir_name(opts.arch, opts.img_size, opts.seed)
    if resume:
        check_resume(run_dir, opts)  # before the data is resolved or prepared, when --img-size is given
    ds = ds if ds is not None else resolve(data, home, quiet, log)
    res = run_train(opts, ds, run_dir, resume=resume, progress=not quiet, log=log, command=command, verbose=not quiet)
    return res, run_dir


def distill(teachers: list[Path], *, data: Path | None, home: Path | None, out_dir: Path | None, resume: bool,
            quiet: bool, log: Callable[[str], None], command: str = "", **kw: Any) -> tuple[dict, Path]:
    """Distil frozen ``teachers`` into ``kw["arch"]`` with the paper's confidence-weighted KD
    (Le et al., arXiv 2411.00209; :mod:`eo_edge.train.distill`). ``kw``: :class:`TrainOptions` fields
    (``weighting``, ``temperature``, ``low``, ``high`` among them).

    Every teacher is checked readable and trained, and the resume state matched, before the
    teacher-logit cache is built (minutes).

    Raises:
        EOEdgeError: an unknown weighting, T <= 0, a missing or untrained teacher (one line).
    """
    from ..data.split import train_rows
    from ..home import home_dir
    from ..models.checkpoint import load_checkpoint
    from ..train.loop import check_resume, pick_device
    from ..train.loop import train as run_train
    from ..train.teacher_cache import build_teacher_cache
    from .data import resolve

    if kw.get("weighting") not in WEIGHTINGS:
        raise EOEdgeError(f"unknown --weighting {kw.get('weighting')!r}; choose batch, sample or static")
    if kw.get("temperature", 1.0) <= 0:
        raise EOEdgeError("--temperature must be positive")
    for t in teachers:  # every teacher readable and trained before any data work
        if not t.is_file():
            raise EOEdgeError(f"teacher {t} is a folder" if t.is_dir() else f"teacher checkpoint not found: {t}")
        load_checkpoint(t)
    opts = train_options(teachers=[str(t) for t in teachers], **kw)
    ds = None
    if opts.img_size is None:
        ds = resolve(data, home, quiet, log)
        opts = native_size(opts, ds, log)
    run_dir = out_dir or home_dir(home) / "runs" / run_dir_name(opts.arch, opts.img_size, opts.seed, opts.weighting,
                                                                 opts.low, opts.high)
    if resume:
        check_resume(run_dir, opts)  # before the teacher-logit cache (minutes), not after it
    ds = ds if ds is not None else resolve(data, home, quiet, log)
    cache = build_teacher_cache(list(teachers), ds, train_rows(ds, opts.limit_train, opts.seed),
                                home_dir(home) / "teacher-cache", device=pick_device(opts.device), progress=not quiet,
                                log=log)
    res = run_train(opts, ds, run_dir, resume=resume, progress=not quiet, log=log, command=command,
                    teacher_logits=cache, verbose=not quiet)
    return res, run_dir
