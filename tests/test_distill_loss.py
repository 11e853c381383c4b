"""Tests for eo_edge.train.distill: the paper's confidence rule, its K-teacher generalization and
the KD loss against values computed independently with numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eo_edge.train.distill import DualTeacherKDLoss, dynamic_weights, teacher_confidence, teacher_weights
from eo_edge.errors import EOEdgeError

EPS = 1e-9


# ----------------------------------------------------------------------------------------
# dynamic_weights: the paper's rule (strict "<" at 0.4 and 0.6, floor 0.1)
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("c1,c2,expected", [
    # both below low (0.4) -> ignore both teachers
    (0.39, 0.39, (0.0, 0.0)),
    (0.4 - EPS, 0.4 - EPS, (0.0, 0.0)),
    (0.1, 0.2, (0.0, 0.0)),
    # exactly at low is NOT below low (strict <): the "both below high" branch, 0.5-(0.6-0.4)=0.3
    (0.4, 0.4, (0.3, 0.3)),
    (0.4 + EPS, 0.4 + EPS, (0.3 + EPS, 0.3 + EPS)),
    # one just below low, the other at low: not *both* below low -> second branch
    (0.4 - EPS, 0.4, (0.3 - EPS, 0.3)),
    # both in [0.4, 0.6): 0.5 - (0.6 - c)
    (0.45, 0.45, (0.35, 0.35)),
    (0.41, 0.55, (0.31, 0.45)),
    (0.6 - EPS, 0.6 - EPS, (0.5 - EPS, 0.5 - EPS)),
    # one below low, the other in [0.4, 0.6): still the second branch (not both < 0.4)
    (0.3, 0.5, (0.2, 0.4)),
    # exactly at high counts as confident
    (0.6, 0.6, (0.5, 0.5)),
    (0.6 + EPS, 0.6 + EPS, (0.5, 0.5)),
    (0.9, 0.99, (0.5, 0.5)),
    # only teacher 1 below high -> (0.3, 0.7); only teacher 2 -> (0.7, 0.3)
    (0.6 - EPS, 0.6, (0.3, 0.7)),
    (0.6, 0.6 - EPS, (0.7, 0.3)),
    (0.2, 0.95, (0.3, 0.7)),   # even a teacher below low is only demoted when the other is confident
    (0.95, 0.1, (0.7, 0.3)),
])
def test_dynamic_weights_thresholds(c1, c2, expected):
    a, b = dynamic_weights(c1, c2)
    assert a == pytest.approx(expected[0], abs=1e-12)
    assert b == pytest.approx(expected[1], abs=1e-12)


def test_dynamic_weights_floor_binds_with_default_thresholds():
    # 0.5 - (0.6 - c) < 0.1  iff  c < 0.2. With the defaults that is reachable in the
    # "both below 0.6" branch when one teacher is below 0.2 while the other is in [0.4, 0.6)
    # (not *both* below 0.4); it can never bind when both confidences are >= 0.2.
    assert dynamic_weights(0.15, 0.45) == pytest.approx((0.1, 0.35))
    assert dynamic_weights(0.2, 0.45) == pytest.approx((0.1, 0.35))       # exactly at the kink
    assert dynamic_weights(0.21, 0.45) == pytest.approx((0.11, 0.35))     # just above: unclipped
    assert dynamic_weights(0.19, 0.45) == pytest.approx((0.1, 0.35))      # just below: clipped
    assert dynamic_weights(0.5, 0.1) == pytest.approx((0.4, 0.1))


def test_dynamic_weights_floor_with_low_zero():
    # low=0 disables the "ignore both" branch, so the floor is what protects low confidences.
    assert dynamic_weights(0.05, 0.1, low=0.0) == pytest.approx((0.1, 0.1))
    assert dynamic_weights(0.19, 0.21, low=0.0) == pytest.approx((0.1, 0.11))
    assert dynamic_weights(0.05, 0.1, low=0.0, floor=0.0) == pytest.approx((0.0, 0.0))
    assert dynamic_weights(0.05, 0.1, low=0.0, floor=0.05) == pytest.approx((0.05, 0.05))
    # default low: the same confidences are "both below low" -> both ignored
    assert dynamic_weights(0.05, 0.1) == (0.0, 0.0)


# ----------------------------------------------------------------------------------------
# K-teacher generalization
# ----------------------------------------------------------------------------------------

def _grid():
    pts = [0.0, 0.1, 0.15, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.8, 1.0]
    pts += [math.nextafter(0.4, 0), math.nextafter(0.4, 1), math.nextafter(0.6, 0), math.nextafter(0.6, 1),
            math.nextafter(0.2, 0), math.nextafter(0.2, 1)]
    return sorted(set(pts))


@pytest.mark.parametrize("params", [dict(), dict(low=0.0), dict(low=0.3, high=0.7, floor=0.2), dict(floor=0.0)])
def test_teacher_weights_reduce_exactly_to_paper_for_two_teachers(params):
    for c1 in _grid():
        for c2 in _grid():
            assert teacher_weights([c1, c2], **params) == dynamic_weights(c1, c2, **params), (c1, c2)


def test_teacher_weights_three_teachers_by_hand():
    # all confident -> 1/3 each
    assert teacher_weights([0.7, 0.8, 0.9]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    # one unconfident: 0.6/3 = 0.2; the two confident share 1 - 0.2 -> 0.4 each
    assert teacher_weights([0.7, 0.5, 0.9]) == pytest.approx((0.4, 0.2, 0.4))
    # two unconfident (0.2 each) -> the confident one gets 1 - 0.4 = 0.6
    assert teacher_weights([0.1, 0.5, 0.9]) == pytest.approx((0.2, 0.2, 0.6))
    # all below high: (2/3) * max(0.5 - (0.6 - c), 0.1)
    assert teacher_weights([0.45, 0.55, 0.1]) == pytest.approx((2 / 3 * 0.35, 2 / 3 * 0.45, 2 / 3 * 0.1))
    # all below low -> zeros
    assert teacher_weights([0.3, 0.2, 0.39]) == (0.0, 0.0, 0.0)


def test_teacher_weights_properties_many_teachers():
    rng = np.random.default_rng(0)
    for _ in range(200):
        k = int(rng.integers(1, 7))
        confs = rng.uniform(0.1, 1.0, size=k).tolist()
        w = teacher_weights(confs)
        assert len(w) == k and all(x >= 0 for x in w)
        if any(c >= 0.6 for c in confs):
            assert sum(w) == pytest.approx(1.0)
            # a confident teacher never gets less than an unconfident one
            assert min(x for x, c in zip(w, confs) if c >= 0.6) >= max([x for x, c in zip(w, confs) if c < 0.6],
                                                                        default=0.0)
        else:
            assert sum(w) < 1.0


def test_teacher_weights_single_teacher():
    assert teacher_weights([0.9]) == (1.0,)                        # Hinton KD, alpha 0.5 in the loss
    assert teacher_weights([0.5]) == pytest.approx((0.8,))          # 2 * (0.5 - 0.1)
    assert teacher_weights([0.3]) == (0.0,)
    with pytest.raises(EOEdgeError):
        teacher_weights([])


# ----------------------------------------------------------------------------------------
# Loss against independent numpy computations
# ----------------------------------------------------------------------------------------

T = 5.0
LABELS = np.array([0, 2, 1])
STUDENT = np.array([[1.0, -0.5, 0.3], [0.2, 0.1, 2.0], [-1.0, 0.7, 0.0]])
# Teacher 1: confident (max tempered prob ~0.79 for a logit gap of 10 at T=5).
TEACHER1 = np.array([[10.0, 0.0, 0.0], [0.0, 0.0, 10.0], [0.0, 10.0, 0.0]])
# Teacher 2: images 0 and 1 fairly confident, image 2 uniform (max prob 1/3).
TEACHER2 = np.array([[8.0, 0.0, 0.0], [0.0, 1.0, 7.0], [0.0, 0.0, 0.0]])


def np_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def np_terms(student, teachers, labels, temp):
    """Per-image CE (N,), per-image KL (N, K) and per-image teacher confidences (N, K), numpy float64."""
    q = np_softmax(student / temp)
    p_hard = np_softmax(student)
    ce = -np.log(p_hard[np.arange(len(labels)), labels])
    kls, confs = [], []
    for z in teachers:
        p = np_softmax(z / temp)
        kls.append((p * (np.log(p) - np.log(q))).sum(axis=1))
        confs.append(p.max(axis=1))
    return ce, np.stack(kls, axis=1), np.stack(confs, axis=1)


def as_t(x, grad=False):
    return torch.tensor(x, dtype=torch.float32, requires_grad=grad)


def test_teacher_confidence_matches_numpy():
    expected = np_softmax(TEACHER2 / T).max(axis=1)
    got = teacher_confidence(as_t(TEACHER2), T)
    assert got.dim() == 0
    assert float(got) == pytest.approx(expected.mean(), rel=1e-6)
    assert teacher_confidence(as_t(TEACHER2), T, reduce=False).numpy() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(EOEdgeError):
        teacher_confidence(as_t(TEACHER2[0]), T)


def test_batch_weighting_matches_hand_computation():
    ce, kl, conf = np_terms(STUDENT, [TEACHER1, TEACHER2], LABELS, T)
    c1, c2 = conf.mean(axis=0)
    # by construction: teacher 1 confident, teacher 2 in [0.4, 0.6) -> the paper's (0.7, 0.3)
    assert c1 >= 0.6 and 0.4 <= c2 < 0.6
    a, b = 0.7, 0.3
    lam = (a + b) / 2
    expected = (1 - lam) * ce.mean() + lam * T ** 2 * (a * kl[:, 0].mean() + b * kl[:, 1].mean())

    loss_fn = DualTeacherKDLoss(temperature=T, weighting="batch")
    got = loss_fn(as_t(STUDENT), [as_t(TEACHER1), as_t(TEACHER2)], torch.tensor(LABELS))
    assert got.dim() == 0
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert loss_fn.last_confidences == pytest.approx((c1, c2), rel=1e-6)
    assert loss_fn.last_weights == pytest.approx((a, b))
    assert loss_fn.last_kd_share == pytest.approx(lam)
    assert loss_fn.last_ce == pytest.approx(ce.mean(), rel=1e-5)


def test_batch_weighting_both_uncertain_branch():
    # Both teachers softened into [0.4, 0.6): weights 0.5 - (0.6 - c_k), KD share (a + b) / 2 < 0.5.
    t1 = np.array([[4.0, 0.0, 0.0], [0.0, 0.0, 5.0], [0.0, 4.0, 0.0]])
    t2 = np.array([[5.0, 0.0, 0.0], [0.0, 0.0, 4.0], [0.0, 3.0, 0.0]])
    ce, kl, conf = np_terms(STUDENT, [t1, t2], LABELS, T)
    c1, c2 = conf.mean(axis=0)
    assert 0.4 <= c1 < 0.6 and 0.4 <= c2 < 0.6
    a, b = 0.5 - (0.6 - c1), 0.5 - (0.6 - c2)
    expected = (1 - (a + b) / 2) * ce.mean() + (a + b) / 2 * T ** 2 * (a * kl[:, 0].mean() + b * kl[:, 1].mean())
    loss_fn = DualTeacherKDLoss(temperature=T)
    got = loss_fn(as_t(STUDENT), [as_t(t1), as_t(t2)], torch.tensor(LABELS))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert loss_fn.last_weights == pytest.approx((a, b), rel=1e-5)


def test_batch_weighting_both_below_low_is_plain_cross_entropy():
    flat = np.zeros((3, 3))
    ce, _, _ = np_terms(STUDENT, [flat], LABELS, T)
    loss_fn = DualTeacherKDLoss(temperature=T)
    got = loss_fn(as_t(STUDENT), [as_t(flat), as_t(flat + 1.0)], torch.tensor(LABELS))
    assert float(got) == pytest.approx(ce.mean(), rel=1e-6)
    assert loss_fn.last_weights == (0.0, 0.0)


def test_sample_weighting_matches_hand_computation():
    ce, kl, conf = np_terms(STUDENT, [TEACHER1, TEACHER2], LABELS, T)
    # per-image rule: images 0 and 1 -> both teachers >= 0.6 (0.5, 0.5);
    # image 2 -> teacher 2 is uniform (1/3 < 0.4) but teacher 1 is confident -> (0.7, 0.3)
    assert (conf[:2] >= 0.6).all() and conf[2, 0] >= 0.6 and conf[2, 1] < 0.4
    w = np.array([[0.5, 0.5], [0.5, 0.5], [0.7, 0.3]])
    lam = w.sum(axis=1) / 2
    per_image = (1 - lam) * ce + lam * T ** 2 * (w * kl).sum(axis=1)
    expected = per_image.mean()

    loss_fn = DualTeacherKDLoss(temperature=T, weighting="sample")
    got = loss_fn(as_t(STUDENT), [as_t(TEACHER1), as_t(TEACHER2)], torch.tensor(LABELS))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert loss_fn.last_sample_weights.numpy() == pytest.approx(w)
    assert loss_fn.last_weights == pytest.approx(tuple(w.mean(axis=0)))
    assert loss_fn.last_confidences == pytest.approx(tuple(conf.mean(axis=0)), rel=1e-6)
    # the batch rule would have demoted teacher 2 for every image: the two modes differ here
    batch = DualTeacherKDLoss(temperature=T, weighting="batch")(
        as_t(STUDENT), [as_t(TEACHER1), as_t(TEACHER2)], torch.tensor(LABELS))
    assert float(batch) != pytest.approx(expected, rel=1e-5)


def test_sample_equals_batch_when_every_image_gets_the_same_weights():
    rows = np.array([[9.0, 0.0, 0.0, 1.0]])
    t1 = np.repeat(rows, 4, axis=0)
    t2 = np.repeat(np.array([[0.0, 8.0, 0.0, 0.0]]), 4, axis=0)
    student = np.arange(16, dtype=float).reshape(4, 4) / 7.0
    labels = torch.tensor([0, 1, 2, 3])
    a = DualTeacherKDLoss(T, "sample")(as_t(student), [as_t(t1), as_t(t2)], labels)
    b = DualTeacherKDLoss(T, "batch")(as_t(student), [as_t(t1), as_t(t2)], labels)
    assert float(a) == pytest.approx(float(b), rel=1e-6)


def test_static_weighting_matches_hand_computation():
    ce, kl, _ = np_terms(STUDENT, [TEACHER1, TEACHER2], LABELS, T)
    expected = 0.5 * ce.mean() + 0.5 * T ** 2 * (0.5 * kl[:, 0].mean() + 0.5 * kl[:, 1].mean())
    loss_fn = DualTeacherKDLoss(temperature=T, weighting="static")
    got = loss_fn(as_t(STUDENT), [as_t(TEACHER1), as_t(TEACHER2)], torch.tensor(LABELS))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert loss_fn.last_weights == (0.5, 0.5)


def test_kl_term_is_torch_batchmean_kl_div():
    # The docstring's reference formula, computed with torch's own batchmean KL.
    s, t1, t2 = as_t(STUDENT), as_t(TEACHER1), as_t(TEACHER2)
    y = torch.tensor(LABELS)
    log_q = F.log_softmax(s / T, dim=1)
    kl1 = F.kl_div(log_q, F.softmax(t1 / T, dim=1), reduction="batchmean")
    kl2 = F.kl_div(log_q, F.softmax(t2 / T, dim=1), reduction="batchmean")
    expected = 0.5 * F.cross_entropy(s, y) + 0.5 * T ** 2 * (0.7 * kl1 + 0.3 * kl2)   # weights (0.7, 0.3)
    got = DualTeacherKDLoss(T)(s, [t1, t2], y)
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


def test_three_teachers_batch_mode():
    t3 = np.array([[0.0, 0.0, 4.0], [4.0, 0.0, 0.0], [0.0, 0.0, 4.0]])   # c in [0.4, 0.6): unconfident
    ce, kl, conf = np_terms(STUDENT, [TEACHER1, TEACHER2, t3], LABELS, T)
    c = conf.mean(axis=0)
    assert c[0] >= 0.6 and c[1] < 0.6 and c[2] < 0.6
    w = np.array([1 - 2 * 0.2, 0.2, 0.2])                                  # 0.6/K = 0.2 each unconfident
    lam = w.sum() / 2
    expected = (1 - lam) * ce.mean() + lam * T ** 2 * (w * kl.mean(axis=0)).sum()
    loss_fn = DualTeacherKDLoss(T)
    got = loss_fn(as_t(STUDENT), [as_t(TEACHER1), as_t(TEACHER2), as_t(t3)], torch.tensor(LABELS))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert loss_fn.last_weights == pytest.approx(tuple(w))


def test_gradient_reaches_the_student_only():
    s = as_t(STUDENT, grad=True)
    t1, t2 = as_t(TEACHER1, grad=True), as_t(TEACHER2, grad=True)
    for mode in ("batch", "sample", "static"):
        s.grad = None
        loss = DualTeacherKDLoss(T, mode)(s, [t1, t2], torch.tensor(LABELS))
        loss.backward()
        assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
        assert t1.grad is None and t2.grad is None
    # gradient agrees with a finite difference of the numpy loss (batch mode, fixed weights)
    s.grad = None
    DualTeacherKDLoss(T)(s, [t1, t2], torch.tensor(LABELS)).backward()

    def np_loss(student):
        ce, kl, _ = np_terms(student, [TEACHER1, TEACHER2], LABELS, T)
        return 0.5 * ce.mean() + 0.5 * T ** 2 * (0.7 * kl[:, 0].mean() + 0.3 * kl[:, 1].mean())

    h, i, j = 1e-6, 1, 2
    plus, minus = STUDENT.copy(), STUDENT.copy()
    plus[i, j] += h
    minus[i, j] -= h
    assert float(s.grad[i, j]) == pytest.approx((np_loss(plus) - np_loss(minus)) / (2 * h), rel=1e-3)


def test_half_precision_logits_are_accepted():
    loss = DualTeacherKDLoss(T)(as_t(STUDENT).half(), [as_t(TEACHER1).half(), as_t(TEACHER2).half()],
                                torch.tensor(LABELS))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_errors_are_one_line_eoedge_errors():
    s, y = as_t(STUDENT), torch.tensor(LABELS)
    bad_calls = [
        lambda: DualTeacherKDLoss(weighting="median"),
        lambda: DualTeacherKDLoss(temperature=0),
        lambda: DualTeacherKDLoss(low=0.7, high=0.6),
        lambda: DualTeacherKDLoss()(s, [as_t(TEACHER1), as_t(TEACHER2[:, :2])], y),
        lambda: DualTeacherKDLoss()(s, [as_t(TEACHER1[:2])], y),
        lambda: DualTeacherKDLoss()(s, [], y),
        lambda: DualTeacherKDLoss()(s[0], [as_t(TEACHER1)], y),
        lambda: DualTeacherKDLoss()(s, [as_t(TEACHER1)], y[:2]),
        lambda: DualTeacherKDLoss()(s, [as_t(TEACHER1)], y.to(torch.int32)),
        lambda: DualTeacherKDLoss()(s, [as_t(TEACHER1)], torch.tensor([0, 1, 3])),
        lambda: DualTeacherKDLoss()(s, [torch.ones(3, 3, dtype=torch.int64)], y),
    ]
    for call in bad_calls:
        with pytest.raises(EOEdgeError) as info:
            call()
        assert "\n" not in str(info.value) and str(info.value)


def test_rule_branches_name_the_branch_dynamic_weights_takes():
    """For two teachers, the logged branch is the branch of the paper's rule that set the weights."""
    import torch

    from eo_edge.train.distill import BRANCHES, dynamic_weights, rule_branches

    g = torch.Generator().manual_seed(0)
    conf = torch.rand(2000, 2, generator=g, dtype=torch.float64) * 0.9 + 0.1
    conf[:8] = torch.tensor([[0.4, 0.4], [0.6, 0.6], [0.39, 0.39], [0.6, 0.59], [0.59, 0.6], [0.2, 0.5],
                             [0.1, 0.1], [0.9, 0.3]], dtype=torch.float64)  # edges: strict < everywhere
    br = rule_branches(conf)
    for (c1, c2), b in zip(conf.tolist(), br.tolist()):
        a, w = dynamic_weights(c1, c2)
        expect = ("all_below_low" if (a, w) == (0.0, 0.0) and c1 < 0.4 and c2 < 0.4 else
                  "all_confident" if c1 >= 0.6 and c2 >= 0.6 else
                  "some_confident" if (a, w) in ((0.3, 0.7), (0.7, 0.3)) else "all_below_high")
        assert BRANCHES[b] == expect, (c1, c2, a, w)
    assert set(br.tolist()) == {0, 1, 2, 3}
