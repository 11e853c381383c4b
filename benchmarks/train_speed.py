"""Training-step speed on this CPU: images/s per option, measured side by side in one run.

Each configuration runs the same training step as ``eo_edge.train`` (forward, cross-entropy,
backward, AdamW step) on real EuroSAT images at 64 px (EfficientViT-M2 also at 96 px),
``--warmup`` untimed steps then ``--steps`` timed ones. Configurations are interleaved
round-robin over ``--rounds`` rounds so machine drift hits every option alike; the reported
rate is the median over rounds, the speed-up is against the default (contiguous NCHW) layout
of the same model, threads and batch, within the same run.

Usage:
    python benchmarks/train_speed.py --data ../shared/data/EuroSAT.zip --out benchmarks/train_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path


def _step_fn(arch: str, img: int, layout: str, batch: int, images, labels):
    import torch
    import torch.nn.functional as F

    from eo_edge.train.d4 import to_model_input
    from eo_edge.models.registry import create_model

    torch.manual_seed(0)
    model, cfg = create_model(arch, input_size=img)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    model.to(memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    xb = torch.from_numpy(images[:batch])
    yb = torch.from_numpy(labels[:batch])
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        tids = torch.randint(0, 8, (batch,), generator=gen)
        x = to_model_input(xb, cfg, "cpu", tids=tids).contiguous(memory_format=fmt)
        loss = F.cross_entropy(model(x), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/EuroSAT.zip"))
    ap.add_argument("--models", default="resnet8,resnet16,mobilevitv2_100,efficientvit_m2")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per configuration and round")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/train_speed.json"))
    a = ap.parse_args()

    import numpy as np
    import torch

    from eo_edge.data.resolve import resolve_data
    from eo_edge.data.split import train_rows
    from eo_edge.hostinfo import cpu_name

    ds = resolve_data(a.data, None, progress=False)
    rows = train_rows(ds)[:512]
    images, labels = np.ascontiguousarray(ds.images[rows]), ds.labels[rows].astype(np.int64)
    configs = []
    for arch in a.models.split(","):
        sizes = (64, 96) if arch == "efficientvit_m2" else (64,)
        for img in sizes:
            for layout in ("contiguous", "channels_last"):
                configs.append({"arch": arch, "img_size": img, "layout": layout, "threads": 2, "batch": 128})
            configs.append({"arch": arch, "img_size": img, "layout": "channels_last", "threads": 1, "batch": 128})
            for b in (64, 256):
                configs.append({"arch": arch, "img_size": img, "layout": "channels_last", "threads": 2, "batch": b})
    fns = []
    for c in configs:
        torch.set_num_threads(c["threads"])
        fn = _step_fn(c["arch"], c["img_size"], c["layout"], c["batch"], images, labels)
        for _ in range(a.warmup):
            fn()
        fns.append(fn)
    rates: list[list[float]] = [[] for _ in configs]
    for r in range(a.rounds):
        for i, (c, fn) in enumerate(zip(configs, fns)):
            torch.set_num_threads(c["threads"])
            t0 = time.perf_counter()
            for _ in range(a.steps):
                fn()
            rates[i].append(c["batch"] * a.steps / (time.perf_counter() - t0))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr, flush=True)
    for c, rr in zip(configs, rates):
        c["images_per_s"] = statistics.median(rr)
        c["images_per_s_rounds"] = rr
    for c in configs:
        base = [d for d in configs if d["arch"] == c["arch"] and d["img_size"] == c["img_size"]
                and d["layout"] == "contiguous" and d["threads"] == c["threads"] and d["batch"] == c["batch"]]
        c["speedup_vs_contiguous"] = c["images_per_s"] / base[0]["images_per_s"] if base else None
    rec = {"schema": "eo-edge-train-speed/1", "command": "python " + shlex.join(sys.argv),
           "host": f"{cpu_name()}, {os.cpu_count()} logical CPUs", "torch": torch.__version__,
           "protocol": {"warmup_steps": a.warmup, "timed_steps": a.steps, "rounds": a.rounds, "interleaved": True,
                        "step": "forward + cross-entropy + backward + AdamW, D4 augmentation, real images"},
           "results": configs,
           "not_measured": {"torch.compile": "compiles for minutes per model on 2 cores before the first step; "
                            "similar speed to channels_last in the issue's pilot; not adopted"}}
    a.out.write_text(json.dumps(rec, indent=2) + "\n")
    print(f"{'model':18s} {'px':>4s} {'layout':14s} {'thr':>3s} {'batch':>5s} {'img/s':>8s} {'vs NCHW':>8s}")
    for c in configs:
        sp = "" if c["speedup_vs_contiguous"] is None else f"{c['speedup_vs_contiguous']:.2f}x"
        print(f"{c['arch']:18s} {c['img_size']:4d} {c['layout']:14s} {c['threads']:3d} {c['batch']:5d} "
              f"{c['images_per_s']:8.1f} {sp:>8s}")


if __name__ == "__main__":
    main()
