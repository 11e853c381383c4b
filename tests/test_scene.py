"""eo-edge scene on real georeferenced rasters (../shared/data/scenes, the EuroSAT MS sample):
every output's georeferencing checked against rasterio's own reading of the scene."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error

SCENES = ROOT.parent / "shared" / "data" / "scenes"
LANDSAT = SCENES / "landsat7-rgb-byte.tif"
COG = SCENES / "aerial-jpeg-cog.tif"
MS = ROOT.parent / "shared" / "data" / "eurosat-ms-sample"
INT8 = ROOT / "models" / "resnet8_kd_eurosat64.int8-minmax.onnx"
needs_scenes = pytest.mark.skipif(not LANDSAT.is_file(), reason="shared scenes not found")

rasterio = pytest.importorskip("rasterio")


def _run(scenes, out, **kw):
    from eo_edge.app.scene import SceneOptions, run_scene_command

    return run_scene_command([Path(s) for s in scenes], kw.pop("model", INT8), out, SceneOptions(**kw), quiet=True,
                             log=lambda m: None)


@pytest.fixture(scope="module")
def landsat(tmp_path_factory):
    out = tmp_path_factory.mktemp("landsat")
    rec = _run([LANDSAT], out, backend="onnxruntime", threads=2)[0]
    return out, rec


@needs_scenes
def test_landsat_outputs_are_georeferenced_like_the_scene(landsat):
    out, rec = landsat
    assert sorted(p.name for p in out.iterdir()) == ["classes.tif", "classes.tif.aux.xml", "downlink.json",
                                                     "quicklook.png", "tiles.geojson"]
    with rasterio.open(LANDSAT) as s, rasterio.open(out / "classes.tif") as c:
        assert c.crs == s.crs and c.count == 3 and c.dtypes == ("uint8",) * 3 and c.nodata == 255
        assert c.transform == s.transform @ s.transform.scale(64)  # the scene's, scaled by the stride
        assert (c.height, c.width) == (math.ceil(s.height / 64), math.ceil(s.width / 64))
        assert json.loads(c.tags(1)["CLASS_NAMES"])[0] == "AnnualCrop" and c.colormap(1)[0][3] == 255  # PAM sidecar
        cls, pct, keep = c.read()
        mask = s.dataset_mask()  # rasterio's own reading of the nodata border
    classified = cls != 255
    for r in range(cls.shape[0]):
        for col in range(cls.shape[1]):
            y, x = r * 64, col * 64
            if y + 64 > mask.shape[0] or x + 64 > mask.shape[1]:
                assert not classified[r, col]  # cut by the edge: never classified
            else:
                assert classified[r, col] == bool((mask[y:y + 64, x:x + 64] > 0).all()), (r, col)
    t = rec["tiles"]
    assert t["classified"] == classified.sum() and t["nodata"] > 0 and t["edge"] == 12 + 13 - 1
    assert t["kept"] == int((keep == 1).sum()) and set(np.unique(keep[classified])) <= {0, 1}
    assert (pct[classified] <= 100).all() and ((pct[classified] >= round(100 * rec["threshold"]["value"])) |
                                                (keep[classified] == 0)).all()


@needs_scenes
def test_landsat_geojson_and_downlink_plan(landsat):
    from rasterio.warp import transform

    out, rec = landsat
    gj = json.loads((out / "tiles.geojson").read_text())
    assert gj["type"] == "FeatureCollection" and "crs" not in gj  # RFC 7946: WGS 84 lon/lat, no crs member
    with rasterio.open(LANDSAT) as s, rasterio.open(out / "classes.tif") as c:
        cls = c.read(1)
        f = next(ft for ft in gj["features"] if ft["properties"]["status"] == "classified")
        r, col = f["properties"]["row"], f["properties"]["col"]
        assert cls[r, col] == f["properties"]["class_index"]
        xs, ys = zip(*(s.transform @ (col * 64 + dx, r * 64 + dy) for dx, dy in ((0, 0), (0, 64), (64, 64), (64, 0))))
        lon, lat = transform(s.crs, "EPSG:4326", list(xs), list(ys))
    ring = f["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5
    got = sorted(map(tuple, np.round(ring[:4], 5)))
    assert got == sorted(zip(np.round(lon, 5), np.round(lat, 5)))
    area2 = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:]))
    assert area2 > 0  # counter-clockwise exterior ring
    assert len(gj["features"]) == rec["tiles"]["total"]
    assert all(ft["properties"]["class"] is None for ft in gj["features"] if ft["properties"]["status"] != "classified")
    d = json.loads((out / "downlink.json").read_text())
    assert d == json.loads(json.dumps(rec)) and d["schema"] == "eo-edge-scene/1"
    assert d["downlink"]["scene_bytes"] == 791 * 718 * 3 and d["downlink"]["kept_bytes"] == d["tiles"]["kept"] * 64 * 64 * 3
    assert sum(v["tiles"] for v in d["per_class"].values()) == d["tiles"]["classified"]
    assert sum(v["kept"] for v in d["per_class"].values()) == d["tiles"]["kept"]
    assert d["threshold"]["source"].startswith("model config") and d["model"]["sha256"] == _sha(INT8)
    e = d["throughput"]["end_to_end"]
    assert e["mpx_per_s"] == pytest.approx(791 * 718 / 1e6 / e["seconds"])
    assert d["realtime_factor"] == pytest.approx(e["mpx_per_s"] / d["sensor"]["pixel_rate_mpx_s"], rel=1e-3)
    # pixel area: 300.04 m UTM pixels, geodesic, within 0.5 % of the nominal (UTM scale factor near the meridian)
    assert d["scene"]["pixel_area_km2"] == pytest.approx(0.30004 ** 2, rel=5e-3)


def _sha(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.slow
@needs_scenes
def test_jpeg_cog_and_a_stride(tmp_path):
    """The JPEG-compressed COG is read window by window; a stride of 32 doubles the grid each way and
    keeps the transform scaled by the stride; Web Mercator's nominal 0.6 m pixel is ~0.47 m on the ground."""
    rec = _run([COG], tmp_path, backend="openvino", stride=32, threads=2)[0]
    with rasterio.open(COG) as s, rasterio.open(tmp_path / "classes.tif") as c:
        assert c.transform == s.transform @ s.transform.scale(32) and (c.height, c.width) == (32, 32)
        assert c.crs == s.crs
    assert rec["tiles"]["edge"] == 32 + 32 - 1 and rec["tiles"]["classified"] == 31 * 31
    assert rec["scene"]["compression"] == "JPEG" and rec["backend"] == "openvino"
    lat = np.mean([ft["geometry"]["coordinates"][0][0][1] for ft in json.loads((tmp_path / "tiles.geojson").read_text())["features"]])
    nominal = abs(rec["scene"]["transform"][0]) ** 2 / 1e6
    assert rec["scene"]["pixel_area_km2"] == pytest.approx(nominal * math.cos(math.radians(lat)) ** 2, rel=0.01)


def _ms13_model(path: Path) -> Path:
    """A tiny real ONNX classifier with an eo-edge config for 13 Sentinel-2 bands (64 px, per-band
    mean/std in digital numbers): global average pool + Gemm, fixed weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from eo_edge.artifact.config import ModelConfig
    from eo_edge.artifact.onnx_meta import set_metadata
    from eo_edge.data.bands import S2_BANDS

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(13, 10)).astype(np.float32), "w")
    g = helper.make_graph([helper.make_node("GlobalAveragePool", ["input"], ["p"]),
                           helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["logits"])],
                          "ms13", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 13, 64, 64])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    cfg = ModelConfig(arch="resnet8", input_size=64, mean=(1200.0,) * 13, std=(600.0,) * 13,
                      extra={"bands": list(S2_BANDS), "value_scale": 1.0})
    set_metadata(m, {"eo_edge.config": cfg.to_dict(), "eo_edge.precision": "fp32"})
    onnx.save(m, str(path))
    return path


@pytest.mark.skipif(not MS.is_dir(), reason="EuroSAT MS sample not found")
def test_13_band_model_on_13_band_geotiffs(tmp_path):
    files = sorted(MS.glob("*/*.tif"))[:3]
    model = _ms13_model(tmp_path / "ms13.onnx")
    recs = _run(files, tmp_path / "out", model=model, backend="onnxruntime")
    for f, r in zip(files, recs):
        assert r["tiles"] == {**r["tiles"], "total": 1, "classified": 1} and r["tiling"]["bands"] == list(range(1, 14))
        with rasterio.open(f) as s, rasterio.open(tmp_path / "out" / f.stem / "classes.tif") as c:
            assert c.crs == s.crs and c.transform == s.transform @ s.transform.scale(64)
            x = s.read().astype(np.float32)  # what the model sees: per-band mean/std of DN, no 1/255
        logits = ((x.mean(axis=(1, 2)) - 1200) / 600) @ np.random.default_rng(0).normal(size=(13, 10)).astype(np.float32)
        assert r["per_class"][r["model"]["classes"][int(np.argmax(logits))]]["tiles"] == 1  # the same class
    # an RGB model on 13 bands: one line naming both; --bands by number picks three
    from eo_edge.errors import EOEdgeError

    with pytest.raises(EOEdgeError, match=r"has 13 bands \(B01.*the model takes 3"):
        _run(files[:1], tmp_path / "rgb", backend="onnxruntime")
    r = _run(files[:1], tmp_path / "rgb", backend="onnxruntime", bands="4,3,2", scale=255 / 10000)[0]
    assert r["tiling"]["bands"] == [4, 3, 2] and r["tiles"]["classified"] == 1


def _write(path: Path, arr: np.ndarray, **profile) -> Path:
    p = {"driver": "GTiff", "height": arr.shape[1], "width": arr.shape[2], "count": arr.shape[0], "dtype": arr.dtype,
         **profile}
    with rasterio.open(path, "w", **p) as d:
        d.write(arr)
    return path


@needs_scenes
def test_bad_scenes_one_line_nothing_written(tmp_path, cli):
    from rasterio.transform import from_origin

    geo = {"crs": "EPSG:32618", "transform": from_origin(100000, 2800000, 30, 30)}
    out = tmp_path / "out"
    txt = tmp_path / "notes.tif"
    txt.write_text("not a raster")
    one_band = _write(tmp_path / "one.tif", np.zeros((1, 128, 128), np.uint8), **geo)
    small = _write(tmp_path / "small.tif", np.zeros((3, 32, 32), np.uint8), **geo)
    refl = _write(tmp_path / "refl.tif", np.full((3, 128, 128), 0.2, np.float32), **geo)
    cases = [
        ([str(txt)], ["is not a raster GDAL can read"]),
        ([str(one_band)], ["has 1 bands", "the model takes 3"]),
        ([str(small)], ["--tile 64 px is larger than small.tif"]),
        ([str(refl)], ["look like reflectance", "--scale 255"]),
        ([str(LANDSAT), "--tile", "32"], ["differs from the model's input size 64"]),
        ([str(LANDSAT), "--max-nodata", "2"], ["--max-nodata"]),
    ]
    for args, needles in cases:
        p = cli("scene", *args, "--model", str(INT8), "--out", str(out), "-q")
        assert_one_line_error(p, *needles)
        assert not out.exists()
    p = cli("scene", str(one_band), "--model", str(INT8), "--out", str(tmp_path), "-q")  # the scene's own folder
    assert_one_line_error(p, "is the folder of one.tif")
    # a reflectance scene with the right --scale runs
    p = cli("scene", str(refl), "--model", str(INT8), "--out", str(out), "--scale", "255", "-q", "--backend", "onnxruntime")
    assert p.returncode == 0, p.stderr


@needs_scenes
def test_all_nodata_is_a_result_and_no_crs_works_in_pixels(tmp_path, cli):
    from rasterio.transform import from_origin

    empty = _write(tmp_path / "empty.tif", np.zeros((3, 192, 192), np.uint8), crs="EPSG:32618",
                   transform=from_origin(100000, 2800000, 30, 30), nodata=0)
    p = cli("scene", str(empty), "--model", str(INT8), "--out", str(tmp_path / "e"), "--backend", "onnxruntime")
    assert p.returncode == 0, p.stderr
    assert "0 of 9 tiles classified (edge 0, nodata 9)" in p.stdout and "no tile classified" in p.stdout
    assert json.loads((tmp_path / "e" / "downlink.json").read_text())["tiles"]["kept"] == 0
    with rasterio.open(LANDSAT) as s:
        arr = s.read(window=((100, 292), (200, 392)))
    plain = _write(tmp_path / "plain.tif", arr)  # no CRS, no transform
    p = cli("scene", str(plain), "--model", str(INT8), "--out", str(tmp_path / "p"), "--backend", "onnxruntime")
    assert p.returncode == 0, p.stderr
    assert "no CRS: working in pixel coordinates" in p.stderr
    assert sorted(x.name for x in (tmp_path / "p").iterdir()) == ["classes.tif", "classes.tif.aux.xml", "downlink.json",
                                                                   "quicklook.png"]
    rec = json.loads((tmp_path / "p" / "downlink.json").read_text())
    assert rec["scene"]["crs"] is None and rec["throughput"]["end_to_end"]["km2_per_s"] is None


@needs_scenes
def test_an_interrupted_run_leaves_no_partial_outputs(tmp_path, monkeypatch):
    from eo_edge.scene import outputs

    out = tmp_path / "out"
    out.mkdir()
    (out / "downlink.json").write_text("previous")

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(outputs, "write_quicklook", boom)
    with pytest.raises(KeyboardInterrupt):
        _run([LANDSAT], out, backend="onnxruntime")
    assert sorted(p.name for p in out.iterdir()) == ["downlink.json"] and (out / "downlink.json").read_text() == "previous"


def test_sensor_pixel_rates():
    from eo_edge.scene.sensors import SENSORS, get_sensor

    s2 = get_sensor("sentinel-2-msi")
    assert s2.ground_speed_km_s == pytest.approx(6.64, abs=0.01)
    assert s2.pixel_rate_mpx_s == pytest.approx(290e3 * 6.64e3 / 100 / 1e6, rel=2e-3)  # 290 km x 6.64 km/s / 100 m^2
    assert get_sensor("landsat-oli").pixel_rate_mpx_s == pytest.approx(185 * 6.76 / 0.0009 / 1e6, rel=3e-3)
    assert set(SENSORS) == {"sentinel-2-msi", "landsat-oli", "planetscope"} and all(s.source for s in SENSORS.values())


@pytest.mark.skipif(not MS.is_dir(), reason="EuroSAT MS sample not found")
def test_prepare_and_predict_read_compressed_geotiffs(tmp_path, cli):
    """LZW- and DEFLATE-compressed GeoTIFFs (what COGs usually are) are read exactly by the one raster reader."""
    import tifffile

    src = tmp_path / "src"
    originals = {}
    for i, f in enumerate(sorted(MS.glob("*/*.tif"))[:24]):
        with rasterio.open(f) as s:
            prof, data = s.profile, s.read()
        prof.update(compress=("lzw", "deflate")[i % 2])
        d = src / f.parent.name
        d.mkdir(parents=True, exist_ok=True)
        with rasterio.open(d / f.name, "w", **prof) as o:
            o.write(data)
        originals[f.name] = tifffile.imread(f)
    p = cli("data", "prepare", "--source", str(src), "--out", str(tmp_path / "cache"), "-q")
    assert p.returncode == 0, p.stderr
    from eo_edge.data.dataset import load_prepared

    d = load_prepared(tmp_path / "cache")
    assert len(d) == 24 and d.images.dtype == np.uint16
    assert all(np.array_equal(d.images[i], originals[Path(n).name]) for i, n in enumerate(d.names))


@needs_scenes
@pytest.mark.parametrize("backend", ["onnxruntime", pytest.param("openvino", marks=pytest.mark.slow)])
def test_preprocessing_folded_into_the_graph_gives_the_same_map(tmp_path, backend):
    """--preprocess graph (Cast, Mul, Add before the model; raw uint8 tiles fed) vs numpy: the same
    classes; ONNX Runtime gives the same probabilities, OpenVINO's INT8 plugin quantizes the folded
    input in its own fused kernel (a few points of probability, measured 4 at most here)."""
    from eo_edge.backends import get_backend

    if not get_backend(backend).available()[0]:
        pytest.skip(f"{backend} not installed")
    maps = {}
    for how in ("graph", "numpy"):
        r = _run([COG], tmp_path / how, backend=backend, preprocess=how, threads=2)[0]
        assert r["tiling"]["preprocess"].startswith("in the graph" if how == "graph" else "numpy")
        with rasterio.open(tmp_path / how / "classes.tif") as c:
            maps[how] = c.read().astype(int)
    assert (maps["graph"][0] == maps["numpy"][0]).all()
    assert np.abs(maps["graph"][1] - maps["numpy"][1]).max() <= (0 if backend == "onnxruntime" else 6)


@needs_scenes
def test_a_vrt_reads_like_its_source(tmp_path, landsat):
    """GDAL's VRT driver: a VRT of the Landsat scene gives the same decision map as the scene itself."""
    from rasterio.shutil import copy as gdal_copy

    vrt = tmp_path / "landsat.vrt"
    gdal_copy(LANDSAT, vrt, driver="VRT")
    _run([vrt], tmp_path / "v", backend="onnxruntime", threads=2)
    with rasterio.open(tmp_path / "v" / "classes.tif") as a, rasterio.open(landsat[0] / "classes.tif") as b:
        assert np.array_equal(a.read(), b.read()) and a.transform == b.transform and a.crs == b.crs
