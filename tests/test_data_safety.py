"""A prepared dataset appears whole or not at all, and no command replaces a cache built from another source."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, assert_one_line_error, run_cli
from eo_edge.errors import EOEdgeError


def _folder(tmp_path: Path, name: str, n: int) -> Path:
    """A class-folder dataset of ``n`` real calibration images per class (two classes)."""
    src = tmp_path / name
    for cls in ("Forest", "SeaLake"):
        (src / cls).mkdir(parents=True)
        for i, f in enumerate(sorted((ROOT / "calibration").glob(f"{cls}_*.jpg"))[:n]):
            shutil.copy(f, src / cls / f"{cls}_own{i}.jpg")  # not EuroSAT names: the data gets its own split
    return src


def _digest(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def test_prepare_refuses_to_replace_another_sources_cache(tmp_path):
    from eo_edge.data import load_prepared, prepare

    a, b = _folder(tmp_path, "a", 6), _folder(tmp_path, "b", 2)
    cache = tmp_path / "cache"
    prepare(a, cache, progress=False)
    before = _digest(cache)
    with pytest.raises(EOEdgeError, match="prepared from .*refusing to replace"):
        prepare(b, cache, progress=False)
    assert _digest(cache) == before
    prepare(a, cache, progress=False)  # the same source may refresh its own cache
    assert len(load_prepared(cache)) == 12
    prepare(b, cache, progress=False, replace=True)
    assert len(load_prepared(cache)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "cache"]  # no temporary folder left


def test_prepare_failure_while_writing_keeps_the_previous_cache(tmp_path, monkeypatch):
    import sys

    from eo_edge.data import load_prepared, prepare

    prepare_mod = sys.modules["eo_edge.data.prepare"]

    a = _folder(tmp_path, "a", 6)
    cache = tmp_path / "cache"
    prepare(a, cache, progress=False)
    before = _digest(cache)

    def boom(*args, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(prepare_mod, "write_json", boom)  # the manifest is the last file written
    with pytest.raises(EOEdgeError, match="disk full"):
        prepare(a, cache, progress=False)
    assert _digest(cache) == before and len(load_prepared(cache)) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "cache"]


def test_cli_prepare_without_out_keeps_the_default_eurosat_cache(tmp_path):
    """Caches are named: another dataset goes to HOME/datasets/<its name>; the eurosat cache is
    never replaced by another source (only with --replace)."""
    home = tmp_path / "home"
    p = run_cli("data", "prepare", "--source", str(_folder(tmp_path, "a", 10)), "--name", "eurosat", "--home",
                str(home), "-q")
    assert p.returncode == 0, p.stderr
    before = _digest(home / "datasets" / "eurosat")
    b = _folder(tmp_path, "b", 8)
    p = run_cli("data", "prepare", "--source", str(b), "--home", str(home), "-q")
    assert p.returncode == 0, p.stderr
    assert (home / "datasets" / b.name / "manifest.json").is_file()  # its own name
    assert _digest(home / "datasets" / "eurosat") == before
    p = run_cli("data", "prepare", "--source", str(b), "--name", "eurosat", "--home", str(home), "-q")
    assert_one_line_error(p, "refusing to replace", "--replace")
    assert _digest(home / "datasets" / "eurosat") == before


def test_stray_and_nested_images_are_reported_not_made_classes(tmp_path):
    """Images beside the class folders or in nested folders (folder and zip) are skipped with a
    warning; they never become extra classes (a stray 2750/x.jpg used to become class "2750")."""
    import shutil
    import zipfile

    from eo_edge.data import prepare
    from eo_edge.assets import CALIBRATION_DIR

    src = tmp_path / "ds"
    for cls in ("Forest", "River"):
        (src / cls).mkdir(parents=True)
        for f in sorted(CALIBRATION_DIR.glob(f"{cls}_*.jpg"))[:3]:
            shutil.copy(f, src / cls / f.name)
    first = sorted(CALIBRATION_DIR.glob("Forest_*.jpg"))[0]
    shutil.copy(first, src / "stray.jpg")
    (src / "Forest" / "extra").mkdir()
    shutil.copy(first, src / "Forest" / "extra" / "nested.jpg")
    m = prepare(src, tmp_path / "c1", progress=False)
    assert m["class_names"] == ["Forest", "River"] and m["n_images"] == 6
    assert any("stray.jpg" in w for w in m["warnings"]) and any("Forest/extra" in w for w in m["warnings"])
    zpath = tmp_path / "ds.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for f in sorted(src.rglob("*.jpg")):
            z.write(f, "2750/" + f.relative_to(src).as_posix())
    m = prepare(zpath, tmp_path / "c2", progress=False)
    assert m["class_names"] == ["Forest", "River"] and m["n_images"] == 6
    assert any("2750/stray.jpg" in w for w in m["warnings"]) and any("nested.jpg" in w for w in m["warnings"])


def test_one_class_dataset_is_refused_before_training(tmp_path):
    import shutil

    from conftest import assert_one_line_error, run_cli
    from eo_edge.assets import CALIBRATION_DIR

    src = tmp_path / "one" / "Forest"
    src.mkdir(parents=True)
    for f in sorted(CALIBRATION_DIR.glob("Forest_*.jpg"))[:8]:
        shutil.copy(f, src / f.name)
    p = run_cli("train", "--data", str(src.parent), "--epochs", "1", "-q", "--out", str(tmp_path / "run"),
                env={"EO_EDGE_HOME": str(tmp_path / "home")})
    assert_one_line_error(p, "1 class (Forest)", "at least 2")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_sigint_during_compile_keeps_the_old_file_and_says_so(tmp_path, home, prepared):
    """Ctrl-C in the middle of an INT8 compile: exit 130 with one line saying what was kept; the
    previous artifact and its sidecar are unchanged and no partial file is left."""
    import hashlib
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    m = tmp_path / "r8.onnx"
    shutil.copy(ROOT / "models" / "resnet8_eurosat64.onnx", m)
    old = tmp_path / "r8.int8-minmax-u8.onnx"
    old.write_bytes(b"previous artifact")
    (tmp_path / "r8.int8-minmax-u8.onnx.json").write_text("{}\n")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    proc = subprocess.Popen([sys.executable, "-m", "eo_edge.cli", "compile", str(m), "--int8", "--auto-fallback",
                             "--max-drop", "0", "--eval-data", str(home / "datasets" / "eurosat"), "-q"],
                            stderr=subprocess.PIPE, text=True)
    time.sleep(6)  # inside calibration / the gate / the fallback search
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    joined = " ".join(lines)
    assert "Traceback" not in err and "interrupted: files already finished are kept" in joined, err
    assert joined.endswith("the last finished epoch)"), err  # the last thing said
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    assert after == before  # old artifact and sidecar unchanged, no .partial file


def test_disk_full_while_saving_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    """train's checkpoints go through atomic_path (as save_checkpoint does): ENOSPC mid-write is one
    clear error and the previous file is unchanged, with no temporary left."""
    import errno
    import shutil

    import torch

    from conftest import ROOT
    from eo_edge.errors import EOEdgeError
    from eo_edge.models.checkpoint import load_checkpoint, save_checkpoint

    model, cfg, _ = load_checkpoint(ROOT / "models" / "resnet8_eurosat64.pt")
    dst = tmp_path / "last.pt"
    shutil.copy(ROOT / "models" / "resnet8_eurosat64.pt", dst)
    before = dst.read_bytes()

    def full(obj, f, *a, **k):
        open(f, "wb").write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(EOEdgeError, match="disk full"):
        save_checkpoint(dst, model, cfg)
    assert dst.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_implicit_prepare_prints_what_it_skipped(tmp_path):
    """`--data FOLDER` prepares implicitly; a corrupt file it skips is printed, not hidden."""
    src = _folder(tmp_path, "own", 6)
    (src / "Forest" / "Forest_broken.jpg").write_bytes(b"not an image at all")
    p = run_cli("eval", str(ROOT / "models" / "resnet8_eurosat64.onnx"), "--data", str(src), "--split", "all", "-q",
                env={"EO_EDGE_HOME": str(tmp_path / "home")})
    assert p.returncode == 0, p.stderr
    err = " ".join(p.stderr.split())
    assert "skipped: Forest/Forest_broken.jpg" in err and "preparing" in err


def test_staged_writes_publish_together_or_not_at_all(tmp_path):
    """fileio.staged, the one multi-file writer (compile, calibrate): nothing reaches a final name
    before publish; an error leaves the old files and no temporary; names follow .NAME.*.partial*."""
    from eo_edge.errors import EOEdgeError
    from eo_edge.fileio import PARTIAL, staged

    a, b = tmp_path / "a.onnx", tmp_path / "a.onnx.json"
    a.write_bytes(b"old a")
    with pytest.raises(RuntimeError):
        with staged() as s:
            s.write(a, b"new a")
            p = s.path(b, ".json")
            assert p.name.startswith(".a.onnx.json.") and p.name.endswith(PARTIAL + ".json")
            assert a.read_bytes() == b"old a" and not b.exists()  # not yet published
            raise RuntimeError("a check failed")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.onnx"] and a.read_bytes() == b"old a"
    with staged() as s:
        sha = s.write(a, b"new a")
        s.write(b, b"{}")
        assert s.publish() == [a, b]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.onnx", "a.onnx.json"] and a.read_bytes() == b"new a"
    import hashlib

    assert sha == hashlib.sha256(b"new a").hexdigest()
    with pytest.raises(EOEdgeError, match="output folder"):
        with staged() as s:
            s.path(tmp_path / "missing" / "x.onnx")
