#!/bin/bash
# Seed-major ablation driver: finished cells are skipped, so re-running resumes (an interrupted cell
# resumes from its last.pt). 1 torch thread per cell: on 2 cores two 1-thread jobs (this driver and
# another run) get more done than one 2-thread job (benchmarks/train_speed.json, threads 1 vs 2).
cd "$(dirname "$0")/../.."
T="--teacher models/resnet16_eurosat64.pt --teacher models/mobilevitv2_100_eurosat64.pt"
A="python3 benchmarks/ablation.py --data ../shared/data/EuroSAT.zip $T --epochs 8 --threads 1 --out benchmarks/ablation"
$A --students resnet8 --seeds 0 || exit 1
$A --students resnet8 --seeds 0,1 || exit 1
$A --students resnet8 --seeds 0,1,2 || exit 1
$A --students resnet8,resnet16 --seeds 0,1,2 --resnet16-seeds 0 || exit 1
echo ALLDONE
