#!/bin/bash
# The paper's rule with thresholds that make the per-batch rule switch (benchmarks/ablation/rule_analysis.md:
# at T = 5 the batch-mean confidences of ResNet16 / MobileViTV2 lie in 0.489-0.552 / 0.422-0.476, so high = 0.45
# splits batches 54 / 46 % between "one teacher confident" and "both confident"; the paper's 0.6 never switches).
# Same teachers, schedule and seeds as benchmarks/ablation; the cross-entropy and static-KD rows use no threshold,
# so they are read from benchmarks/ablation/runs and paired by seed. The two dynamic rows run side by side at one
# thread each; finished cells are skipped, so re-running resumes.
cd "$(dirname "$0")/../.."
T="--teacher models/resnet16_eurosat64.pt --teacher models/mobilevitv2_100_eurosat64.pt"
A="python3 benchmarks/ablation.py --data ../shared/data/EuroSAT.zip $T --epochs 8 --students resnet8 --seeds 0,1,2 --ce-runs benchmarks/ablation/runs --static-runs benchmarks/ablation/runs --low 0.25 --high 0.45 --threads 1 --out benchmarks/ablation-thresholds"
$A --methods ce,static,batch > benchmarks/ablation-thresholds/batch.log 2>&1 &
$A --methods ce,static,sample > benchmarks/ablation-thresholds/sample.log 2>&1 &
wait
$A --methods ce,static,batch,sample --collect-only > /dev/null && echo ALLDONE
