"""Bit-flip fault injection in the stored weights of an ONNX model (single-event upsets).

A single-event upset (SEU) is a bit of memory flipped by one ionising particle (heavy ion or
proton; JEDEC JESD89, "Measurement and Reporting of Alpha Particle and Terrestrial Cosmic
Ray-Induced Soft Errors in Semiconductor Devices"); on a satellite's payload computer the
weights of a classifier sit in such memory. This module flips ``k`` chosen bits of the
*stored* weight tensors of an ONNX file, rebuilds an ONNX Runtime session from the modified
bytes and measures top-1, so one can see how each storage precision degrades.

What is flipped (:func:`find_weights`):

* float files: the float32 / float16 initializers that are the weight or bias inputs of
  ``Conv`` / ``Gemm`` (inputs 1, 2) or an input of ``MatMul``;
* QDQ INT8 files: the int8 / uint8 initializers fed to ``DequantizeLinear`` as ``x`` (input 0),
  i.e. the stored quantized weights. Their scales and zero points are never flipped, nor are
  activation scales/zero points; float biases left unquantized are listed as not flipped.

Bit layouts (bit 0 = least significant bit of the element's unsigned view):

* float32 (IEEE 754-2019 binary32): sign bit 31, exponent bits 30..23 (8 bits, bias 127),
  mantissa (trailing significand) bits 22..0;
* float16 (IEEE 754-2019 binary16): sign bit 15, exponent bits 14..10 (5 bits, bias 15),
  mantissa bits 9..0;
* int8 / uint8: MSB = bit 7 (the sign bit of two's-complement int8: ``3 -> -125``, change
  -128 x scale), LSB = bit 0 (change +-1 x scale).

Every class also has ``any`` (all bits of the element). Positions are sampled uniformly over
all elements of the targeted tensors with a :class:`numpy.random.Generator` (distinct
elements, so ``k`` flips never cancel), then a bit uniformly from the class.

Activation faults (a bit flipped in a Conv output at run time) are not implemented: ONNX has
no bit-cast operator, so it would need a custom op or a value-level emulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import EOEdgeError

#: Bits of each position class, per stored dtype (bit 0 = LSB of the unsigned view).
BIT_CLASSES: dict[str, dict[str, tuple[int, ...]]] = {
    "float32": {"sign": (31,), "exponent": tuple(range(23, 31)), "mantissa": tuple(range(0, 23)),
                "any": tuple(range(32))},
    "float16": {"sign": (15,), "exponent": tuple(range(10, 15)), "mantissa": tuple(range(0, 10)),
                "any": tuple(range(16))},
    "int8": {"msb": (7,), "lsb": (0,), "any": tuple(range(8))},
    "uint8": {"msb": (7,), "lsb": (0,), "any": tuple(range(8))},
}
#: Every class name, in table order.
ALL_CLASSES = ("sign", "exponent", "mantissa", "msb", "lsb", "any")
_UINT = {"float32": np.uint32, "float16": np.uint16, "int8": np.uint8, "uint8": np.uint8}
#: Which stored dtypes are the weights of each eo-edge precision (``eo_edge.precision`` metadata).
PRECISION_DTYPES = {"fp32": ("float32",), "fp16": ("float16",), "int8": ("int8", "uint8")}


def bit_classes(dtype: str | np.dtype) -> dict[str, tuple[int, ...]]:
    """The position classes of ``dtype`` (``float32``, ``float16``, ``int8``, ``uint8``) and their bits.

    Raises:
        EOEdgeError: a dtype with no bit layout here.
    """
    name = np.dtype(dtype).name
    if name not in BIT_CLASSES:
        raise EOEdgeError(f"no bit layout for {name} tensors; eo-edge flips float32, float16, int8 and uint8")
    return BIT_CLASSES[name]


def flip_bits(arr: np.ndarray, flat_index: Sequence[int] | np.ndarray, bits: Sequence[int] | np.ndarray) -> np.ndarray:
    """A copy of ``arr`` with bit ``bits[i]`` of element ``flat_index[i]`` flipped (XOR), for each i.

    Args:
        arr: float32, float16, int8 or uint8 array of any shape.
        flat_index: indices into ``arr.ravel()`` (C order).
        bits: bit numbers, 0 = least significant bit of the element's unsigned view
            (float32 0..31, float16 0..15, int8/uint8 0..7).

    Returns:
        an array of the same dtype and shape; ``arr`` is not modified.

    Raises:
        EOEdgeError: unsupported dtype, a bit outside the element, an index out of range, or
            ``flat_index`` and ``bits`` of different lengths.
    """
    bit_classes(arr.dtype)
    idx = np.asarray(flat_index, dtype=np.int64).ravel()
    b = np.asarray(bits, dtype=np.int64).ravel()
    width = arr.dtype.itemsize * 8
    if idx.shape != b.shape:
        raise EOEdgeError(f"{len(idx)} positions but {len(b)} bits")
    if len(b) and (b.min() < 0 or b.max() >= width):
        raise EOEdgeError(f"bit {int(b.max() if b.max() >= width else b.min())} is outside a {width}-bit {arr.dtype} element")
    if len(idx) and (idx.min() < 0 or idx.max() >= arr.size):
        raise EOEdgeError(f"element {int(idx.max())} is outside a tensor of {arr.size} elements")
    out = np.array(arr, copy=True, order="C")
    u = out.reshape(-1).view(_UINT[arr.dtype.name])
    ut = u.dtype.type
    for i, bit in zip(idx, b):  # a loop: an element may (in a hand-made call) appear twice
        u[i] ^= ut(1 << int(bit))
    return out


@dataclass
class WeightTensor:
    """One flippable stored tensor.

    Attributes:
        name: initializer name.
        index: its position in ``graph.initializer``.
        array: its stored values (float32/float16/int8/uint8), any shape.
        consumer: ``"Conv.W"``, ``"Conv.B"``, ``"Gemm.B"``, ``"MatMul"``, ``"DequantizeLinear.x"`` ...
        scale: for quantized weights, the float32 scale of the ``DequantizeLinear`` (scalar or per-axis), else None.
        axis: the quantization axis of a per-axis ``scale``.
    """

    name: str
    index: int
    array: np.ndarray
    consumer: str
    scale: np.ndarray | None = None
    axis: int = 1

    @property
    def dtype(self) -> str:
        return self.array.dtype.name

    def scale_of(self, flat_index: int) -> float:
        """Dequantization scale of one element (1.0 for float tensors)."""
        if self.scale is None:
            return 1.0
        if self.scale.size == 1:
            return float(self.scale.reshape(-1)[0])
        pos = np.unravel_index(int(flat_index), self.array.shape)[self.axis % self.array.ndim]
        return float(self.scale.reshape(-1)[pos])

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.array.shape), "n_elements": int(self.array.size),
                "consumer": self.consumer}


_FLOAT_ROLES = {"Conv": {1: "W", 2: "B"}, "ConvTranspose": {1: "W", 2: "B"}, "Gemm": {0: "A", 1: "B", 2: "C"},
                "MatMul": {0: "A", 1: "B"}}


def find_weights(model, dtypes: Iterable[str] | None = None) -> tuple[list[WeightTensor], list[dict[str, Any]]]:
    """The weight tensors of an ONNX model, and the initializers that are not flipped.

    Args:
        model: ``onnx.ModelProto``.
        dtypes: keep only weights stored in these dtypes (e.g. ``("int8", "uint8")``); None = all.

    Returns:
        ``(weights, not_flipped)``: the :class:`WeightTensor` s in initializer order, and
        ``[{"name", "dtype", "n_elements", "why"}]`` for every other initializer (scales, zero
        points, shapes, norm parameters, weights of other dtypes).
    """
    from onnx import numpy_helper

    g = model.graph
    roles: dict[str, str] = {}
    dq: dict[str, Any] = {}
    for n in g.node:
        if n.op_type in _FLOAT_ROLES:
            for j, x in enumerate(n.input):
                if j in _FLOAT_ROLES[n.op_type]:
                    roles.setdefault(x, f"{n.op_type}.{_FLOAT_ROLES[n.op_type][j]}")
        elif n.op_type == "DequantizeLinear" and n.input:
            dq.setdefault(n.input[0], n)
    inits = {t.name: t for t in g.initializer}
    keep = set(dtypes) if dtypes is not None else None
    weights, skipped = [], []
    for i, t in enumerate(g.initializer):
        arr = numpy_helper.to_array(t)
        dt = arr.dtype.name
        why = None
        if t.name in dq and dt in ("int8", "uint8"):
            node = dq[t.name]
            scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32) if node.input[1] in inits else None
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            w = WeightTensor(t.name, i, arr, "DequantizeLinear.x", scale, axis)
        elif t.name in roles and dt in ("float32", "float16"):
            w = WeightTensor(t.name, i, arr, roles[t.name])
        else:
            w = None
            why = "not a Conv/Gemm/MatMul weight or bias, nor a quantized weight (scale, zero point, shape, ...)"
        if w is not None and keep is not None and dt not in keep:
            w, why = None, f"a {w.consumer} weight stored as {dt}, not the file's weight dtype"
        if w is not None:
            weights.append(w)
        else:
            skipped.append({"name": t.name, "dtype": dt, "n_elements": int(arr.size), "why": why})
    return weights, skipped


def sample_positions(sizes: Sequence[int], k: int, bits: Sequence[int],
                     rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """``k`` distinct (tensor, element, bit) positions, elements uniform over all ``sum(sizes)``.

    Args:
        sizes: number of elements of each target tensor.
        k: flips wanted (1 <= k <= sum(sizes)).
        bits: the bits of the position class; each flip draws one uniformly.
        rng: e.g. ``numpy.random.default_rng(seed)``: the same generator state gives the same positions.

    Returns:
        ``[(tensor number, flat element index, bit)]``, sorted by tensor and element.

    Raises:
        EOEdgeError: ``k`` < 1 or more than the elements, or no bits.
    """
    total = int(np.sum(sizes))
    if not 1 <= k <= total:
        raise EOEdgeError(f"cannot flip {k} bits in {total} weight elements (k must be 1..{total})")
    if not len(bits):
        raise EOEdgeError("no bits to flip in this position class")
    flat = np.sort(rng.choice(total, size=k, replace=False))
    chosen = rng.choice(np.asarray(bits, dtype=np.int64), size=k, replace=True)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    t = np.searchsorted(starts, flat, side="right") - 1
    return [(int(ti), int(fi - starts[ti]), int(bi)) for ti, fi, bi in zip(t, flat, chosen)]


class FaultModel:
    """An ONNX model whose target weights can be flipped and re-serialized, trial after trial.

    Args:
        model: ``onnx.ModelProto`` (kept and restored after each :meth:`faulted_bytes`).
        dtypes: the weight dtypes to target (see :func:`find_weights`).

    Raises:
        EOEdgeError: the model has no weight of those dtypes.
    """

    def __init__(self, model, dtypes: Iterable[str] | None = None):
        self.model = model
        self.weights, self.not_flipped = find_weights(model, dtypes)
        if not self.weights:
            want = ", ".join(dtypes) if dtypes is not None else "float32/float16/int8/uint8"
            raise EOEdgeError(f"no {want} weight tensors (Conv/Gemm/MatMul or DequantizeLinear inputs) to flip")
        widths = {w.array.dtype.itemsize for w in self.weights}
        if len(widths) > 1:
            raise EOEdgeError(f"the weights mix {', '.join(self.dtypes())}: flip one storage dtype at a time")
        self.sizes = [int(w.array.size) for w in self.weights]
        self.n_elements = int(sum(self.sizes))

    def dtypes(self) -> list[str]:
        """The stored dtypes of the targets, in first-seen order."""
        return list(dict.fromkeys(w.dtype for w in self.weights))

    def classes(self) -> list[str]:
        """Position classes that every target dtype has (in :data:`ALL_CLASSES` order)."""
        common = set.intersection(*(set(bit_classes(d)) for d in self.dtypes()))
        return [c for c in ALL_CLASSES if c in common]

    def sample(self, k: int, cls: str, rng: np.random.Generator) -> list[tuple[int, int, int]]:
        """:func:`sample_positions` over all targets for position class ``cls``.

        Raises:
            EOEdgeError: ``cls`` is not a class of the targets' dtype, or ``k`` too large.
        """
        if cls not in self.classes():
            raise EOEdgeError(f"position class {cls!r} does not apply to {'/'.join(self.dtypes())} weights; "
                              f"choose {', '.join(self.classes())}")
        return sample_positions(self.sizes, k, bit_classes(self.dtypes()[0])[cls], rng)

    def flipped_arrays(self, positions: Sequence[tuple[int, int, int]]) -> dict[int, np.ndarray]:
        """``{tensor number: flipped copy}`` for the tensors touched by ``positions``."""
        by: dict[int, list[tuple[int, int]]] = {}
        for t, i, b in positions:
            by.setdefault(t, []).append((i, b))
        return {t: flip_bits(self.weights[t].array, [i for i, _ in ib], [b for _, b in ib]) for t, ib in by.items()}

    def effects(self, positions: Sequence[tuple[int, int, int]]) -> list[dict[str, Any]]:
        """What each flip did: ``[{"tensor", "index", "bit", "old", "new", "delta"}]``; values are
        dequantized (``q x scale``) for quantized weights; ``delta`` is ``new - old`` (inf/nan possible)."""
        out = []
        for t, i, b in positions:
            w = self.weights[t]
            old = w.array.reshape(-1)[i]
            new = flip_bits(w.array.reshape(-1)[i:i + 1], [0], [b])[0]
            s = w.scale_of(i)
            with np.errstate(all="ignore"):
                o, n = float(old) * s, float(new) * s
                out.append({"tensor": w.name, "index": i, "bit": b, "old": o, "new": n, "delta": n - o})
        return out

    def faulted_bytes(self, positions: Sequence[tuple[int, int, int]]) -> bytes:
        """The serialized model with ``positions`` flipped; the held model is left unchanged."""
        from onnx import numpy_helper

        inits = self.model.graph.initializer
        saved = {}
        try:
            for t, arr in self.flipped_arrays(positions).items():
                w = self.weights[t]
                saved[w.index] = type(inits[w.index])()
                saved[w.index].CopyFrom(inits[w.index])
                inits[w.index].CopyFrom(numpy_helper.from_array(arr, w.name))
            return self.model.SerializeToString()
        finally:
            for idx, proto in saved.items():
                inits[idx].CopyFrom(proto)


def session_from_bytes(data: bytes, threads: int | None = None):
    """An ONNX Runtime CPU session over serialized model bytes, with the options of
    :class:`eo_edge.backends.onnxruntime.OnnxRuntimeRunner` (``ORT_ENABLE_ALL``, ``threads`` intra-op).

    Raises:
        EOEdgeError: ONNX Runtime refuses the model (one line).
    """
    import onnxruntime as ort

    from ..backends.onnxruntime import session_options

    try:
        return ort.InferenceSession(data, session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own Fail/InvalidGraph types
        raise EOEdgeError(f"ONNX Runtime cannot load the model: {str(e).strip().splitlines()[0][:200]}") from None


def predict(session, batches: Sequence[np.ndarray]) -> np.ndarray:
    """Logits of ``session`` on preprocessed batches (float32 (B, C, S, S) each) -> float32 (N, classes)."""
    iname, oname = session.get_inputs()[0].name, session.get_outputs()[0].name
    fixed = session.get_inputs()[0].shape[0]
    out = []
    for x in batches:
        if isinstance(fixed, int) and fixed != len(x):  # a batch-1 export: image by image
            out += [session.run([oname], {iname: x[i:i + 1]})[0] for i in range(len(x))]
        else:
            out.append(session.run([oname], {iname: x})[0])
    return np.concatenate(out).astype(np.float32, copy=False)


def top1_pct(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent. A row holding a NaN has no prediction and counts as wrong
    (numpy's argmax would name the first NaN's class, i.e. "correct" for class 0); +-inf
    logits are ordinary values for argmax."""
    if not len(labels):
        return float("nan")
    ok = (logits.argmax(1) == labels) & ~np.isnan(logits).any(1)
    return float(100.0 * np.mean(ok))


@dataclass
class Trial:
    """One faulted run: ``top1`` (%), the largest |weight change| (dequantized units; inf when a
    flip made an inf/nan), the count of non-finite weights made, the % of images whose logits
    were not all finite, and (kept by :func:`run_campaign` for k = 1 only) each flip's effect
    (:meth:`FaultModel.effects`)."""

    repeat: int
    top1: float
    max_abs_delta: float
    n_nonfinite_weights: int
    nonfinite_logits_pct: float
    flips: list[dict[str, Any]] = field(default_factory=list)


def run_trial(fm: FaultModel, positions: Sequence[tuple[int, int, int]], batches: Sequence[np.ndarray],
              labels: np.ndarray, repeat: int, threads: int | None = None, keep_flips: bool = False) -> Trial:
    """Flip ``positions``, build a session from the bytes, measure top-1 on ``batches``/``labels``."""
    eff = fm.effects(positions)
    logits = predict(session_from_bytes(fm.faulted_bytes(positions), threads), batches)
    deltas = np.array([e["delta"] for e in eff], dtype=np.float64)
    nonfinite_w = sum(not np.isfinite(e["new"]) for e in eff)
    mad = float(np.max(np.abs(deltas))) if np.isfinite(deltas).all() else float("inf")
    bad = float(100.0 * np.mean(~np.isfinite(logits).all(1))) if len(logits) else 0.0
    return Trial(repeat, top1_pct(logits, labels), mad, int(nonfinite_w), bad, eff if keep_flips else [])


def trial_rng(seed: int, cls: str, k: int, repeat: int) -> np.random.Generator:
    """The generator of one trial: seeded by ``(seed, class, k, repeat)`` so a trial's positions do
    not depend on which other classes or k were run."""
    return np.random.default_rng([int(seed), ALL_CLASSES.index(cls), int(k), int(repeat)])


def summarize(trials: Sequence[Trial]) -> dict[str, float]:
    """``mean``, ``min`` (worst), ``max`` and ``std`` (population) of top-1 over the trials, in %."""
    t = np.array([x.top1 for x in trials], dtype=np.float64)
    return {"mean_top1": float(t.mean()), "min_top1": float(t.min()), "max_top1": float(t.max()),
            "std_top1": float(t.std())}


def run_campaign(fm: FaultModel, batches: Sequence[np.ndarray], labels: np.ndarray, ks: Sequence[int],
                 classes: Sequence[str], repeats: int, seed: int = 0, threads: int | None = None,
                 on_trial: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """The clean top-1 and, per (class, k), ``repeats`` faulted trials.

    Args:
        batches, labels: preprocessed images (float32 (B, C, S, S) batches) and int64 labels (N,)
            in the model's class order.
        ks: numbers of bits to flip per trial.
        classes: position classes (a subset of :meth:`FaultModel.classes`).
        on_trial: called with ``(class, k, repeat)`` after each trial (progress).

    Returns:
        ``{"clean_top1", "rows": [{"class", "bits", "k", "repeats", "mean_top1", "min_top1",
        "max_top1", "std_top1", "mean_drop", "worst_drop", "trials": [Trial as dict]}]}`` (top-1 in %).
    """
    from dataclasses import asdict

    clean = top1_pct(predict(session_from_bytes(fm.model.SerializeToString(), threads), batches), labels)
    rows = []
    for cls in classes:
        for k in ks:
            trials = []
            for r in range(repeats):
                pos = fm.sample(k, cls, trial_rng(seed, cls, k, r))
                trials.append(run_trial(fm, pos, batches, labels, r, threads, keep_flips=k == 1))
                if on_trial:
                    on_trial(cls, k, r)
            s = summarize(trials)
            rows.append({"class": cls, "bits": list(bit_classes(fm.dtypes()[0])[cls]), "k": int(k), "repeats": repeats,
                         **s, "mean_drop": clean - s["mean_top1"], "worst_drop": clean - s["min_top1"],
                         "trials": [asdict(t) for t in trials]})
    return {"clean_top1": clean, "rows": rows}
