#!/bin/bash
# The paper's teacher pair (EfficientViT-M2 + MobileViTV2) on the main ablation's schedule (8 epochs, batch 128,
# AdamW 3e-3, 64 px students, T = 5; benchmarks/ablation/run.sh). The cross-entropy rows use no teacher, so they
# are read from benchmarks/ablation/runs (--ce-runs) and paired by seed. Finished cells are skipped: re-running
# resumes. The paper's per-batch rule first (3 seeds), then static KD, then per sample.
cd "$(dirname "$0")/../.."
T="--teacher models/efficientvit_m2_eurosat96.pt --teacher models/mobilevitv2_100_eurosat64.pt"
A="python3 benchmarks/ablation.py --data ../shared/data/EuroSAT.zip $T --epochs 8 --students resnet8 --ce-runs benchmarks/ablation/runs --out benchmarks/ablation-paper-pair"
$A --methods ce,batch --seeds 0,1,2 || exit 1
$A --methods ce,static,batch --seeds 0,1,2 || exit 1
$A --methods ce,static,batch,sample --seeds 0,1,2 || exit 1
echo ALLDONE
