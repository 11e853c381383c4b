"""Write a model card (Markdown) for a trained run folder from its metrics.json.

Usage: python benchmarks/model_card.py RUN_DIR models/NAME.md --command "eo-edge train ..." [--name NAME]
Every number in the card is read from RUN_DIR/metrics.json (written by `eo-edge train`/`distill`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--command", required=True)
    ap.add_argument("--name", default=None)
    ap.add_argument("--extra", default="", help="Markdown appended at the end (e.g. ONNX artifacts).")
    a = ap.parse_args()
    m = json.loads((a.run / "metrics.json").read_text())
    h = json.loads((a.run / "history.json").read_text())
    t = m["test"]
    o = m["options"]
    name = a.name or a.out.stem
    rows = "\n".join(f"| {c} | {r['accuracy']:.2f} | {r['precision']:.2f} | {r['f1']:.2f} | {r['support']} |"
                     for c, r in t["per_class"].items())
    curve = "\n".join(f"| {e['epoch']} | {e['train_loss']:.4f} | {e['val_top1']:.2f} |" for e in h)
    card = f"""# {name}

| | |
| --- | --- |
| architecture | `{m['arch']}` ({m['params']:,} trainable parameters) |
| input | {m['img_size']} x {m['img_size']} RGB, ImageNet mean/std, float32 NCHW (config stored in the checkpoint) |
| classes | EuroSAT RGB, 10, alphabetical (ImageFolder order) |
| data / split | `../shared/data/EuroSAT.zip` (sha256 be037fef...), committed split `{m['split']}`: train 18,900 / val 4,050 / test 4,050 |
| command | `{a.command}` |
| seed | {m['seed']} |
| epochs | {m['epochs']} (best on validation: epoch {m['best_epoch']}, val top-1 {m['best_val_top1']:.2f} %) |
| recipe | {'cross-entropy' if not o.get('teachers') else 'dual-teacher KD (' + o['weighting'] + ', T=' + str(o['temperature']) + ')'}, D4 flips/rotations, AdamW lr {o['lr']} wd {o['weight_decay']}, batch {o['batch_size']}, cosine after {o['warmup_epochs']} warm-up epoch |
| wall time | {m['wall_time_s'] / 60:.1f} min |
| hardware | {m['host']} ({m['device']}) |
| **test top-1** | **{t['top1']:.2f} %** on {t['n_images']} test images (selected on validation; the test split was used once) |
| macro precision / recall / F1 | {t['macro_precision']:.2f} / {t['macro_recall']:.2f} / {t['macro_f1']:.2f} % |

## Per class (test split)

| class | accuracy % | precision % | F1 % | support |
| --- | ---: | ---: | ---: | ---: |
{rows}

## Training curve

| epoch | train loss | val top-1 % |
| ---: | ---: | ---: |
{curve}

Licence: weights trained by the eo-edge developers on EuroSAT (MIT); same licence as eo-edge.
{a.extra}
"""
    a.out.write_text(card)
    print(a.out)


if __name__ == "__main__":
    main()
