"""The bad-input sweep as a table: each case is a command line, the bad input it builds, the
expected exit code and `error:` line, and the files that must be unchanged afterwards (sha256).

Cases run in a subprocess each, on small inputs (shipped models, a few real images), so the
whole table stays fast."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, assert_one_line_error, run_cli

R8 = ROOT / "models" / "resnet8_eurosat64"


def _setup(tmp: Path) -> dict[str, Path]:
    import pickle

    import numpy as np
    import onnx
    from PIL import Image

    f = {"onnx": tmp / "m.onnx", "pt": tmp / "c.pt", "link": tmp / "link.onnx", "cfg_int4": tmp / "int4.json",
         "two_in": tmp / "two_inputs.onnx", "one_ch": tmp / "one_channel.onnx", "bad_cfg": tmp / "bad_config.onnx",
         "rand": tmp / "random.pt", "pickle": tmp / "plain_pickle.pt"}
    shutil.copy(f"{R8}.onnx", f["onnx"])
    shutil.copy(f"{R8}.pt", f["pt"])
    f["link"].symlink_to(f["onnx"])
    f["cfg_int4"].write_text(json.dumps({"models": [str(f["onnx"])], "precisions": ["int4"]}))
    m = onnx.load(str(f["onnx"]))
    extra = onnx.helper.make_tensor_value_info("mask", onnx.TensorProto.FLOAT, ["batch", 1])
    m.graph.input.append(extra)
    onnx.save(m, str(f["two_in"]))
    m = onnx.load(str(f["onnx"]))
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 1
    onnx.save(m, str(f["one_ch"]))
    m = onnx.load(str(f["onnx"]))
    for prop in m.metadata_props:
        if prop.key == "eo_edge.config":
            prop.value = '{"arch": "resnet8", "input_size": "sixty-four"'
    onnx.save(m, str(f["bad_cfg"]))
    f["rand"].write_bytes(np.random.default_rng(0).bytes(4096))
    f["pickle"].write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=4))
    d16 = tmp / "png16"  # 16-bit PNGs: Pillow could only read them as 8-bit (TIFFs are read exactly)
    for cls in ("Forest", "River"):
        (d16 / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((64, 64), 3000 + i, np.uint16)).save(d16 / cls / f"{cls}_{i}.png")
    f.update({p.relative_to(tmp).as_posix(): p for p in sorted(d16.rglob("*.png"))})
    small = tmp / "small"  # 2 classes x 3 real images
    for cls in ("Forest", "River"):
        (small / cls).mkdir(parents=True)
        for img in sorted((ROOT / "calibration").glob(f"{cls}_*.jpg"))[:3]:
            shutil.copy(img, small / cls / img.name)
            f[f"small/{cls}/{img.name}"] = small / cls / img.name
    (tmp / "cache").mkdir()
    f["cache_manifest"] = tmp / "cache" / "manifest.json"
    f["cache_manifest"].write_text(json.dumps({"source": "/somewhere/else/EuroSAT.zip"}))
    f["bad_split"] = tmp / "split.csv"
    f["bad_split"].write_text("path,split\nForest/x.jpg,dev\n")
    f["old_int8"] = tmp / "m.int8-minmax.onnx"
    f["old_int8"].write_bytes(b"the previous, gated artifact")
    return f


# (id, argv with {placeholders}, expected exit code, needles of the error line)
CASES = [
    ("compile-o-is-input", ["compile", "{onnx}", "--fp16", "-o", "{onnx}"], 2, ["is the input"]),
    ("compile-o-symlink-to-input", ["compile", "{onnx}", "--int8", "-o", "{link}"], 2, ["is the input"]),
    ("compile-json-is-input", ["compile", "{onnx}", "--fp16", "--json", "{onnx}"], 2, ["is the input"]),
    ("export-o-is-input", ["export", "{pt}", "-o", "{pt}"], 2, ["is the input"]),
    ("export-json-is-input", ["export", "{pt}", "-o", "{tmp}/x.onnx", "--json", "{pt}"], 2, ["is the input"]),
    ("eval-json-is-input", ["eval", "{onnx}", "--json", "{onnx}"], 2, ["is the input"]),
    ("max-drop-nan", ["compile", "{onnx}", "--int8", "--max-drop", "nan"], 2, ["--max-drop must be a finite"]),
    ("max-drop-inf", ["compile", "{onnx}", "--int8", "--max-drop", "inf"], 2, ["--max-drop must be a finite"]),
    ("max-drop-negative", ["compile", "{onnx}", "--int8", "--max-drop=-1"], 2, ["--max-drop must be a finite"]),
    ("calib-size-0", ["compile", "{onnx}", "--int8", "--calib-size", "0"], 2, ["--calib-size must be at least 1"]),
    ("eval-batch-0", ["eval", "{onnx}", "--batch-size", "0"], 2, ["--batch-size must be at least 1"]),
    ("eval-batch-negative", ["eval", "{onnx}", "--batch-size=-5"], 2, ["--batch-size must be at least 1"]),
    ("train-batch-0", ["train", "--batch-size", "0"], 2, ["--batch-size must be at least 1"]),
    ("train-lr-negative", ["train", "--lr=-1"], 2, ["--lr must be a positive"]),
    ("train-img-size-0", ["train", "--img-size", "0"], 2, ["--img-size must be between"]),
    ("train-device-nonsense", ["train", "--device", "nonsense"], 2, ["unknown --device"]),
    ("train-limit-train-0", ["train", "--limit-train", "0"], 2, ["--limit-train must be at least 1"]),
    ("json-into-missing-folder", ["eval", "{onnx}", "--json", "{tmp}/no/such/r.json"], 2, ["output folder does not exist"]),
    ("json-is-a-folder", ["eval", "{onnx}", "--json", "{tmp}"], 2, ["is a folder"]),
    ("bench-config-int4", ["bench", "--config", "{cfg_int4}", "--out", "{tmp}/b"], 2, ["unknown precision", "'int4'"]),
    ("bench-precisions-int4", ["bench", "{onnx}", "--precisions", "fp32,int4", "--out", "{tmp}/b"], 2, ["'int4'"]),
    ("compile-tensorrt-u8", ["compile", "{onnx}", "--int8", "--activations", "u8", "--backend", "tensorrt"], 2,
     ["TensorRT"]),
    # item 2: a failed gate leaves the previous artifact as it was (no partial file beside it)
    # (MobileViTV2 with every activation in int8 drops about 7 points: the gate at 1 point fails it)
    ("compile-gate-fails-keeps-old", ["compile", str(ROOT / "models" / "mobilevitv2_100_eurosat64.onnx"), "--int8",
                                      "--activations", "s8", "--max-drop", "1",
                                      "--eval-data", str(ROOT / "samples" / "eurosat-test-1000"), "-o", "{old_int8}"],
     2, ["accuracy gate failed", "left as it was"]),
    # item 3: a cache prepared from another source is never replaced silently
    ("prepare-over-other-source", ["data", "prepare", "--source", "{tmp}/small", "--out", "{tmp}/cache"], 2,
     ["prepared from /somewhere/else/EuroSAT.zip", "--replace"]),
    ("prepare-split-file-unknown-split", ["data", "prepare", "--source", "{tmp}/small", "--split-file", "{bad_split}",
                                          "--out", "{tmp}/home/c"], 2, ["unknown split 'dev'"]),
    # item 5: 16-bit images would saturate at 255
    ("prepare-16bit-png", ["data", "prepare", "--source", "{tmp}/png16", "--out", "{tmp}/home/c"], 2,
     ["no readable image", "16-bit", "saturate"]),
    ("prepare-unknown-band", ["data", "prepare", "--source", str(ROOT.parent / "shared" / "data" / "eurosat-ms-sample"),
                              "--bands", "B04,B99", "--out", "{tmp}/home/c"], 2, ["--bands: unknown band 'B99'"]),
    # item 6: a throughput batch that cannot fit in memory
    ("bench-batch-too-big", ["bench", "{onnx}", "--batch", "100000", "--out", "{tmp}/b"], 2,
     ["--batch 100000", "GB at that batch", "available"]),
    # item 8: wrong graph interface, corrupt metadata, folders as outputs
    ("eval-two-input-onnx", ["eval", "{two_in}"], 2, ["has 2 inputs"]),
    ("compile-two-input-onnx", ["compile", "{two_in}", "--fp16", "-o", "{tmp}/x.onnx"], 2, ["has 2 inputs"]),
    ("bench-one-channel-onnx", ["bench", "{one_ch}", "--out", "{tmp}/b"], 2, ["its eo-edge config feeds (N, 3, H, W)"]),
    ("eval-corrupt-config", ["eval", "{bad_cfg}"], 2, ["corrupt eo-edge config"]),
    ("compile-corrupt-config", ["compile", "{bad_cfg}", "--fp16", "-o", "{tmp}/x.onnx"], 2, ["corrupt eo-edge config"]),
    ("export-o-is-folder", ["export", "{pt}", "-o", "{tmp}"], 2, ["is a folder"]),
    ("compile-o-is-folder", ["compile", "{onnx}", "--fp16", "-o", "{tmp}"], 2, ["is a folder"]),
    # item 9: misleading or silent
    ("eval-random-bytes", ["eval", "{rand}"], 2, ["not a readable PyTorch checkpoint"]),
    ("eval-plain-pickle", ["eval", "{pickle}"], 2, ["cannot read checkpoint"]),
    ("teacher-is-onnx", ["distill", "--teacher", "{onnx}", "--epochs", "1"], 2, ["is an ONNX file"]),
    ("teacher-random-bytes", ["distill", "--teacher", "{rand}", "--epochs", "1"], 2, ["not a readable PyTorch"]),
    ("eval-folder-as-model", ["eval", "{tmp}"], 2, ["is a folder"]),
    ("eval-arch-on-our-checkpoint", ["eval", "{pt}", "--arch", "resnet16"], 2, ["drop --arch"]),
    ("eval-img-size-0", ["eval", "{onnx}", "--img-size", "0"], 2, ["--img-size must be between"]),
    ("compile-dla-core-onnxruntime", ["compile", "{onnx}", "--fp16", "--dla-core", "0"], 2,
     ["--dla-core applies to --backend tensorrt"]),
    ("compile-activations-fp16-only", ["compile", "{onnx}", "--fp16", "--activations", "s8"], 2,
     ["--activations applies to --int8"]),
    ("usage-error-one-line", ["compile", "{onnx}", "--no-such-flag"], 2, ["No such option", "--help"]),
    ("usage-error-missing-argument", ["eval"], 2, ["Missing argument"]),
]


@pytest.mark.slow  # the table takes about a minute in all on 2 cores; CI runs it
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, tmp_path):
    _, argv, code, needles = case
    files = _setup(tmp_path)
    subs = {**{k: str(v) for k, v in files.items()}, "tmp": str(tmp_path)}
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files.values()}
    listing = sorted(p.name for p in tmp_path.iterdir())
    p = run_cli(*[a.format(**subs) for a in argv], "-q", env={"EO_EDGE_HOME": str(tmp_path / "home")})
    assert p.returncode == code, (p.returncode, p.stderr)
    assert_one_line_error(p, *needles)
    assert {q: hashlib.sha256(q.read_bytes()).hexdigest() for q in files.values()} == before
    assert sorted(q.name for q in tmp_path.iterdir() if q.name != "home") == listing  # nothing written beside
