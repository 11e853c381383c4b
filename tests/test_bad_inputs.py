"""The bad-input sweep as a table: each case is a command line, the bad input it builds, the
expected exit code and `error:` line, and the files that must be unchanged afterwards (sha256).

The contract (README, "How we build"): exactly one `error:` line on stderr, a non-zero exit, no
traceback, nothing written and nothing on disk changed. Every row runs in this process through
the console-script entry point (``eo_edge.cli.main``; fails validation in well under a second,
so the table is in the fast loop); a few rows, one per command family, also run as a real
``python -m eo_edge.cli`` subprocess (``slow``) to show that the real entry point keeps it too."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, assert_one_line_error, run_cli, run_inprocess

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


# Rows that also run as a subprocess: one per command family, and the usage-error path.
SUBPROCESS = {"compile-gate-fails-keeps-old", "export-o-is-input", "eval-random-bytes", "prepare-16bit-png",
              "bench-batch-too-big", "usage-error-one-line"}
# Rows that run only as a subprocess: the gate row does the real work before it refuses (an int8
# MobileViTV2 calibrated and evaluated on 1,000 images, 15-40 s), so it is no fast-loop row.
SUBPROCESS_ONLY = {"compile-gate-fails-keeps-old"}
# Rows whose command does its work and reports it (results lines, which -q keeps) before it
# refuses: the `error:` line is the last line and the only error line, not the only line.
WORK_BEFORE_ERROR = {"compile-gate-fails-keeps-old"}
assert SUBPROCESS_ONLY <= SUBPROCESS <= {c[0] for c in CASES}


def _listing(tmp: Path) -> list[str]:
    """Every path under ``tmp`` except the home folder (the command's own cache)."""
    return sorted(q.relative_to(tmp).as_posix() for q in tmp.rglob("*") if q.relative_to(tmp).parts[0] != "home")


def _check(case, tmp_path: Path, run) -> None:
    """Build the case's inputs in ``tmp_path``, run it with ``run(argv)``, and check the contract."""
    _, argv, code, needles = case
    files = _setup(tmp_path)
    subs = {**{k: str(v) for k, v in files.items()}, "tmp": str(tmp_path)}
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files.values()}
    listing = _listing(tmp_path)
    p = run([a.format(**subs) for a in argv] + ["-q"])
    assert p.returncode == code, (p.returncode, p.stderr)
    assert_one_line_error(p, *needles)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    if case[0] in WORK_BEFORE_ERROR:
        assert [ln for ln in lines if ln.startswith("error:")] == lines[-1:], p.stderr
    else:
        assert len(lines) == 1, p.stderr  # the error line and nothing else
    assert {q: hashlib.sha256(q.read_bytes()).hexdigest() for q in files.values()} == before
    assert _listing(tmp_path) == listing  # nothing written beside (the command runs in tmp_path)


INPROCESS = [pytest.param(c, id=c[0]) for c in CASES if c[0] not in SUBPROCESS_ONLY]


@pytest.mark.parametrize("case", INPROCESS)
def test_bad_input(case, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("EO_EDGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EO_EDGE_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)
    _check(case, tmp_path, lambda args: run_inprocess(args, monkeypatch, capfd))


SUBPROCESS_CASES = [c for c in CASES if c[0] in SUBPROCESS]


@pytest.mark.slow  # a CLI start-up each (~1-3 s; the gate row 15-40 s) on 2 cores
@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[c[0] for c in SUBPROCESS_CASES])
def test_bad_input_subprocess(case, tmp_path):
    env = {"EO_EDGE_HOME": str(tmp_path / "home"), "EO_EDGE_DEBUG": ""}
    _check(case, tmp_path, lambda args: run_cli(*args, env=env, cwd=tmp_path))
