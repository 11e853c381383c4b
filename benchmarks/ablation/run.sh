#!/bin/bash
# Seed-major ablation driver: finished cells are skipped, so re-running resumes (an interrupted cell
# resumes from its last.pt). torch default threads (2 here): measured on the 2-vCPU Xeon host, a ResNet8
# epoch took 67 s alone at 2 threads and 140 s at 1 thread beside another 1-thread run: no gain from pairing.
cd "$(dirname "$0")/../.."
T="--teacher models/resnet16_eurosat64.pt --teacher models/mobilevitv2_100_eurosat64.pt"
A="python3 benchmarks/ablation.py --data ../shared/data/EuroSAT.zip $T --epochs 8 --out benchmarks/ablation"
$A --students resnet8 --seeds 0 || exit 1
$A --students resnet8 --seeds 0,1 || exit 1
$A --students resnet8 --seeds 0,1,2 || exit 1
$A --students resnet8,resnet16 --seeds 0,1,2 --resnet16-seeds 0 || exit 1
echo ALLDONE
