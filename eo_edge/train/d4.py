"""Augmentation for overhead imagery: the dihedral group D4 (flips and 90-degree rotations),
and the uint8 -> model-input conversion used by training and the teacher-logit cache.

A satellite chip has no canonical "up", so the 8 elements of D4 are label-preserving. Because
the group is finite, a frozen teacher's logits on every view a student can see are computed
once and cached exactly (:mod:`eo_edge.train.teacher_cache`).
"""

from __future__ import annotations

from ..artifact.config import ModelConfig


def d4_transform(x, tid):
    """Apply dihedral-group element ``tid`` (0..7) to a square batch (N, C, S, S):
    horizontal flip if ``tid & 1``, then ``tid >> 1`` counter-clockwise 90-degree rotations."""
    import torch

    if tid & 1:
        x = x.flip(3)
    k = tid >> 1
    return torch.rot90(x, k, dims=(2, 3)) if k else x


def augment_batch(x, gen):
    """Random flips and 90-degree rotations of a square batch, per image: one of the 8
    elements of the dihedral group D4 drawn uniformly for each image.

    Because the augmentation is this finite group, a frozen teacher's logits on every
    possible augmented view can be precomputed exactly (8 views per image), see
    :mod:`eo_edge.train.teacher_cache`.

    Args:
        x: float tensor (N, C, S, S).
        gen: CPU ``torch.Generator`` for reproducibility.

    Returns:
        ``(augmented tensor of the same shape, tids int64 (N,) in 0..7)``.
    """
    import torch

    tids = torch.randint(0, 8, (x.shape[0],), generator=gen)
    return apply_d4(x, tids), tids


def apply_d4(x, tids):
    """Apply D4 element ``tids[i]`` (int64 (N,), 0..7) to image i of a square batch (N, C, S, S)."""
    out = x.clone()
    for t in range(1, 8):
        m = (tids == t).to(x.device)
        if m.any():
            out[m] = d4_transform(x[m], t)
    return out


def to_model_input(x_uint8_nhwc, cfg: ModelConfig, device: str, gen=None, tids=None):
    """(N, H, W, C) tensor (uint8 RGB, or int32/float bands) -> normalised float32 (N, C, S, S) on
    ``device``; augmented
    randomly if ``gen`` is given, or with the given D4 elements ``tids`` (N,).

    Same arithmetic as :func:`eo_edge.data.transforms.preprocess` (bilinear,
    ``align_corners=False``), so train and eval inputs match.
    """
    import torch
    import torch.nn.functional as F

    scale = 1.0 / 255.0 if x_uint8_nhwc.dtype == torch.uint8 else 1.0  # transforms.value_scale
    x = x_uint8_nhwc.to(device, non_blocking=True).permute(0, 3, 1, 2).float().mul_(scale)
    if gen is not None:
        x, _ = augment_batch(x, gen)
    elif tids is not None:
        x = apply_d4(x, tids)
    if x.shape[-1] != cfg.input_size:
        x = F.interpolate(x, size=(cfg.input_size, cfg.input_size), mode="bilinear", align_corners=False)
    mean = torch.tensor(cfg.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(cfg.std, device=device).view(1, -1, 1, 1)
    return ((x - mean) / std).contiguous()
