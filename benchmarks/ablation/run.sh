#!/bin/bash
# Seed-major ablation driver: finished cells are skipped, so re-running resumes.
cd "$(dirname "$0")/../.."
T="--teacher models/resnet16_eurosat64.pt --teacher models/mobilevitv2_100_eurosat64.pt"
A="python3 benchmarks/ablation.py --data ../shared/data/EuroSAT.zip $T --epochs 8 --out benchmarks/ablation"
$A --students resnet8 --seeds 0 || exit 1
$A --students resnet8 --seeds 0,1 || exit 1
$A --students resnet8 --seeds 0,1,2 || exit 1
$A --students resnet8,resnet16 --seeds 0,1,2 --resnet16-seeds 0 || exit 1
echo ALLDONE
