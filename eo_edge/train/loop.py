"""Supervised training and knowledge distillation of EuroSAT classifiers.

Recipe: cross-entropy (or :class:`eo_edge.train.distill.DualTeacherKDLoss` when teachers are
given), augmentation suited to overhead imagery (random horizontal/vertical flips and
90-degree rotations: a satellite chip has no canonical "up"), AdamW with a per-step cosine
schedule after a linear warm-up (Loshchilov & Hutter, ICLR 2019 / 2017), model selection
on the validation split only (the test split is touched once, at the end), seeded and
resumable from ``last.pt``. Runs on CUDA when present, else on the CPU; under ``torchrun`` it
runs data-parallel (DistributedDataParallel; gloo on CPU, NCCL on GPU): every rank draws the
same seeded global batch and trains on its ``rank::world`` share, rank 0 evaluates and saves.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.dataset import PreparedData
from ..data.split import split_indices, split_source, train_rows
from ..data.transforms import value_scale
from ..defaults import check_image_size
from ..errors import EOEdgeError
from ..fileio import atomic_path, write_json
from ..hostinfo import host_description
from ..models.registry import create_model
from .d4 import to_model_input


@dataclass
class TrainOptions:
    """Options of ``eo-edge train`` / ``eo-edge distill`` (units: epochs, images, learning rate)."""

    arch: str = "resnet8"
    img_size: int = 64
    epochs: int = 15
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    limit_train: int | None = None  # use only the first N training images (quick tests)
    teachers: list[str] = field(default_factory=list)
    weighting: str = "batch"
    temperature: float = 5.0
    low: float = 0.4  # the confidence rule's thresholds, eo_edge.train.distill.PAPER_LOW / PAPER_HIGH (literals: that
    high: float = 0.6  # module imports torch, this one lazily; tests/test_train.py checks that they agree)


#: Options that shape a run's result: a resume must use the same values (threads and device may differ).
RESUME_KEYS = ("img_size", "epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "label_smoothing", "seed",
               "limit_train", "teachers", "weighting", "temperature", "low", "high")

_FLOAT_KEYS = ("lr", "weight_decay", "warmup_epochs", "label_smoothing", "temperature", "low", "high")


def check_resume_options(saved: dict, opts: TrainOptions, last: Path) -> None:
    """Refuse to resume ``last`` with options that differ from the ones it was started with
    (:data:`RESUME_KEYS`; teachers compared as resolved paths). Without this a resumed run would
    silently mix two schedules (e.g. a cosine restarted at another ``--epochs``) or teacher sets.

    Raises:
        EOEdgeError: one line naming each differing option, its saved and its new value.
    """
    def norm(k: str, v):
        if k == "teachers":
            return [str(Path(t).resolve()) for t in (v or [])]
        return float(v) if k in _FLOAT_KEYS and v is not None else v

    new = asdict(opts)
    diff = [k for k in RESUME_KEYS if k in saved and norm(k, saved[k]) != norm(k, new[k])]
    if diff:
        flag = {"teachers": "--teacher"}
        what = ", ".join(f"{flag.get(k, '--' + k.replace('_', '-'))} {saved[k]!r} (now {new[k]!r})" for k in diff)
        raise EOEdgeError(f"{last} was started with {what}; resume with the same options, "
                          "or use another --out or --no-resume")


def check_resume(out_dir: Path, opts: TrainOptions) -> None:
    """Before any work: when ``out_dir/last.pt`` exists, the run it holds must be of ``opts.arch``
    with the same result-shaping options (:func:`check_resume_options`). No-op without last.pt.

    Raises:
        EOEdgeError: unreadable last.pt, another architecture, or differing options.
    """
    import torch

    last = Path(out_dir) / "last.pt"
    if not last.is_file():
        return
    try:
        st = torch.load(last, map_location="cpu", weights_only=True)
    except Exception as e:
        raise EOEdgeError(f"cannot resume from {last}: {str(e).splitlines()[0] if str(e) else type(e).__name__}; "
                          "use another --out or --no-resume") from None
    saved = st.get("options", {}) if isinstance(st, dict) else {}
    if saved.get("arch") != opts.arch:
        raise EOEdgeError(f"{last} belongs to a run of {saved.get('arch')}, not {opts.arch}; "
                          "use another --out or --no-resume")
    check_resume_options(saved, opts, last)


def check_options(opts: TrainOptions) -> None:
    """Validate options before any work (no torch import needed for the checks themselves).

    Raises:
        EOEdgeError: one line naming the bad option.
    """
    import math

    if opts.epochs < 1:
        raise EOEdgeError(f"--epochs must be at least 1, got {opts.epochs}")
    if opts.batch_size < 1:
        raise EOEdgeError(f"--batch-size must be at least 1, got {opts.batch_size}")
    if not (math.isfinite(opts.lr) and opts.lr > 0):
        raise EOEdgeError(f"--lr must be a positive number, got {opts.lr}")
    if not (math.isfinite(opts.weight_decay) and opts.weight_decay >= 0):
        raise EOEdgeError(f"--weight-decay must be >= 0, got {opts.weight_decay}")
    check_image_size(opts.img_size)
    if opts.threads is not None and opts.threads < 1:
        raise EOEdgeError(f"--threads must be at least 1, got {opts.threads}")
    if opts.limit_train is not None and opts.limit_train < 1:
        raise EOEdgeError(f"--limit-train must be at least 1, got {opts.limit_train}")
    if not (math.isfinite(opts.low) and math.isfinite(opts.high) and 0.0 <= opts.low <= opts.high <= 1.0):
        raise EOEdgeError(f"need 0 <= --low <= --high <= 1, got --low {opts.low} --high {opts.high}")
    if not (opts.device in ("auto", "cpu", "cuda") or opts.device.startswith("cuda:") and opts.device[5:].isdigit()):
        raise EOEdgeError(f"unknown --device {opts.device!r}; choose auto, cpu, cuda or cuda:N")


def pick_device(name: str = "auto") -> str:
    """``"cuda"`` if ``name == "auto"`` and a GPU is visible, else ``name`` (``"cpu"``).

    Raises:
        EOEdgeError: CUDA asked for but not visible.
    """
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EOEdgeError("--device cuda asked for, but no CUDA GPU is visible")
    return name


def _lr_lambda(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return f


def band_statistics(data: PreparedData) -> dict[str, tuple[float, ...]]:
    """Per-band mean and std of the training split, accumulated in float64, in the units the
    model sees (raw values x :func:`eo_edge.data.transforms.value_scale`): the normalisation of a
    multispectral model (RGB models keep ImageNet's). Returns ``{"mean": (C,), "std": (C,)}``."""
    tr = split_indices(data, "train")
    scale = value_scale(data.images.dtype)
    s1 = np.zeros(data.images.shape[-1], np.float64)
    s2 = np.zeros_like(s1)
    n = 0
    for i in range(0, len(tr), 512):
        x = np.asarray(data.images[tr[i:i + 512]], np.float64).reshape(-1, data.images.shape[-1]) * scale
        s1 += x.sum(0)
        s2 += (x * x).sum(0)
        n += len(x)
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
    return {"mean": tuple(float(v) for v in mean), "std": tuple(float(max(v, 1e-6)) for v in std)}


def _finished_metrics(out_dir: Path, opts: TrainOptions, best_epoch: int) -> dict | None:
    """The ``metrics.json`` of a finished run in ``out_dir`` (same arch and best epoch as its
    ``last.pt``, ``best.pt`` present), else ``None`` (the final test evaluation never finished)."""
    import json

    p = Path(out_dir) / "metrics.json"
    if not p.is_file() or not (Path(out_dir) / "best.pt").is_file():
        return None
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or "test" not in m or m.get("arch") != opts.arch or m.get("best_epoch") != best_epoch:
        return None
    return m


def train(opts: TrainOptions, data: PreparedData, out_dir: Path, *, resume: bool = True, progress: bool = True,
          log: Callable[[str], None] = print, command: str = "", teacher_logits: Any = None,
          verbose: bool = True) -> dict:
    """Train (or distil into) a model and evaluate the best-on-validation weights on the test split.

    Args:
        opts: :class:`TrainOptions`.
        data: the prepared dataset (all splits; the committed split is applied here).
        out_dir: run folder; gets ``last.pt`` (resume state), ``best.pt`` (eo-edge checkpoint,
            selected on validation top-1), ``history.json``, ``metrics.json`` and
            ``confusion.png``.
        resume: continue from ``out_dir/last.pt`` when present. A run whose ``last.pt`` already
            holds every epoch is not trained again: its ``metrics.json`` is returned as is (or,
            when the final test evaluation never finished, ``best.pt`` is evaluated on test).
        progress: rich progress bars (they draw only on a terminal).
        log: where messages go (one line each).
        verbose: also log a start line and one line per epoch (epoch i/N, train loss, val
            top-1 %, learning rate, elapsed s; when distilling the teachers' mean confidences,
            weights and rule branches): what a log file or CI job shows instead of the bars.
        teacher_logits: for distillation, an object with ``.get(idx, tids) -> list of float
            tensors (B, C)``, one per teacher, for dataset rows ``idx`` seen under D4
            elements ``tids`` (see :class:`eo_edge.train.teacher_cache.TeacherLogitCache`).

    Returns:
        The final metrics dict (``test`` classification report, ``best_val_top1``,
        ``best_epoch``, ``wall_time_s``, ``host``...), also written to ``metrics.json``.

    Raises:
        EOEdgeError: bad options, no CUDA when asked for, a dataset with fewer than 2 classes.
    """
    if len(data.class_names) < 2:
        raise EOEdgeError(f"the dataset has {len(data.class_names)} class ({', '.join(data.class_names)}); "
                          "a classifier needs at least 2 class folders")
    import torch
    import torch.nn.functional as F
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..metrics.evaluate import evaluate, torch_logit_fn
    from ..metrics.stats import plot_confusion
    from ..models.checkpoint import save_checkpoint

    check_options(opts)
    device = pick_device(opts.device)
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if world > 1:
        # Data-parallel under torchrun: one process per device (or per CPU group, gloo).
        # Source: PyTorch docs, "Getting Started with DistributedDataParallel" / torchrun.
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            torch.cuda.set_device(device)
        if opts.batch_size % world:
            raise EOEdgeError(f"--batch-size {opts.batch_size} must be divisible by the {world} processes")
        if rank != 0:
            log = lambda m: None  # noqa: E731 - only rank 0 talks
            progress = False
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    norm = band_statistics(data) if not (data.images.dtype == np.uint8 and data.images.shape[-1] == 3) else {}
    model, cfg = create_model(opts.arch, input_size=opts.img_size, class_names=tuple(data.class_names), **norm)
    # the data the model belongs to travels in its config (checkpoint, ONNX metadata): commands given
    # no --data use this dataset, never whatever was prepared last; bands and value scale likewise
    cfg = cfg.with_(extra={**cfg.extra, "dataset": data.root.name if data.root is not None else None,
                           "dataset_path": str(data.root) if data.root is not None else None,
                           "bands": list((data.manifest or {}).get("bands") or []),
                           "value_scale": value_scale(data.images.dtype)})
    if norm:
        log(f"per-band mean/std from the {len(split_indices(data, 'train'))} training images "
            f"({data.images.shape[-1]} bands, {data.images.dtype.name})")
    src_px = int(data.images.shape[1])
    if src_px != opts.img_size:
        log(f"note: the {src_px} px images are resized to the model's {opts.img_size} px input (--img-size)")
    model.to(device)
    fmt = torch.channels_last  # ~1.6x faster convolutions on CPU (oneDNN), harmless on GPU
    model.to(memory_format=fmt)
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[torch.device(device).index] if device.startswith("cuda") else None)
    tr_idx = train_rows(data, opts.limit_train, opts.seed)
    va = data.subset(split_indices(data, "val"))
    te = data.subset(split_indices(data, "test"))
    arr = np.ascontiguousarray(data.images[tr_idx])
    if arr.dtype in (np.uint16, np.int16):  # torch indexes uint8/int32/float tensors; values unchanged
        arr = arr.astype(np.int32)
    x_train = torch.from_numpy(arr)
    y_train = torch.from_numpy(data.labels[tr_idx])
    if device.startswith("cuda"):
        x_train, y_train = x_train.to(device), y_train.to(device)

    steps_per_epoch = max(1, len(tr_idx) // opts.batch_size)
    total = steps_per_epoch * opts.epochs
    optim = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, _lr_lambda(total, int(opts.warmup_epochs * steps_per_epoch)))
    kd = None
    if opts.teachers:
        from .distill import DualTeacherKDLoss

        kd = DualTeacherKDLoss(temperature=opts.temperature, weighting=opts.weighting, low=opts.low, high=opts.high)

    start_epoch, best, best_epoch, history, elapsed0 = 0, -1.0, -1, [], 0.0
    last = out_dir / "last.pt"
    if resume and last.is_file():
        st = torch.load(last, map_location=device, weights_only=True)
        if st.get("options", {}).get("arch") != opts.arch:
            raise EOEdgeError(f"{last} belongs to a run of {st.get('options', {}).get('arch')}, not {opts.arch}; "
                              "use another --out or --no-resume")
        check_resume_options(st.get("options", {}), opts, last)
        model.load_state_dict(st["state_dict"])
        optim.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        start_epoch, best, best_epoch = int(st["epoch"]) + 1, float(st["best"]), int(st["best_epoch"])
        history, elapsed0 = list(st["history"]), float(st.get("elapsed", 0.0))
        if start_epoch < opts.epochs:
            log(f"resumed from {last} at epoch {start_epoch + 1}/{opts.epochs}")
        else:
            done = (f"all {opts.epochs} epochs" if start_epoch == opts.epochs
                    else f"{start_epoch} epochs (more than --epochs {opts.epochs})")
            finished = _finished_metrics(out_dir, opts, best_epoch)
            if finished is not None:
                log(f"run {out_dir} already finished {done}; nothing to do (use --no-resume to start over)")
                if world > 1:
                    import torch.distributed as dist

                    dist.destroy_process_group()
                return finished if rank == 0 else {"rank": rank}
            log(f"run {out_dir} already trained {done}; evaluating its best.pt on the test split")

    host = host_description(device)
    if verbose and start_epoch < opts.epochs:
        log(f"training {cfg.arch} on {len(tr_idx)} images ({steps_per_epoch} steps of {opts.batch_size} per epoch), "
            f"epochs {start_epoch + 1}-{opts.epochs} on {device}"
            + (f", distilling {len(opts.teachers)} teacher(s)" if kd is not None else "") + f" -> {out_dir}")
    t0 = time.perf_counter()
    cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeRemainingColumn()]
    for epoch in range(start_epoch, opts.epochs):
        model.train()
        gen = torch.Generator(device="cpu").manual_seed(opts.seed * 100003 + epoch)
        perm = torch.randperm(len(tr_idx), generator=gen)
        run_loss, seen, conf_log = 0.0, 0, []
        with Progress(*cols, disable=not progress, transient=True) as prog:
            task = prog.add_task(f"epoch {epoch + 1}/{opts.epochs}", total=steps_per_epoch, info="")
            for step in range(steps_per_epoch):
                bidx = perm[step * opts.batch_size:(step + 1) * opts.batch_size]
                tids = torch.randint(0, 8, (len(bidx),), generator=gen)
                if world > 1:  # every rank draws the same global batch, then takes its share
                    bidx, tids = bidx[rank::world], tids[rank::world]
                x = to_model_input(x_train[bidx.to(x_train.device)], cfg, device, tids=tids).contiguous(memory_format=fmt)
                y = y_train[bidx.to(y_train.device)].to(device)
                logits = net(x)
                if kd is not None:
                    t_logits = [t.to(device) for t in teacher_logits.get(tr_idx[bidx.numpy()], tids.numpy())]
                    loss = kd(logits, t_logits, y)
                    conf_log.append((list(kd.last_confidences), list(kd.last_weights), list(kd.last_branch_counts)))
                else:
                    loss = F.cross_entropy(logits, y, label_smoothing=opts.label_smoothing)
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                sched.step()
                run_loss += float(loss.detach()) * len(y)
                seen += len(y)
                prog.update(task, advance=1, info=f"loss {run_loss / seen:.4f}")
        if world > 1 and rank != 0:
            import torch.distributed as dist

            dist.barrier()  # rank 0 evaluates and saves
            continue
        val = evaluate(torch_logit_fn(model, device), va, cfg.input_size, cfg.mean, cfg.std, cfg.class_names,
                       progress=progress)
        model.train()
        rec = {"epoch": epoch + 1, "train_loss": run_loss / max(1, seen), "val_top1": val["top1"],
               "lr": sched.get_last_lr()[0], "elapsed_s": elapsed0 + time.perf_counter() - t0}
        if conf_log:
            from .distill import BRANCHES

            c = np.array([c for c, _, _ in conf_log], dtype=np.float64)
            w = np.array([w for _, w, _ in conf_log], dtype=np.float64)
            b = np.array([b for _, _, b in conf_log], dtype=np.int64).sum(0)
            rec["teacher_confidence"] = c.mean(0).tolist()
            rec["teacher_weight"] = w.mean(0).tolist()
            # fraction of batches ("batch"/"static": the rule's branch on batch means) or of images
            # ("sample") in each branch of the paper's rule (eo_edge.train.distill.BRANCHES)
            rec["rule_branch_fraction"] = {n: float(v) / max(1, int(b.sum())) for n, v in zip(BRANCHES, b)}
        history.append(rec)
        extra_log = ""
        if "teacher_confidence" in rec:
            extra_log = (f"  teacher conf {', '.join(f'{v:.3f}' for v in rec['teacher_confidence'])}"
                         f"  weights {', '.join(f'{v:.3f}' for v in rec['teacher_weight'])}  branches "
                         + " ".join(f"{n} {v:.0%}" for n, v in rec["rule_branch_fraction"].items() if v))
        if verbose:  # one line per epoch: what a log file or CI job shows instead of the progress bars
            log(f"epoch {epoch + 1}/{opts.epochs}  train loss {rec['train_loss']:.4f}  val top-1 {val['top1']:.2f} %  "
                f"lr {rec['lr']:.2e}  {rec['elapsed_s']:.0f} s{extra_log}")
        if val["top1"] > best:
            best, best_epoch = val["top1"], epoch + 1
            save_checkpoint(out_dir / "best.pt", model, cfg,
                            meta={"epoch": epoch + 1, "val_top1": best, "options": asdict(opts), "command": command})
        st = {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
              "optimizer": optim.state_dict(), "scheduler": sched.state_dict(), "epoch": epoch, "best": best,
              "best_epoch": best_epoch, "history": history, "options": asdict(opts),
              "elapsed": elapsed0 + time.perf_counter() - t0}
        with atomic_path(last, suffix=".pt") as tmp:
            torch.save(st, tmp)
        if world > 1:
            import torch.distributed as dist

            dist.barrier()
    wall = elapsed0 + time.perf_counter() - t0
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
        if rank != 0:
            return {"rank": rank}

    from ..models.checkpoint import load_checkpoint

    best_model, best_cfg, _ = load_checkpoint(out_dir / "best.pt")
    test = evaluate(torch_logit_fn(best_model, device), te, best_cfg.input_size, best_cfg.mean, best_cfg.std,
                    best_cfg.class_names, progress=progress)
    result = {"arch": opts.arch, "img_size": opts.img_size, "epochs": opts.epochs, "seed": opts.seed,
              "best_epoch": best_epoch, "best_val_top1": best, "top1": test["top1"], "n_images": test["n_images"],
              "test": test, "wall_time_s": wall, "host": host, "device": device, "options": asdict(opts),
              "command": command, "split": split_source(data),
              "params": int(sum(p.numel() for p in best_model.parameters()))}
    # store the final test metrics in best.pt's meta as well
    save_checkpoint(out_dir / "best.pt", best_model, best_cfg,
                    meta={"epoch": best_epoch, "val_top1": best, "test_top1": test["top1"], "options": asdict(opts),
                          "command": command, "wall_time_s": wall, "host": host})
    write_json(out_dir / "history.json", history)
    write_json(out_dir / "metrics.json", result)
    plot_confusion(test, out_dir / "confusion.png", f"{opts.arch} @ {opts.img_size} px: test top-1 {test['top1']:.2f} %")
    return result
