"""Compare eo-edge's TensorRT-form INT8 files with NVIDIA ModelOpt's, node by node.

ModelOpt (``nvidia-modelopt[onnx]``, ``modelopt.onnx.quantization.quantize``) writes Q/DQ ONNX
"following TensorRT rules". It pulls onnxruntime-gpu and torch 2.15, which cannot share eo-edge's
environment, so this script runs in its own venv that sees ours (see benchmarks/README.md):

    python3 -m venv --system-site-packages /tmp/mo
    /tmp/mo/bin/pip install --no-deps nvidia-modelopt==0.47.0 polygraphy lief
    /tmp/mo/bin/python benchmarks/modelopt_compare.py --out benchmarks/modelopt_compare.json

For each shipped model it quantizes the FP32 ONNX with ModelOpt (int8, max calibration on the
same 256 shipped calibration images, CPU execution provider), then reports for both files: which
compute-node inputs are fed by a DequantizeLinear (Q/DQ placement), how weights and biases are
stored, the rule-table verdict per TensorRT target, and test top-1 on the committed split.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ["resnet8_eurosat64", "resnet16_eurosat64", "mobilevitv2_100_eurosat64"]


def placement(model) -> dict:
    """Q/DQ placement and storage of one QDQ model."""
    g = model.graph
    init = {i.name: i for i in g.initializer}
    dq_out = {n.output[0]: n for n in g.node if n.op_type == "DequantizeLinear"}
    q_out = {n.output[0]: n for n in g.node if n.op_type == "QuantizeLinear"}
    fed = set()
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for i, name in enumerate(n.input):
            if name in dq_out:
                fed.add(f"{n.name}:{i}")
    weights = Counter()
    for d in dq_out.values():
        src = d.input[0]
        if src in init:
            weights[f"DQ on {onnx.TensorProto.DataType.Name(init[src].data_type)} initializer"] += 1
        elif src in q_out and q_out[src].input[0] in init:
            weights["Q/DQ on float initializer"] += 1
    return {"n_quantize": len(q_out), "n_dequantize": len(dq_out), "fed_inputs": sorted(fed),
            "weight_storage": dict(weights),
            "ops_with_quantized_inputs": dict(Counter(k.split(":")[0].rsplit("/", 1)[-1].split("_")[0] for k in fed))}


def top1(path: Path, cfg_from: Path) -> float:
    from eo_edge.data import load_prepared
    from eo_edge.data.split import split_indices
    from eo_edge.metrics.evaluate import evaluate
    from eo_edge.artifact.onnx_meta import read_metadata, set_metadata
    from eo_edge.home import home_dir
    from eo_edge.app.loading import open_model

    m = onnx.load(str(path))
    if "config" not in read_metadata(m):  # ModelOpt's file: give it the parent's eo-edge metadata
        src = onnx.load(str(cfg_from))
        set_metadata(m, {p.key: p.value for p in src.metadata_props if p.key.startswith("eo_edge.")})
        set_metadata(m, {"eo_edge.precision": "int8", "eo_edge.int8_activations": "s8"})
        onnx.save(m, str(path))
    fn, cfg, _ = open_model(path)
    ds = load_prepared(home_dir(None) / "datasets" / "eurosat")
    sub = ds.subset(split_indices(ds, "test"))
    return evaluate(fn, sub, cfg.input_size, cfg.mean, cfg.std, cfg.class_names, batch_size=256, progress=False)["top1"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "modelopt_compare.json")
    ap.add_argument("--work", type=Path, default=Path("/tmp/modelopt-compare"))
    args = ap.parse_args()
    import modelopt
    from modelopt.onnx.quantization import quantize

    from eo_edge.assets import CALIBRATION_DIR
    from eo_edge.data.subsets import load_flat_images
    from eo_edge.data.transforms import preprocess
    from eo_edge.artifact.onnx_meta import read_metadata
    from eo_edge.artifact.config import ModelConfig
    from eo_edge.trt_rules import target_names
    from eo_edge.trt_rules.check import check_model

    args.work.mkdir(parents=True, exist_ok=True)
    imgs = load_flat_images(CALIBRATION_DIR, 256)[0]
    rows = []
    for name in MODELS:
        fp32 = ROOT / "models" / f"{name}.onnx"
        ours = ROOT / "models" / f"{name}.int8-minmax.onnx"
        cfg = ModelConfig.from_dict(read_metadata(fp32)["config"])
        x = preprocess(imgs, cfg.input_size, cfg.mean, cfg.std).astype(np.float32)
        mo = args.work / f"{name}.modelopt-int8.onnx"
        t0 = time.perf_counter()
        quantize(str(fp32), quantize_mode="int8", calibration_data=x, calibration_method="max",
                 output_path=str(mo), calibration_eps=["cpu"])
        secs = time.perf_counter() - t0
        row = {"model": name}
        for label, path in (("eo-edge", ours), ("modelopt", mo)):
            m = onnx.load(str(path))
            p = placement(m)
            p["violations"] = {t: len(check_model(m, t)) for t in target_names()}
            try:
                onnx.checker.check_model(m, full_check=True)
                p["onnx_checker"] = "ok"
            except Exception as e:  # noqa: BLE001
                p["onnx_checker"] = str(e).splitlines()[0][:200]
            p["test_top1"] = top1(path, fp32)
            row[label] = p
        a, b = set(row["eo-edge"].pop("fed_inputs")), set(row["modelopt"].pop("fed_inputs"))
        row["placement"] = {"both": len(a & b), "only_eo_edge": sorted(a - b), "only_modelopt": sorted(b - a)}
        row["modelopt"]["seconds"] = secs
        row["fp32_test_top1"] = top1(fp32, fp32)
        rows.append(row)
        print(name, json.dumps({k: v for k, v in row.items() if k != "placement"})[:400],
              "both", row["placement"]["both"], "only ours", len(row["placement"]["only_eo_edge"]),
              "only modelopt", len(row["placement"]["only_modelopt"]))
    out = {"command": "/tmp/mo/bin/python benchmarks/modelopt_compare.py", "modelopt": modelopt.__version__,
           "calibration": "256 shipped calibration images, max (ModelOpt) / MinMax (eo-edge)", "models": rows}
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
