"""Your own EO data (#13): a root with train/ and test/ folders of 256 x 256 JPEGs keeps its own
split and size through prepare, train, export, compile (calibrated on its own training images) and
bench (on its own test split), each command naming the data it used; preparing it never touches
the EuroSAT cache."""

from __future__ import annotations

import json

import onnx
import pytest
from PIL import Image

from conftest import ROOT, run_cli

CLASSES = ("Forest", "Highway", "River")


def _scenes(root, n_train=24, n_test=8):
    """Real EuroSAT test images (shipped subset), upsampled to 256 px, re-laid as train/ and test/."""
    for cls in CLASSES:
        files = sorted((ROOT / "samples" / "eurosat-test-1000").glob(f"{cls}_*.jpg"))[: n_train + n_test]
        for i, f in enumerate(files):
            split = "train" if i < n_train else "test"
            d = root / split / cls
            d.mkdir(parents=True, exist_ok=True)
            Image.open(f).convert("RGB").resize((256, 256), Image.Resampling.BICUBIC).save(d / f"scene{i}.jpg",
                                                                                          quality=92)
    return root


@pytest.mark.slow
def test_train_test_folders_at_256px_end_to_end(tmp_path):
    home = tmp_path / "home"
    env = {"EO_EDGE_HOME": str(home)}
    src = _scenes(tmp_path / "scenes")
    p = run_cli("data", "prepare", "--source", str(src), "-q", env=env)
    assert p.returncode == 0, p.stderr
    cache = home / "datasets" / "scenes"
    m = json.loads((cache / "manifest.json").read_text())
    assert m["image_shape"] == [256, 256, 3] and m["class_names"] == list(CLASSES)
    assert len(m["split"]["test"]) == 3 * 8  # the test folder's size
    assert len(m["split"]["val"]) == 3 * 4 and len(m["split"]["train"]) == 3 * 20  # 15 % carved from train
    assert "own train/, test/ folders" in m["split"]["method"]
    assert not (home / "datasets" / "eurosat").exists()  # never the EuroSAT cache

    run = tmp_path / "run"
    p = run_cli("train", "--arch", "resnet8", "--data", str(cache), "--img-size", "256", "--epochs", "1",
                "--batch-size", "16", "--threads", "2", "--out", str(run), "-q", env=env)
    assert p.returncode == 0, p.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert "own train/, test/ folders" in metrics["split"]

    onnx_path = tmp_path / "scenes_r8.onnx"
    p = run_cli("export", str(run / "best.pt"), "-o", str(onnx_path), "--parity-images", "16", "-q", env=env)
    assert p.returncode == 0, p.stderr
    g = onnx.load(str(onnx_path)).graph
    dims = [d.dim_value or d.dim_param for d in g.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, 256, 256] and g.output[0].type.tensor_type.shape.dim[1].dim_value == 3

    p = run_cli("compile", str(onnx_path), "--int8", "--calib-size", "30", env=env)
    assert p.returncode == 0, p.stderr
    err = " ".join(p.stderr.split())
    assert "calibration: 30 training images of scenes" in err and "gate data: val split of" in err
    rec = json.loads((tmp_path / "scenes_r8.int8-minmax-u8.onnx.json").read_text())["artifacts"][0]
    assert all(f["name"].startswith("train/") for f in rec["calibration_images"]["files"])

    out = tmp_path / "bench"
    p = run_cli("bench", str(onnx_path), "--backend", "onnxruntime", "--throughput-s", "0.2", "--data", str(cache), "--split", "test", "--precisions", "fp32",
                "--runs", "10", "--rounds", "2", "--warmup", "1", "--batch", "8", "--no-peak", "--no-memory",
                "--out", str(out), "-q", env=env)
    assert p.returncode == 0, p.stderr
    b = json.loads((out / "bench.json").read_text())
    assert b["data"]["kind"] == "test split" and b["data"]["n_images"] == 24
    assert "own train/, test/ folders" in b["data"]["split_source"]
    assert b["artifacts"][0]["input_size"] == 256


MS = ROOT.parent / "shared" / "data" / "eurosat-ms-sample"


@pytest.mark.slow
@pytest.mark.skipif(not MS.is_dir(), reason="EuroSAT MS sample not found")
def test_multispectral_geotiffs_end_to_end(tmp_path):
    """216 real EuroSAT MS GeoTIFFs (13 bands, uint16): prepared with exact values, trained with
    per-band normalisation, exported with a 13-channel input, compiled, evaluated and benched;
    --bands B04,B03,B02 gives 3 channels that are the same scene as the RGB JPEG."""
    import numpy as np
    import tifffile

    from eo_edge.data import load_prepared
    from eo_edge.data.decode import decode_image

    home = tmp_path / "home"
    env = {"EO_EDGE_HOME": str(home)}
    p = run_cli("data", "prepare", "--source", str(MS), "--name", "ms13", "-q", env=env)
    assert p.returncode == 0, p.stderr
    d = load_prepared(home / "datasets" / "ms13")
    assert d.images.shape == (216, 64, 64, 13) and d.images.dtype == np.uint16
    assert np.array_equal(d.images[0], tifffile.imread(MS / d.names[0]))  # exact values, every band
    assert d.manifest["bands"][3] == "B04" and not (home / "datasets" / "eurosat").exists()

    run = tmp_path / "run"
    p = run_cli("train", "--arch", "resnet8", "--epochs", "1", "--batch-size", "32", "--threads", "2", "--data",
                str(home / "datasets" / "ms13"), "--out", str(run), "-q", env=env)
    assert p.returncode == 0, p.stderr
    onnx_path = tmp_path / "ms13.onnx"
    p = run_cli("export", str(run / "best.pt"), "-o", str(onnx_path), "-q", env=env)  # parity on its own data
    assert p.returncode == 0, p.stderr
    g = onnx.load(str(onnx_path))
    assert [d.dim_value for d in g.graph.input[0].type.tensor_type.shape.dim][1:] == [13, 64, 64]
    cfg = json.loads({q.key: q.value for q in g.metadata_props}["eo_edge.config"])
    assert len(cfg["mean"]) == 13 and cfg["mean"][3] > 100  # per-band, in Sentinel-2 digital numbers
    assert cfg["extra"]["bands"][:4] == ["B01", "B02", "B03", "B04"] and cfg["extra"]["value_scale"] == 1.0
    p = run_cli("compile", str(onnx_path), "--int8", "--calib-size", "64", env=env)
    assert p.returncode == 0, p.stderr
    assert "calibration: 64 training images of ms13" in " ".join(p.stderr.split())
    p = run_cli("eval", str(tmp_path / "ms13.int8-minmax-u8.onnx"), "--json", str(tmp_path / "e.json"), "-q",
                env=env)  # no --data: the model's own dataset
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "e.json").read_text())["n_images"] == 30
    p = run_cli("bench", str(onnx_path), "--backend", "onnxruntime", "--throughput-s", "0.2", "--data", str(home / "datasets" / "ms13"), "--precisions", "fp32",
                "--runs", "10", "--rounds", "2", "--warmup", "1", "--batch", "8", "--no-peak", "--no-memory",
                "--out", str(tmp_path / "b"), "-q", env=env)
    assert p.returncode == 0, p.stderr
    # three bands, in RGB order: the same scene as the RGB JPEG of the same name
    p = run_cli("data", "prepare", "--source", str(MS), "--name", "ms3", "--bands", "B04,B03,B02", "-q", env=env)
    assert p.returncode == 0, p.stderr
    d3 = load_prepared(home / "datasets" / "ms3")
    assert d3.images.shape[-1] == 3 and np.array_equal(d3.images[..., 0], d.images[..., 3])
    import zipfile

    with zipfile.ZipFile(ROOT.parent / "shared" / "data" / "EuroSAT.zip") as z:
        rgb = decode_image(z.read("2750/" + d3.names[0].replace(".tif", ".jpg")))[0].astype(float)
    ms = d3.images[0].astype(float)
    r = [np.corrcoef(ms[..., c].ravel(), rgb[..., c].ravel())[0, 1] for c in range(3)]
    assert min(r) > 0.7, r


def test_split_files_csv_and_torchgeo_lists(tmp_path):
    """A user's split as a CSV (path,split) or as torchgeo-style lists wins over the committed one;
    unlisted images are reported and left out; a missing val list is carved from train."""
    import shutil

    from eo_edge.data import load_prepared, prepare
    from eo_edge.data.split import split_indices, split_source

    src = tmp_path / "src"
    files = []
    for cls in ("Forest", "River"):
        (src / cls).mkdir(parents=True)
        for f in sorted((ROOT / "calibration").glob(f"{cls}_*.jpg"))[:10]:
            shutil.copy(f, src / cls / f.name)
            files.append(f"{cls}/{f.name}")
    rows = ["path,split"] + [f"{f},{'test' if i % 5 == 0 else 'train'}" for i, f in enumerate(files[:-1])]
    (tmp_path / "split.csv").write_text("\n".join(rows) + "\n")
    m = prepare(src, tmp_path / "c1", progress=False, split_files=[tmp_path / "split.csv"])
    d = load_prepared(tmp_path / "c1")
    assert len(split_indices(d, "test")) == 4 and "split.csv" in split_source(d)
    assert any("1 images are in no split" in w for w in m["warnings"])  # the unlisted last file
    assert len(split_indices(d, "train")) + len(split_indices(d, "val")) == 15 and len(split_indices(d, "val")) > 0
    for sp in ("train", "test"):  # torchgeo style: bare file names, one list per split
        names = [f.rsplit("/", 1)[1] for i, f in enumerate(files) if (i % 4 == 0) == (sp == "test")]
        (tmp_path / f"mine-{sp}.txt").write_text("\n".join(names) + "\n")
    prepare(src, tmp_path / "c2", progress=False, split_files=[tmp_path / "mine-train.txt", tmp_path / "mine-test.txt"])
    d2 = load_prepared(tmp_path / "c2")
    assert len(split_indices(d2, "test")) == 5 and "mine-train.txt" in split_source(d2)
