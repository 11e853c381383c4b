"""The teacher-logit cache: frozen teachers' logits, computed once and cached exactly.

Training augmentation in eo-edge is the dihedral group D4 (flips and 90-degree rotations),
a finite set of 8 views per image, and the teachers are frozen. So the teachers' logits on
*every* view a student can ever see are computed once - 8 teacher passes per training
image - and cached on disk per teacher (``HOME/teacher-cache/teacher-w<key>.npz``, key = the
teacher checkpoint's hash and the image set). After that an epoch of distillation costs about one student
epoch, and the cached logits are exactly what the teacher would have produced online for the
same augmented image: caching changes no result. (Augmentations with a continuous parameter,
e.g. random crops or colour jitter, would break this; eo-edge does not use them for EuroSAT.)
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.dataset import PreparedData
from ..schemas import LOGITS


class TeacherLogitCache:
    """Teacher logits for every (training image, D4 view).

    Attributes:
        logits: float32 (K, N, 8, C): teacher k, dataset row i (in ``rows`` order), view t.
    """

    def __init__(self, logits: np.ndarray, rows: np.ndarray):
        self.logits = logits
        self.pos = {int(r): j for j, r in enumerate(rows)}

    def get(self, idx: np.ndarray, tids: np.ndarray):
        """Logits for dataset rows ``idx`` (B,) seen under views ``tids`` (B,): list of K float32
        tensors (B, C)."""
        import torch

        j = np.array([self.pos[int(i)] for i in idx])
        return [torch.from_numpy(self.logits[k, j, tids]) for k in range(self.logits.shape[0])]

    def confidences(self, temperature: float) -> np.ndarray:
        """Mean max softmax(z / T) of each teacher over all cached views: float (K,)."""
        z = self.logits / temperature
        z = z - z.max(-1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(-1, keepdims=True)
        return p.max(-1).mean(axis=(1, 2))


def _teacher_key(teacher_sha: str, data: PreparedData, rows: np.ndarray) -> str:
    h = hashlib.sha256(teacher_sha.encode())
    h.update(np.asarray(rows, np.int64).tobytes())
    h.update(("|".join(data.names[i] for i in rows[:50])).encode())
    return h.hexdigest()[:20]


def logits_identity(path: Path) -> str:
    """sha256 of what determines a checkpoint's logits: its weights (every state_dict tensor, in
    key order) and the config fields that shape its input (arch, input size, mean/std, classes).

    Unlike the file's sha256 it does not change when ``eo-edge calibrate`` stores a temperature
    or threshold in the config (those act after the logits), so a cached teacher stays valid.
    Bare state_dicts (no eo-edge config) hash their tensors only.
    """
    import json

    import torch

    from ..models.checkpoint import _torch_load

    obj = _torch_load(Path(path))  # one-line EOEdgeError for unreadable files
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else {}
    h = hashlib.sha256(LOGITS.encode())
    for k in sorted(sd):
        v = sd[k]
        if hasattr(v, "detach"):
            h.update(k.encode())
            h.update(str(v.dtype).encode() + str(tuple(v.shape)).encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes() if v.dtype != torch.bfloat16
                     else v.float().numpy().tobytes())
    cfg = obj.get("config") if isinstance(obj, dict) else None
    if isinstance(cfg, dict):
        h.update(json.dumps({k: cfg.get(k) for k in ("arch", "input_size", "mean", "std", "class_names")},
                            sort_keys=True).encode())
    return h.hexdigest()


def teacher_logits(path: Path, data: PreparedData, rows: np.ndarray, cache_dir: Path, device: str = "cpu",
                   batch_size: int = 256, progress: bool = True, log: Callable[[str], None] = print) -> np.ndarray:
    """One teacher's logits on the 8 D4 views of ``data`` rows ``rows``, cached per teacher.

    The cache file ``cache_dir/teacher-w<key>.npz`` is keyed by the checkpoint's weights
    (:func:`logits_identity`) and the rows, so any combination of teachers reuses each teacher's pass.

    Returns:
        float32 (len(rows), 8, C).

    Raises:
        EOEdgeError: the checkpoint cannot be loaded, or its classes differ from the data's.
    """
    import torch
    from rich.progress import Progress

    from ..errors import EOEdgeError
    from ..fileio import atomic_path, sha256_file
    from ..models.checkpoint import load_checkpoint
    from .d4 import to_model_input

    cache_dir.mkdir(parents=True, exist_ok=True)
    f = cache_dir / f"teacher-w{_teacher_key(logits_identity(path), data, rows)}.npz"
    legacy = cache_dir / f"teacher-{_teacher_key(sha256_file(path), data, rows)}.npz"  # keyed by file sha (<= 0.1)
    if not f.is_file() and legacy.is_file():
        os.replace(legacy, f)  # same weights, same logits: re-key the cache by the weights
    if f.is_file():
        log(f"teacher logits: cache hit for {path.name} ({f.name})")
        return np.load(f)["logits"]
    model, cfg, _ = load_checkpoint(path)
    if list(cfg.class_names) != list(data.class_names):
        raise EOEdgeError(f"teacher {path.name} predicts classes {list(cfg.class_names)[:3]}..., not the data's")
    model.to(device).eval().to(memory_format=torch.channels_last)
    lg = np.zeros((len(rows), 8, cfg.num_classes), np.float32)
    t0 = time.perf_counter()
    log(f"teacher logits: {path.name} ({cfg.arch} @ {cfg.input_size} px) on {len(rows)} images x 8 views ...")
    with Progress(disable=not progress, transient=True) as prog, torch.inference_mode():
        task = prog.add_task(f"teacher {path.name}: 8 views", total=len(rows) * 8)
        for s in range(0, len(rows), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(data.images[rows[s:s + batch_size]]))
            for t in range(8):
                tids = torch.full((len(xb),), t, dtype=torch.int64)
                x = to_model_input(xb, cfg, device, tids=tids).contiguous(memory_format=torch.channels_last)
                lg[s:s + len(xb), t] = model(x).float().cpu().numpy()
                prog.advance(task, len(xb))
    with atomic_path(f, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, logits=lg, rows=np.asarray(rows, np.int64))
    log(f"teacher logits: {path.name} done in {time.perf_counter() - t0:.0f} s -> {f.name}")
    return lg


def build_teacher_cache(teacher_paths: list[Path], data: PreparedData, rows: np.ndarray, cache_dir: Path,
                        device: str = "cpu", batch_size: int = 256, progress: bool = True,
                        log: Callable[[str], None] = print) -> TeacherLogitCache:
    """The logits of every teacher on the 8 D4 views of ``data`` rows ``rows``
    (:func:`teacher_logits` per teacher, each run with its own input size and mean/std).

    Returns:
        a :class:`TeacherLogitCache` (K = len(teacher_paths)).

    Raises:
        EOEdgeError: a teacher checkpoint cannot be loaded, or its classes differ from the data's.
    """
    out = [teacher_logits(Path(p), data, rows, cache_dir, device, batch_size, progress, log) for p in teacher_paths]
    return TeacherLogitCache(np.stack(out), rows)
