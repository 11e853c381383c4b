"""Export a checkpoint to one self-contained, simplified, verified ONNX file.

Graph contract: input ``input`` float32 (N, C, S, S) (C = 3 for RGB, one per band), already normalised with the model's
mean/std (normalisation is NOT inside the graph; ``eo_edge.data.transforms.preprocess``
does it, with the mean/std stored in the file); output ``logits`` float32 (N, C).
The model config (class names, mean/std, input size), the source checkpoint's sha256 and
the eo-edge version are stored in ``metadata_props`` (key ``eo_edge.config`` etc.).

Steps: (1) replace every ``AdaptiveAvgPool2d`` whose bins are uniform at the export size by
the exactly equivalent ``AvgPool2d`` (ResNet8/16 at 64 px: 16x16 -> 3x3 is kernel 6,
stride 5), so the graph holds one AveragePool instead of the exporter's Gather/Reduce
expansion; (2) ``torch.onnx.export`` (TorchScript exporter at the requested opset; the
dynamo exporter as a fallback for ops the former refuses); (3) simplify with onnxsim,
falling back to onnxslim (the one that ran is recorded); (4) ``onnx.checker``; (5) parity
with PyTorch under ONNX Runtime on real test images (max |logit difference|, top-1
agreement).
"""

from __future__ import annotations

import io
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .artifact.onnx_meta import INPUT_NAME, OUTPUT_NAME, set_metadata
from .errors import EOEdgeError
from .fileio import atomic_path

SUPPORTED_OPSETS = range(13, 22)


def adaptive_pool_bins(n_in: int, n_out: int) -> tuple[int, int] | None:
    """(kernel, stride) of a plain pooling exactly equal to adaptive pooling ``n_in -> n_out``,
    or None when the adaptive bins are not uniform.

    PyTorch's adaptive pooling uses bins [floor(i n_in / n_out), ceil((i+1) n_in / n_out)).
    """
    starts = [math.floor(i * n_in / n_out) for i in range(n_out)]
    ends = [math.ceil((i + 1) * n_in / n_out) for i in range(n_out)]
    sizes = {e - s for s, e in zip(starts, ends)}
    strides = {b - a for a, b in zip(starts, starts[1:])} or {1}
    if len(sizes) != 1 or len(strides) != 1:
        return None
    k, s = sizes.pop(), strides.pop()
    return (k, s) if (n_in - k) // s + 1 == n_out else None


def pooling_matrix(n_in: int, n_out: int):
    """float32 (n_out, n_in) matrix whose row i averages PyTorch's adaptive bin i."""
    import torch

    m = torch.zeros(n_out, n_in)
    for i in range(n_out):
        s, e = math.floor(i * n_in / n_out), math.ceil((i + 1) * n_in / n_out)
        m[i, s:e] = 1.0 / (e - s)
    return m


def _matmul_pool(h: int, w: int, oh: int, ow: int):
    """An ``nn.Module`` equal to ``AdaptiveAvgPool2d((oh, ow))`` on (N, C, h, w) inputs, as two
    MatMuls with constant pooling matrices: ``P_h @ x @ P_w^T`` (exact for non-uniform bins)."""
    from torch import nn

    class _Pool(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("ph", pooling_matrix(h, oh))
            self.register_buffer("pwt", pooling_matrix(w, ow).t().contiguous())

        def forward(self, x):
            return self.ph @ x @ self.pwt

    return _Pool()


def replace_adaptive_pools(model, input_size: int, in_chans: int = 3) -> list[str]:
    """Swap ``AdaptiveAvgPool2d`` modules for exactly equivalent, compact ones, in place.

    Uniform bins (ResNet8/16 at 64 px: 16x16 -> 3x3) become ``AvgPool2d`` (one AveragePool
    node); non-uniform bins (at 224 px: 56x56 -> 3x3, bins of 19/20/19) become two MatMuls
    with constant averaging matrices instead of the exporters' per-bin slice expansion.

    Args:
        model: ``torch.nn.Module`` taking (1, 3, input_size, input_size).

    Returns:
        Names of the replaced modules, e.g. ``["avg_pool (16x16 -> 3x3: kernel 6, stride 5)"]``.
    """
    import torch
    from torch import nn

    shapes: dict[str, tuple[int, int]] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.AdaptiveAvgPool2d):
            hooks.append(mod.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(i[0].shape[-2:]))))
    with torch.no_grad():
        model(torch.zeros(1, in_chans, input_size, input_size))
    for h in hooks:
        h.remove()
    done = []
    for name, (h, w) in shapes.items():
        mod = model.get_submodule(name)
        out = mod.output_size if isinstance(mod.output_size, tuple) else (mod.output_size, mod.output_size)
        oh, ow = (h if out[0] is None else out[0]), (w if out[1] is None else out[1])
        bh, bw = adaptive_pool_bins(h, oh), adaptive_pool_bins(w, ow)
        parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        if bh and bw:
            setattr(parent, name.rsplit(".", 1)[-1], nn.AvgPool2d((bh[0], bw[0]), (bh[1], bw[1])))
            done.append(f"{name} ({h}x{w} -> {oh}x{ow}: AveragePool kernel {bh[0]}, stride {bh[1]})")
        elif (oh, ow) != (1, 1):
            setattr(parent, name.rsplit(".", 1)[-1], _matmul_pool(h, w, oh, ow))
            done.append(f"{name} ({h}x{w} -> {oh}x{ow}: non-uniform bins, 2 MatMuls with averaging matrices)")
    return done


import contextlib
import os


@contextlib.contextmanager
def _silence_fds():
    """Silence C-level stdout/stderr (the exporters print IR dumps and progress)."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    dn = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(dn, 1)
        os.dup2(dn, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, dn):
            os.close(fd)


def _torch_export(model, input_size: int, opset: int, dynamic_batch: bool, in_chans: int = 3) -> tuple[bytes, str]:
    with _silence_fds():
        return _torch_export_inner(model, input_size, opset, dynamic_batch, in_chans)


def _torch_export_inner(model, input_size: int, opset: int, dynamic_batch: bool, in_chans: int = 3) -> tuple[bytes, str]:
    import torch

    x = torch.zeros(1, in_chans, input_size, input_size)
    kw: dict[str, Any] = dict(input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            buf = io.BytesIO()
            torch.onnx.export(model, (x,), buf, dynamo=False, do_constant_folding=True,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None, **kw)
            return buf.getvalue(), "torchscript"
        except Exception as first:  # noqa: BLE001 - fall back to the dynamo exporter
            import tempfile

            try:
                with tempfile.TemporaryDirectory() as td:
                    p = os.path.join(td, "m.onnx")
                    shapes = {"x": {0: torch.export.Dim("batch", min=1, max=4096)}} if dynamic_batch else None
                    prog = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=shapes, **kw)
                    prog.save(p, external_data=False)
                    return open(p, "rb").read(), "dynamo"
            except Exception as second:  # noqa: BLE001
                raise EOEdgeError(f"ONNX export failed: {str(first).splitlines()[0][:150]} / "
                                  f"dynamo: {str(second).splitlines()[0][:150]}") from None


def simplify(model_proto) -> tuple[Any, str]:
    """Simplify an ``onnx.ModelProto`` with onnxsim, else onnxslim; returns (model, tool used).

    Source: onnxsim (daquexian/onnx-simplifier) ``simplify``; onnxslim ``slim``.
    """
    try:
        import onnxsim

        simp, ok = onnxsim.simplify(model_proto)
        if ok:
            return simp, f"onnxsim {getattr(onnxsim, '__version__', '?')}"
    except Exception:  # noqa: BLE001 - try the other simplifier
        pass
    try:
        import onnxslim

        return onnxslim.slim(model_proto), f"onnxslim {getattr(onnxslim, '__version__', '?')}"
    except Exception:  # noqa: BLE001
        return model_proto, "none"


def parity_check(model, onnx_bytes: bytes, x: np.ndarray) -> dict[str, float]:
    """Compare PyTorch and ONNX Runtime logits on the same preprocessed batch.

    Args:
        x: float32 (N, 3, S, S).

    Returns:
        :func:`eo_edge.metrics.logits.compare_logits` of PyTorch (reference) vs ONNX Runtime:
        ``max_abs_diff``, ``mean_abs_diff``, ``top1_agreement`` (percent), ``n_images``.
    """
    import onnxruntime as ort
    import torch

    from .metrics.logits import compare_logits

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])
    refs, gots = [], []
    with torch.inference_mode():
        for s in range(0, len(x), 128):
            xb = x[s:s + 128]
            refs.append(model(torch.from_numpy(xb)).numpy())
            gots.append(np.concatenate([sess.run([OUTPUT_NAME], {INPUT_NAME: xb[i:i + 1]})[0] for i in range(len(xb))])
                        if sess.get_inputs()[0].shape[0] == 1 else sess.run([OUTPUT_NAME], {INPUT_NAME: xb})[0])
    return compare_logits(np.concatenate(refs), np.concatenate(gots))


def export(ckpt: Path, out: Path, *, img_size: int | None = None, opset: int = 17, dynamic_batch: bool = True,
           parity_images: np.ndarray | None = None, arch: str | None = None, preset: str | None = None,
           simplify_graph: bool = True) -> dict[str, Any]:
    """Export ``ckpt`` to ``out`` (ONNX), simplified, checked and verified.

    Args:
        ckpt: eo-edge checkpoint or bare state_dict (see ``load_checkpoint``).
        out: output ``.onnx`` path (written atomically; its folder must exist).
        img_size: input size in pixels (default: the checkpoint's).
        opset: ONNX opset (13..21).
        dynamic_batch: batch dimension symbolic (``batch``) instead of 1.
        parity_images: (N, H, W, C) real images (the model's bands and dtype) for the PyTorch/ONNX
            Runtime parity check.

    Returns:
        A record: ``onnx``, ``nodes``, ``op_counts``, ``opset``, ``exporter``, ``simplifier``,
        ``replaced_pools``, ``parity`` (see :func:`parity_check`), ``size_mb``, ``seconds``.

    Raises:
        EOEdgeError: unsupported opset, unreadable checkpoint, failed export or check.
    """
    import onnx

    from .data.transforms import preprocess
    from .fileio import sha256_file
    from .models.checkpoint import load_checkpoint

    t0 = time.perf_counter()
    if opset not in SUPPORTED_OPSETS:
        raise EOEdgeError(f"unsupported opset {opset}; use {SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1}")
    model, cfg, info = load_checkpoint(ckpt, arch=arch, preset=preset, img_size=img_size)
    model.eval()
    n_params = int(sum(p.numel() for p in model.parameters() if p.requires_grad))
    replaced = replace_adaptive_pools(model, cfg.input_size, cfg.in_chans)
    raw, exporter = _torch_export(model, cfg.input_size, opset, dynamic_batch, cfg.in_chans)
    proto = onnx.load_from_string(raw)
    if simplify_graph:
        proto, simplifier = simplify(proto)
    else:
        simplifier = "none"
    actual_opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), opset)
    set_metadata(proto, {
        "eo_edge.config": cfg.to_dict(), "eo_edge.precision": "fp32", "eo_edge.source_sha256": info["sha256"],
        "eo_edge.source": Path(ckpt).name, "eo_edge.eo_edge_version": __version__,
        "eo_edge.input": "float32 NCHW, RGB in [0,1] normalised with config mean/std (not inside the graph)",
        "eo_edge.exporter": exporter, "eo_edge.simplifier": simplifier,
        # trainable parameters of the PyTorch model (the ONNX graph holds fewer numbers: BatchNorm is
        # folded into the convolutions' weights and biases)
        "eo_edge.params": n_params,
    })
    proto.producer_name, proto.producer_version = "eo-edge", __version__
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:  # noqa: BLE001
        raise EOEdgeError(f"exported graph fails onnx.checker: {str(e).splitlines()[0][:200]}") from None
    data = proto.SerializeToString()
    parity = None
    if parity_images is not None and len(parity_images):
        x = preprocess(np.asarray(parity_images), cfg.input_size, cfg.mean, cfg.std)
        parity = parity_check(model, data, x)
        set_metadata(proto, {"eo_edge.parity": parity})
        data = proto.SerializeToString()
    with atomic_path(out, suffix=".onnx") as tmp:
        tmp.write_bytes(data)
    ops: dict[str, int] = {}
    for n in proto.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return {"onnx": str(out), "arch": cfg.arch, "input_size": cfg.input_size, "nodes": len(proto.graph.node),
            "params": n_params,
            "op_counts": dict(sorted(ops.items())), "opset": actual_opset, "exporter": exporter,
            "simplifier": simplifier, "replaced_pools": replaced, "parity": parity,
            "size_mb": len(data) / 1e6, "sha256": sha256_file(out), "source_sha256": info["sha256"],
            "seconds": time.perf_counter() - t0, "dynamic_batch": dynamic_batch}
