#!/bin/bash
# Ship a finished train/distill run as models/NAME.* (issue 12, item 5): the checkpoint selected on
# validation, its ONNX, FP16, INT8-u8 and INT8-s8 files made and gated by eo-edge compile, test-split
# records under benchmarks/, the training record under benchmarks/kd/NAME/, and the temperature/keep
# threshold fitted on validation by eo-edge calibrate. The model card is written last (model_card.py);
# edit its prose sections by hand.
#   bash benchmarks/ship_student.sh RUN_DIR NAME "THE eo-edge COMMAND THAT TRAINED IT"
set -euo pipefail
cd "$(dirname "$0")/.."
run=$1 name=$2 cmd=$3
test -f "$run/best.pt" -a -f "$run/metrics.json" || { echo "error: $run has no finished run (best.pt, metrics.json)"; exit 1; }
m=models/$name
cp "$run/best.pt" "$m.pt.tmp" && mv "$m.pt.tmp" "$m.pt"
mkdir -p "benchmarks/kd/$name" && cp "$run/history.json" "$run/metrics.json" "benchmarks/kd/$name/"
eo-edge export "$m.pt" -o "$m.onnx" --json "benchmarks/export_$name.json" -q
eo-edge compile "$m.onnx" --fp16 --int8 --json "benchmarks/compile_$name.json" -q
eo-edge compile "$m.onnx" --int8 --activations s8 --auto-fallback --max-drop 0.2 --json "benchmarks/compile_${name}_s8.json" -q
eo-edge calibrate "$m.pt" --target-accuracy 99 --json "benchmarks/calibrate_$name.json"
for f in "$m.pt" "$m.onnx" "$m.fp16.onnx" "$m.int8-minmax-u8.onnx" "$m.int8-minmax.onnx"; do
  eo-edge eval "$f" --split test --json "benchmarks/eval_test_$(basename "$f").json" -q
done
python3 benchmarks/model_card.py "$run" "$m.md" --command "$cmd"
echo "shipped $m.* (now edit $m.md's prose, models/README.md and README's results)"
