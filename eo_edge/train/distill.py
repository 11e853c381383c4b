"""Confidence-weighted multi-teacher knowledge-distillation loss (loss only, no training loop).

Source: Le et al., "Semantic Knowledge Distillation for Onboard Satellite EO Image
Classification", arXiv 2411.00209, section on the dual-teacher knowledge distillation with
confidence-based dynamic weighting, and its reference notebook
``ltdung/SnT-SENTRY: Task 3 .../ResNet-GLUSE_with_KD.ipynb`` (class ``DistillationLoss``, CC0),
instantiated there as ``DistillationLoss(temperature=5.0, threshold=0.6, min_weight=0.1)``.

The paper's loss for a student ``s`` and two teachers with weights ``a`` (teacher 1) and
``b`` (teacher 2)::

    L = (1 - (a + b) / 2) * CE(z_s, y) + (a + b) / 2 * T^2 * (a * KL(p_1 || q) + b * KL(p_2 || q))

    p_k = softmax(z_k / T),   q = softmax(z_s / T)
    KL(p || q) = sum_c p_c (log p_c - log q_c), averaged over the batch ("batchmean")

with ``a, b`` chosen per batch by :func:`dynamic_weights` from the teachers' confidences
``c_k = mean_i max_c softmax(z_k / T)_{i,c}`` (:func:`teacher_confidence`).

Comparisons (checked against the notebook): every test is a *strict* ``<``:
``c < low`` (0.4) and ``c < high`` (0.6). A teacher exactly at 0.6 counts as confident; two
teachers both exactly at 0.4 are *not* ignored (they fall in the "both below 0.6" branch).
The notebook hard-codes 0.4, 0.6 and the 0.1 floor inside ``forward`` (its ``threshold`` and
``min_weight`` constructor arguments are ignored); here they are the ``low``, ``high`` and
``floor`` parameters, with the notebook's values as defaults. The notebook takes the
confidences with ``.item()``, so the weights are constants for autograd; so are they here.

Generalization to ``K >= 1`` teachers (:func:`teacher_weights`); it is exactly the paper's
rule for ``K = 2`` (see ``tests/test_distill_loss.py``). With ``U`` the set of teachers with
``c_k < high`` ("unconfident") and ``n_u = |U|``:

1. every ``c_k < low``            -> ``w_k = 0`` for all k (plain cross-entropy);
2. every ``c_k < high``           -> ``w_k = (2/K) * max(0.5 - (high - c_k), floor)``;
3. otherwise (at least one ``c_k >= high``):
   ``w_k = 0.6/K`` for k in U, and the confident teachers share the rest equally,
   ``w_k = (1 - n_u * 0.6/K) / (K - n_u)`` (with ``n_u = 0`` that is ``1/K`` each).

and the distillation share ``lambda = (sum_k w_k) / 2`` replaces ``(a + b) / 2``::

    L = (1 - lambda) * CE + lambda * T^2 * sum_k w_k * KL(p_k || q)

For ``K = 2`` the factors are ``2/K = 1``, ``0.6/K = 0.3`` and ``1 - 0.3 = 0.7``: the paper's
(0, 0) / max(0.5 - (0.6 - c), 0.1) / (0.3, 0.7) / (0.7, 0.3) / (0.5, 0.5). Design choices: a
teacher's nominal weight is ``1/K`` (0.5 for two teachers) and an unconfident teacher keeps
the paper's 0.3/0.5 = 60 % of it, so the weights sum to 1 whenever some teacher is confident
(the distillation share stays 0.5 for every K) and are never negative. (Giving every
unconfident teacher a flat 0.3 would leave ``1 - 0.3 * n_u`` for the confident ones, which is
negative for ``n_u >= 4``.) In branch 2 the sum is below 1, so low-confidence batches lean
on the labels, as in the paper. With ``K = 1`` this is Hinton's KD with ``alpha = 0.5`` when
the teacher is confident, a reduced share below ``high`` and plain CE below ``low``.

Note on the floor: with the defaults it binds in branch 2 whenever a teacher is below 0.2
while another is in [0.4, 0.6) (e.g. ``c = (0.15, 0.45)`` gives ``(0.1, 0.35)``); it cannot
bind when both are at least 0.2.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import EOEdgeError

__all__ = ["BRANCHES", "DualTeacherKDLoss", "PAPER_FLOOR", "PAPER_HIGH", "PAPER_LOW", "WEIGHTINGS", "rule_branches", "dynamic_weights", "teacher_confidence", "teacher_weights"]

#: The rule's thresholds and floor as the notebook hard-codes them (module docstring); the defaults
#: of every function here and of ``eo-edge distill --low/--high``.
PAPER_LOW, PAPER_HIGH, PAPER_FLOOR = 0.4, 0.6, 0.1

#: Accepted values of ``DualTeacherKDLoss(weighting=...)``.
WEIGHTINGS = ("batch", "sample", "static")

# Paper (K = 2): a lone unconfident teacher gets 0.3 of the 0.5 + 0.5 = 1 total, i.e. 60 %
# of its nominal 1/K share; the generalization keeps that ratio.
_UNCONFIDENT_FRACTION = 0.6


def dynamic_weights(c1: float, c2: float, low: float = PAPER_LOW, high: float = PAPER_HIGH,
                    floor: float = PAPER_FLOOR) -> tuple[float, float]:
    """The paper's confidence-based teacher weights ``(a, b)`` for two teachers.

    Literal transcription of the notebook's ``DistillationLoss.forward`` (all comparisons
    strict ``<``)::

        c1 < low  and c2 < low   -> (0, 0)
        c1 < high and c2 < high  -> (max(0.5 - (high - c1), floor), max(0.5 - (high - c2), floor))
        c1 < high                -> (0.3, 0.7)
        c2 < high                -> (0.7, 0.3)
        otherwise                -> (0.5, 0.5)

    Args:
        c1, c2: teacher confidences (batch mean of the max tempered softmax probability,
            see :func:`teacher_confidence`), in ``[1/C, 1]``.
        low, high, floor: the notebook's 0.4, 0.6 and 0.1.

    Returns:
        ``(a, b)``: weights of teacher 1 and teacher 2 (Python floats).

    Source: arXiv 2411.00209, dynamic weighting of the dual-teacher KD; notebook
    ``ResNet-GLUSE_with_KD.ipynb``, class ``DistillationLoss``.
    """
    c1, c2 = float(c1), float(c2)
    if c1 < low and c2 < low:
        return 0.0, 0.0
    if c1 < high and c2 < high:
        return max(0.5 - (high - c1), floor), max(0.5 - (high - c2), floor)
    if c1 < high:
        return 0.3, 0.7
    if c2 < high:
        return 0.7, 0.3
    return 0.5, 0.5


def _rule_weights(conf: torch.Tensor, low: float, high: float, floor: float) -> torch.Tensor:
    """Vectorized K-teacher rule: ``conf`` (..., K) float -> weights (..., K), same dtype.

    See the module docstring for the three branches; the last dimension indexes teachers.
    """
    k = conf.shape[-1]
    below_high = conf < high
    all_low = (conf < low).all(dim=-1, keepdim=True)
    all_high = below_high.all(dim=-1, keepdim=True)
    n_u = below_high.sum(dim=-1, keepdim=True).to(conf.dtype)
    n_c = (k - n_u).clamp_min(1.0)  # only used where some teacher is confident (n_c >= 1)

    w_uncertain = (2.0 / k) * torch.clamp(0.5 - (high - conf), min=floor)
    u = _UNCONFIDENT_FRACTION / k
    w_mixed = torch.where(below_high, torch.full_like(conf, u), (1.0 - n_u * u) / n_c)
    w = torch.where(all_high, w_uncertain, w_mixed)
    return torch.where(all_low, torch.zeros_like(conf), w)


#: Names of the rule's branches, in the module docstring's order (branch 3 split by K - n_u).
BRANCHES = ("all_below_low", "all_below_high", "some_confident", "all_confident")


def rule_branches(conf: torch.Tensor, low: float = PAPER_LOW, high: float = PAPER_HIGH) -> torch.Tensor:
    """Which branch of the rule each row of confidences takes.

    Args:
        conf: float (..., K) confidences.

    Returns:
        int64 (...) index into :data:`BRANCHES`: 0 every ``c < low``; 1 every ``c < high``;
        2 some but not all ``c >= high``; 3 every ``c >= high``.
    """
    below_high = conf < high
    b = torch.full(conf.shape[:-1], 2, dtype=torch.int64, device=conf.device)
    b = torch.where((~below_high).all(dim=-1), torch.full_like(b, 3), b)
    b = torch.where(below_high.all(dim=-1), torch.ones_like(b), b)
    return torch.where((conf < low).all(dim=-1), torch.zeros_like(b), b)


def teacher_weights(confidences: Sequence[float], low: float = PAPER_LOW, high: float = PAPER_HIGH,
                    floor: float = PAPER_FLOOR) -> tuple[float, ...]:
    """Generalized confidence rule for ``K >= 1`` teachers; one weight per teacher.

    With ``n_u`` the number of teachers whose confidence is ``< high`` (strict, as in the
    paper)::

        all c_k < low   -> w_k = 0
        all c_k < high  -> w_k = (2/K) * max(0.5 - (high - c_k), floor)
        otherwise       -> w_k = 0.6/K for c_k < high,
                           w_k = (1 - n_u * 0.6/K) / (K - n_u) for c_k >= high

    For ``K = 2`` this equals :func:`dynamic_weights` exactly. The weights sum to 1 when any
    teacher is confident, and to less than 1 otherwise.

    Args:
        confidences: ``K`` teacher confidences (floats).
        low, high, floor: thresholds, as in :func:`dynamic_weights`.

    Returns:
        Tuple of ``K`` Python floats.

    Raises:
        EOEdgeError: no confidences given.
    """
    confs = [float(c) for c in confidences]
    if not confs:
        raise EOEdgeError("teacher_weights needs at least one teacher confidence")
    w = _rule_weights(torch.tensor(confs, dtype=torch.float64), low, high, floor)
    return tuple(float(x) for x in w.tolist())


def teacher_confidence(logits: torch.Tensor, temperature: float = 5.0, *,
                       reduce: bool = True) -> torch.Tensor:
    """A teacher's confidence: the max tempered softmax probability, batch-averaged.

    ``c = (1/N) * sum_i max_c softmax(z_i / T)_c``  (notebook:
    ``torch.softmax(z / T, dim=1).max(dim=1)[0].mean()``).

    Args:
        logits: float tensor (N, C) of teacher logits.
        temperature: softmax temperature ``T > 0``.
        reduce: if False, return the per-image confidences (N,) instead of the mean.

    Returns:
        A 0-d float tensor (or (N,) if ``reduce=False``), computed without gradient, on the
        logits' device, in float32 or wider.

    Raises:
        EOEdgeError: ``logits`` is not 2-D or the temperature is not positive.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise EOEdgeError(f"teacher logits must be a 2-D tensor (N, C), got shape {_shape(logits)}")
    if not temperature > 0:
        raise EOEdgeError(f"temperature must be > 0, got {temperature}")
    with torch.no_grad():
        z = logits.detach()
        if z.dtype not in (torch.float32, torch.float64):
            z = z.float()
        conf = torch.softmax(z / temperature, dim=1).amax(dim=1)
        return conf.mean() if reduce else conf


def _shape(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


class DualTeacherKDLoss(nn.Module):
    """Confidence-weighted (dual- or multi-) teacher knowledge-distillation loss.

    Called as ``loss(student_logits, [teacher1_logits, teacher2_logits, ...], labels)``:

    * ``student_logits``: float tensor (N, C) (any float dtype; computed in float32 or wider);
    * teacher logits: a list/tuple of K >= 1 float tensors (N, C) (or one (N, C) tensor for
      K = 1, or a (K, N, C) tensor); they are detached: no gradient reaches a teacher;
    * ``labels``: int64 tensor (N,) of class indices in ``[0, C)``.

    Returns a 0-d float tensor (the mean loss over the batch)::

        L = (1 - lam) * CE(z_s, y) + lam * T^2 * sum_k w_k * KL(softmax(z_k/T) || softmax(z_s/T))
        lam = (sum_k w_k) / 2           # (a + b) / 2 for two teachers

    with ``KL`` in "batchmean" reduction, i.e. ``F.kl_div(log_softmax(z_s/T), p_k,
    reduction="batchmean")``, and ``CE`` the mean cross-entropy.

    ``weighting``:

    * ``"batch"`` (the paper's): ``c_k`` = :func:`teacher_confidence` of the whole batch,
      weights from :func:`teacher_weights` (= :func:`dynamic_weights` for K = 2);
    * ``"sample"``: the same rule applied to each image's own max-probabilities
      ``c_{i,k} = max_c softmax(z_{k,i}/T)_c``, giving per-image weights ``w_{i,k}`` and
      ``lam_i``; then ``L = mean_i[(1 - lam_i) CE_i + lam_i T^2 sum_k w_{i,k} KL_{i,k}]``
      with per-image ``CE_i`` and ``KL_{i,k} = sum_c p_{k,i,c} (log p_{k,i,c} - log q_{i,c})``.
      One uncertain image no longer down-weights the whole batch. If every image gets the
      same weights this equals ``"batch"`` with those weights;
    * ``"static"``: ``w_k = 1/K`` always (a = b = 0.5 for two teachers), ``lam = 0.5``: the
      usual fixed-weight baseline.

    After each call the module exposes, for logging (Python floats, no graph kept):
    ``last_confidences`` (per-teacher batch-mean confidence, all modes), ``last_weights``
    (per-teacher weight; in "sample" mode the batch mean of the per-image weights),
    ``last_kd_share`` (``lam``; batch mean in "sample" mode), ``last_ce`` and ``last_kd``
    (the batch-mean CE and the weighted ``T^2 * sum_k w_k KL_k`` term; in "sample" mode the
    mean of the per-image terms) and, in "sample" mode only, ``last_sample_weights``
    (a detached (N, K) tensor; None otherwise).

    Args:
        temperature: softmax temperature T (the paper's experiments: 5.0).
        weighting: "batch", "sample" or "static".
        low, high, floor: the confidence thresholds and floor of the rule (0.4, 0.6, 0.1).

    Raises:
        EOEdgeError: an unknown ``weighting``, a non-positive temperature, inconsistent
            thresholds; at call time, mismatched shapes or dtypes, or labels out of range.

    Source: arXiv 2411.00209 (dual-teacher KD, dynamic weighting); notebook
    ``ResNet-GLUSE_with_KD.ipynb``, class ``DistillationLoss`` (CC0).
    """

    def __init__(self, temperature: float = 5.0, weighting: str = "batch", low: float = PAPER_LOW,
                 high: float = PAPER_HIGH, floor: float = PAPER_FLOOR):
        super().__init__()
        if weighting not in WEIGHTINGS:
            raise EOEdgeError(f"unknown weighting {weighting!r}; choose one of: {', '.join(WEIGHTINGS)}")
        try:
            temperature, low, high, floor = float(temperature), float(low), float(high), float(floor)
        except (TypeError, ValueError) as e:
            raise EOEdgeError(f"temperature, low, high and floor must be numbers ({e})") from None
        if not temperature > 0:
            raise EOEdgeError(f"temperature must be > 0, got {temperature}")
        if not (0.0 <= low <= high <= 1.0):
            raise EOEdgeError(f"need 0 <= low <= high <= 1, got low={low}, high={high}")
        if not (0.0 <= floor <= 0.5):
            raise EOEdgeError(f"floor must be in [0, 0.5], got {floor}")
        self.temperature = temperature
        self.weighting = weighting
        self.low, self.high, self.floor = low, high, floor
        self.last_confidences: tuple[float, ...] = ()
        self.last_weights: tuple[float, ...] = ()
        self.last_kd_share: float = float("nan")
        self.last_ce: float = float("nan")
        self.last_kd: float = float("nan")
        self.last_sample_weights: torch.Tensor | None = None
        self.last_branch_counts: tuple[int, ...] = (0,) * len(BRANCHES)

    def extra_repr(self) -> str:
        return (f"temperature={self.temperature}, weighting={self.weighting!r}, low={self.low}, "
                f"high={self.high}, floor={self.floor}")

    # -- input checks -------------------------------------------------------------------
    def _check(self, student: torch.Tensor, teachers, labels: torch.Tensor) -> list[torch.Tensor]:
        if not isinstance(student, torch.Tensor) or student.dim() != 2:
            raise EOEdgeError(f"student logits must be a 2-D tensor (N, C), got {_shape(student)}")
        if not student.is_floating_point():
            raise EOEdgeError(f"student logits must be floating point, got {student.dtype}")
        if isinstance(teachers, torch.Tensor):
            if teachers.dim() == 2:
                teachers = [teachers]
            elif teachers.dim() == 3:
                teachers = list(teachers.unbind(0))
            else:
                raise EOEdgeError(f"teacher logits must be (N, C) tensors, got a tensor of shape {_shape(teachers)}")
        try:
            teachers = list(teachers)
        except TypeError:
            raise EOEdgeError(f"teacher logits must be a list of (N, C) tensors, got {_shape(teachers)}") from None
        if not teachers:
            raise EOEdgeError("at least one teacher's logits are needed")
        for k, t in enumerate(teachers, 1):
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(student.shape):
                raise EOEdgeError(f"teacher {k} logits have shape {_shape(t)}, "
                                  f"expected the student's {tuple(student.shape)}")
            if not t.is_floating_point():
                raise EOEdgeError(f"teacher {k} logits must be floating point, got {t.dtype}")
        if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != student.shape[0]:
            raise EOEdgeError(f"labels must be a 1-D tensor of {student.shape[0]} class indices, got {_shape(labels)}")
        if labels.dtype != torch.int64:
            raise EOEdgeError(f"labels must be int64 class indices, got {labels.dtype}")
        if student.shape[0] == 0:
            raise EOEdgeError("empty batch: no images to compute a loss on")
        n_classes = student.shape[1]
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= n_classes:
            raise EOEdgeError(f"labels must be in [0, {n_classes - 1}], got values in [{lo}, {hi}]")
        return teachers

    # -- forward ------------------------------------------------------------------------
    def forward(self, student_logits: torch.Tensor, teacher_logits, labels: torch.Tensor) -> torch.Tensor:
        teachers = self._check(student_logits, teacher_logits, labels)
        t = self.temperature
        k = len(teachers)
        # Compute in float32 (or float64 if given): stable for fp16/bf16 logits under AMP.
        wide = torch.float64 if student_logits.dtype == torch.float64 else torch.float32
        zs = student_logits.to(wide)
        log_q = F.log_softmax(zs / t, dim=1)                                    # (N, C)
        with torch.no_grad():
            probs = torch.stack([F.softmax(z.detach().to(wide) / t, dim=1) for z in teachers])  # (K, N, C)
            conf_i = probs.amax(dim=2).transpose(0, 1)                          # (N, K)
            conf_b = conf_i.mean(dim=0)                                         # (K,)
        self.last_confidences = tuple(float(c) for c in conf_b.tolist())
        # how often each branch of the rule fired: per image in "sample" mode, once per batch otherwise
        br = rule_branches(conf_i if self.weighting == "sample" else conf_b[None], self.low, self.high)
        self.last_branch_counts = tuple(int(v) for v in torch.bincount(br.reshape(-1), minlength=len(BRANCHES)))

        # Per-image, per-teacher KL(p_k || q) summed over classes: (N, K). Gradient -> student only.
        kl_i = torch.stack([F.kl_div(log_q, probs[j], reduction="none").sum(dim=1) for j in range(k)], dim=1)

        if self.weighting == "sample":
            ce_i = F.cross_entropy(zs, labels, reduction="none")                # (N,)
            w = _rule_weights(conf_i, self.low, self.high, self.floor)          # (N, K), no grad
            lam = w.sum(dim=1) / 2.0                                            # (N,)
            kd_i = (t * t) * (w * kl_i).sum(dim=1)                              # (N,)
            loss = ((1.0 - lam) * ce_i + lam * kd_i).mean()
            self.last_sample_weights = w.detach()
            self.last_weights = tuple(float(x) for x in w.mean(dim=0).tolist())
            self.last_kd_share = float(lam.mean())
            self.last_ce = float(ce_i.detach().mean())
            self.last_kd = float(kd_i.detach().mean())
            return loss

        if self.weighting == "static":
            weights = tuple(1.0 / k for _ in range(k))
        else:  # "batch": the paper's rule on batch-mean confidences (Python floats, as in the notebook)
            weights = teacher_weights(self.last_confidences, self.low, self.high, self.floor)
        lam = sum(weights) / 2.0
        ce = F.cross_entropy(zs, labels)                                        # mean over the batch
        kl_batchmean = kl_i.mean(dim=0)                                         # (K,) == F.kl_div(..., "batchmean")
        kd = (t * t) * sum(w_k * kl_batchmean[j] for j, w_k in enumerate(weights))
        loss = (1.0 - lam) * ce + lam * kd
        self.last_sample_weights = None
        self.last_weights = tuple(weights)
        self.last_kd_share = lam
        self.last_ce = float(ce.detach())
        self.last_kd = float(kd.detach()) if isinstance(kd, torch.Tensor) else float(kd)
        return loss
