"""The data pipeline on the real EuroSAT archive, and odd/bad inputs."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import EUROSAT_ZIP, assert_one_line_error, needs_eurosat, run_cli
from eo_edge.data import calibration_indices, load_prepared, prepare, preprocess, split_indices
from eo_edge.data.dataset import EUROSAT_CLASSES
from eo_edge.data.sources import safe_member_path
from eo_edge.data.split import committed_split, make_split
from eo_edge.assets import CALIBRATION_DIR, TEST_SUBSET_DIR
from eo_edge.errors import EOEdgeError


def test_prepare_real_archive(prepared):
    assert len(prepared) == 27000
    assert prepared.images.shape == (27000, 64, 64, 3) and prepared.images.dtype == np.uint8
    assert prepared.class_names == list(EUROSAT_CLASSES)
    counts = np.bincount(prepared.labels)
    assert counts.tolist() == [3000, 3000, 3000, 2500, 2500, 2000, 2500, 3000, 2500, 3000]
    assert prepared.manifest["skipped"] == [] and prepared.manifest["converted"] == []
    # the cache holds the decoded pixels of the JPEG itself
    with zipfile.ZipFile(EUROSAT_ZIP) as zf:
        ref = np.asarray(Image.open(io.BytesIO(zf.read("2750/River/River_17.jpg"))).convert("RGB"))
    assert np.array_equal(prepared.images[prepared.names.index("River/River_17.jpg")], ref)


def test_committed_split(prepared):
    sets = {s: set(np.asarray(prepared.names)[split_indices(prepared, s)]) for s in ("train", "val", "test")}
    assert [len(sets[s]) for s in ("train", "val", "test")] == [18900, 4050, 4050]
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    # stratified 70/15/15 per class
    te = split_indices(prepared, "test")
    assert np.bincount(prepared.labels[te]).tolist() == [450, 450, 450, 375, 375, 300, 375, 450, 375, 450]
    # the committed file is exactly what the documented procedure gives
    regenerated = make_split(prepared.names)
    assert {s: frozenset(v) for s, v in regenerated.items()} == committed_split()


def test_shipped_subsets_come_from_the_right_splits(prepared):
    committed = committed_split()
    cal = sorted(p.name for p in CALIBRATION_DIR.glob("*.jpg"))
    assert len(cal) == 512
    assert all(f"{n.split('_')[0]}/{n}" in committed["train"] for n in cal)
    sub = sorted(p.name for p in TEST_SUBSET_DIR.glob("*.jpg"))
    assert len(sub) == 1000 and all(f"{n.split('_')[0]}/{n}" in committed["test"] for n in sub)
    idx = calibration_indices(prepared, 512)
    assert sorted(prepared.names[i].split("/")[1] for i in idx) == cal


def test_preprocess_matches_torch_bilinear():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    got = preprocess(x, 224, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    t = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
    t = F.interpolate(t, size=(224, 224), mode="bilinear", align_corners=False)
    t = (t - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    assert got.shape == (2, 3, 224, 224) and got.dtype == np.float32
    assert np.abs(got - t.numpy()).max() < 1e-4  # float32 rounding of the sampling weights only


def _real_jpegs(n: int = 3) -> list[bytes]:
    with zipfile.ZipFile(EUROSAT_ZIP) as zf:
        return [zf.read(f"2750/Forest/Forest_{i}.jpg") for i in range(1, n + 1)]


@needs_eurosat
def test_odd_and_bad_images(tmp_path):
    src = tmp_path / "src"
    (src / "Forest").mkdir(parents=True)
    (src / "Highway").mkdir()
    (src / "Empty").mkdir()
    good = _real_jpegs(3)
    (src / "Forest" / "Forest_1.jpg").write_bytes(good[0])
    (src / "Forest" / "Forest_2.jpg").write_bytes(good[1][: len(good[1]) // 2])  # truncated JPEG
    im = Image.open(io.BytesIO(good[2]))
    im.convert("L").save(src / "Highway" / "Highway_1.png")  # grayscale
    rgba = im.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(src / "Highway" / "Highway_2.png")  # RGBA
    im.resize((32, 32)).save(src / "Highway" / "Highway_3.jpg")  # wrong size
    (src / "Highway" / "Highway_4.jpg").write_bytes(b"not an image at all")
    # mixed sizes: refused unless a size is asked for (then every resize is reported)
    with pytest.raises(EOEdgeError, match=r"different sizes \(64x64: 3, 32x32: 1\); pass --size"):
        prepare(src, tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache").exists()
    m = prepare(src, tmp_path / "cache", progress=False, size=64)
    assert m["n_images"] == 4 and m["image_shape"] == [64, 64, 3] and m["resized_to"] == 64
    assert sorted(s.split(":")[0] for s in m["skipped"]) == ["Forest/Forest_2.jpg", "Highway/Highway_4.jpg"]
    conv = {c.split(":")[0]: c for c in m["converted"]}
    assert "mode L->RGB" in conv["Highway/Highway_1.png"] and "mode RGBA->RGB" in conv["Highway/Highway_2.png"]
    assert "size 32x32->64x64" in conv["Highway/Highway_3.jpg"]
    assert any("empty class folder" in w and "Empty" in w for w in m["warnings"])
    d = load_prepared(tmp_path / "cache")
    assert d.class_names == ["Forest", "Highway"] and d.images.shape == (4, 64, 64, 3)
    gray = d.images[d.names.index("Highway/Highway_1.png")]
    assert np.array_equal(gray[..., 0], gray[..., 1])  # grey stays grey


@needs_eurosat
def test_zip_slip_entry_is_refused(tmp_path):
    good = _real_jpegs(2)
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("2750/Forest/Forest_1.jpg", good[0])
        zf.writestr("2750/../../Forest/Forest_2.jpg", good[1])
        zf.writestr("/abs/Forest/Forest_3.jpg", good[1])
    m = prepare(z, tmp_path / "cache", progress=False)
    assert m["n_images"] == 1
    refused = [w for w in m["warnings"] if w.startswith("refused")]
    assert len(refused) == 2 and any("../" in w for w in refused)
    assert safe_member_path("a/../../b.jpg", tmp_path) is None
    assert safe_member_path("2750/Forest/x.jpg", tmp_path) == (tmp_path / "2750/Forest/x.jpg").resolve()


def test_missing_and_bad_sources(tmp_path):
    with pytest.raises(EOEdgeError, match="not found"):
        prepare(tmp_path / "nope.zip", tmp_path / "c")
    p = run_cli("data", "prepare", "--source", str(tmp_path / "nope.zip"))
    assert_one_line_error(p, "not found")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(EOEdgeError, match="cannot read archive"):
        prepare(bad, tmp_path / "c", sha256=None)


@needs_eurosat
def test_checksum_mismatch_is_refused(tmp_path):
    with pytest.raises(EOEdgeError, match="sha256 mismatch"):
        prepare(EUROSAT_ZIP, tmp_path / "c", sha256="0" * 64, progress=False)
    assert not (tmp_path / "c" / "manifest.json").exists()
