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
    home = tmp_path / "home"
    p = run_cli("data", "prepare", "--source", str(_folder(tmp_path, "a", 10)), "--home", str(home), "-q")
    assert p.returncode == 0, p.stderr
    before = _digest(home / "datasets" / "eurosat")
    p = run_cli("data", "prepare", "--source", str(_folder(tmp_path, "b", 8)), "--home", str(home), "-q")
    assert_one_line_error(p, "refusing to replace", "--replace")
    assert _digest(home / "datasets" / "eurosat") == before
