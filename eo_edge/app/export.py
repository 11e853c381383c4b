"""``eo-edge export`` as a use case: check the paths, pick the parity images from the model's own
data, export (:func:`eo_edge.export.export`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import EOEdgeError


def export_checkpoint(ckpt: Path, output: Path | None = None, *, img_size: int | None = None, opset: int = 17,
                      dynamic_batch: bool = True, preset: str | None = None, arch: str | None = None,
                      data: Path | None = None, parity_images: int = 512, json_out: Path | None = None,
                      home: Path | None = None, quiet: bool = False,
                      log: Callable[[str], None] = print) -> dict[str, Any]:
    """Export ``ckpt`` to one ONNX file (default ``./CKPT-STEM.onnx``) with a parity check against
    PyTorch on ``parity_images`` real images of the model's own data (0 = all).

    Returns:
        :func:`eo_edge.export.export`'s record plus ``output`` and ``parity_data`` (which images).

    Raises:
        EOEdgeError: a missing checkpoint, an output that is an input, parity data with other bands.
    """
    import numpy as np

    from ..data.resolve import measurement_data, model_dataset
    from ..export import export
    from ..fileio import check_not_input, check_out_dir
    from ..models.checkpoint import load_checkpoint

    if not ckpt.is_file():
        raise EOEdgeError(f"checkpoint not found: {ckpt}")
    output = check_out_dir(output or Path.cwd() / f"{ckpt.stem}.onnx")
    check_not_input(output, ckpt, what="-o")
    if json_out is not None:
        check_not_input(json_out, ckpt, output, what="--json")
    _, ccfg, _ = load_checkpoint(ckpt, arch=arch, preset=preset, img_size=img_size)  # its data: parity images
    pd, pinfo = measurement_data(data, home, not quiet, n=parity_images, log=log, dataset=model_dataset(ccfg))
    if pd.images.shape[-1] != ccfg.in_chans:
        raise EOEdgeError(f"parity data has {pd.images.shape[-1]} bands, {ckpt.name} takes {ccfg.in_chans}; pass --data "
                          "with the model's own data")
    rec = export(ckpt, output, img_size=img_size, opset=opset, dynamic_batch=dynamic_batch,
                 parity_images=np.asarray(pd.images), arch=arch, preset=preset)
    rec["parity_data"] = f"{pinfo['kind']} ({pinfo['n_images']} images)"
    rec["output"] = str(output)
    return rec
