"""SIGKILL compile, export and train at random points, then run each once more (issue 33): 0 corrupt
files, 0 lost previous outputs, 0 temporaries left (benchmarks/crash-hygiene/kill.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_killed_writers_leave_no_litter_and_no_corrupt_file(tmp_path):
    spec = importlib.util.spec_from_file_location("kill", ROOT / "benchmarks" / "crash-hygiene" / "kill.py")
    k = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(k)
    res = k.run_all(tmp_path, kills=7, seed=1)  # 21 kills
    assert sum(r["kills"] for r in res.values()) >= 20, res
    for name, r in res.items():
        assert r["corrupt"] == 0 and r["final_rc"] == 0 and r["final_outputs_ok"], (name, r)
        assert r["temporaries_after_final_run"] == 0, (name, r)
        assert r["absent"] == 0, (name, r)  # an existing output is never lost
