#!/usr/bin/env bash
# The scene benchmark (issue 29): a Sentinel-2-tile-sized raster through the distilled ResNet8
# INT8 on OpenVINO (the fastest CPU backend here for INT8, benchmarks/x86-backends) at 2 threads,
# and MobileViTV2 FP32 on the same scene, one after the other; each run in its own process so its
# peak RSS is its own. Records: benchmarks/scene/*.json, summary benchmarks/scene/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
SCENE=${SCENE:-/tmp/eo-edge-s2-tile.tif}
[ -f "$SCENE" ] || python3 benchmarks/scene/make_scene.py "$SCENE"
for m in resnet8_kd_eurosat64.int8-minmax mobilevitv2_100_eurosat64; do
  eo-edge scene "$SCENE" --model "models/$m.onnx" --backend openvino --threads 2 --batch 256 \
    --out "/tmp/eo-edge-scene-$m" --json "benchmarks/scene/$m.json"
done
python3 benchmarks/scene/summary.py benchmarks/scene/*.json > benchmarks/scene/README.md
