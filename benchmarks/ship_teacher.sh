#!/bin/bash
# Ship a finished `eo-edge train` run as a distillation teacher, models/NAME.* (issue 12, item 2): the
# checkpoint selected on validation, stored with float16 weights (eo_edge.models.checkpoint.ship_checkpoint;
# teachers only produce logits, and the repository must stay under the device tool's 64 MiB), its confusion
# matrix, the training record under benchmarks/teachers/NAME/, a test-split record of the *shipped* file, and
# the model card (model_card.py; edit its prose by hand). Teachers get no ONNX: they never fly.
#   bash benchmarks/ship_teacher.sh RUN_DIR NAME "THE eo-edge COMMAND THAT TRAINED IT"
set -euo pipefail
cd "$(dirname "$0")/.."
run=$1 name=$2 cmd=$3
test -f "$run/best.pt" -a -f "$run/metrics.json" || { echo "error: $run has no finished run (best.pt, metrics.json)"; exit 1; }
m=models/$name
python3 -c "import json, sys; from eo_edge.models.checkpoint import ship_checkpoint as s; print(json.dumps(s(sys.argv[1], sys.argv[2])))" \
  "$run/best.pt" "$m.pt" > "benchmarks/teachers/ship_$name.json"
cp "$run/confusion.png" "$m.confusion.png"
mkdir -p "benchmarks/teachers/$name" && cp "$run/history.json" "$run/metrics.json" "benchmarks/teachers/$name/"
eo-edge eval "$m.pt" --split test --json "benchmarks/eval_test_$name.pt.json" -q
python3 - "$m" "$name" <<'PY'
import json, sys
m, name = sys.argv[1], sys.argv[2]
s = json.load(open(f"benchmarks/teachers/ship_{name}.json"))
e = json.load(open(f"benchmarks/eval_test_{name}.pt.json"))
t = e.get("test", e)
print(f"shipped {m}.pt: {s['bytes'] / 1e6:.1f} MB, weights {s['weights_dtype']} (largest rounding {s['max_abs_rounding']:.2e}); "
      f"shipped file on test: top-1 {t['top1']:.2f} %")
PY
echo "now: python3 benchmarks/model_card.py $run $m.md --command \"$cmd\" --extra ..., models/README.md, README"
