"""Run ``eo-edge ARGS`` (under torchrun) and record, per rank, what the rank trained on and the
parameters it ended with; used by tests/test_ddp.py (not a test module itself).

    python -m torch.distributed.run ... tests/ddp_probe.py PROBE_DIR train --arch resnet8 ...

writes ``PROBE_DIR/rank<RANK>.pt``: ``{"batches": [sha256 of each training batch's uint8
images and D4 views], "params": {name: tensor}}`` (the in-memory model after the last epoch).
Nothing in eo_edge is changed: the two module-level functions train() looks up are wrapped.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import torch

import eo_edge.train.loop as train_mod
from eo_edge.cli import main

probe_dir = Path(sys.argv[1])
sys.argv = ["eo-edge", *sys.argv[2:]]
rank = int(os.environ.get("RANK", "0"))
batches: list[str] = []
models: list[torch.nn.Module] = []
_create_model, _to_model_input = train_mod.create_model, train_mod.to_model_input


def create_model(*args, **kwargs):
    model, cfg = _create_model(*args, **kwargs)
    models.append(model)
    return model, cfg


def to_model_input(x_uint8_nhwc, cfg, device, gen=None, tids=None):
    if tids is not None:  # a training batch (evaluation does not come through here)
        h = hashlib.sha256(x_uint8_nhwc.cpu().numpy().tobytes())
        h.update(tids.cpu().numpy().tobytes())
        batches.append(h.hexdigest())
    return _to_model_input(x_uint8_nhwc, cfg, device, gen=gen, tids=tids)


train_mod.create_model, train_mod.to_model_input = create_model, to_model_input
try:
    main()
finally:
    probe_dir.mkdir(parents=True, exist_ok=True)
    params = {n: p.detach().cpu().clone() for n, p in models[0].named_parameters()} if models else {}
    torch.save({"batches": batches, "params": params}, probe_dir / f"rank{rank}.pt")
