"""Kill eo-edge at random points while it writes, then run it once more to completion (issue 33).

Per command: an existing output is in place; two unkilled runs (the second, with caches warm, measures how
long the command takes: D); then the command is started and SIGKILLed after a random 5-90 % of D (seeded), KILLS times;
after each kill the output must be the previous file intact or a complete new one (never
corrupt), and after a final, unkilled run no temporary of eo-edge's pattern
(``.NAME.<pid>.*.partial*``) may be left anywhere in the output folder. ``train`` runs on a
dataset prepared once beforehand (not killed) and is killed at any point of its epochs,
checkpoint writes included.

Usage: python benchmarks/crash-hygiene/kill.py [--kills 8] [--seed 0]   (writes record.json beside it)
The slow test tests/test_crash_hygiene.py runs the same procedure.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _sha(p: Path) -> str | None:
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".partial" in p.name)


def _onnx_ok(p: Path) -> bool:
    import onnx

    try:
        onnx.checker.check_model(onnx.load(str(p)))
        return True
    except Exception:  # noqa: BLE001
        return False


def _ckpt_ok(p: Path) -> bool:
    import torch

    try:
        torch.load(p, map_location="cpu", weights_only=True)
        return True
    except Exception:  # noqa: BLE001
        return False


def commands(work: Path) -> dict:
    """name -> (argv, outputs checked, validator)."""
    m = work / "resnet8_kd.onnx"
    shutil.copy(ROOT / "models" / "resnet8_kd_eurosat64.onnx", m)
    out_c = work / "c" / "r8.int8.onnx"
    out_c.parent.mkdir(exist_ok=True)
    shutil.copy(ROOT / "models" / "resnet8_kd_eurosat64.int8-minmax.onnx", out_c)
    out_e = work / "e" / "r8.onnx"
    out_e.parent.mkdir(exist_ok=True)
    shutil.copy(ROOT / "models" / "resnet8_kd_eurosat64.onnx", out_e)
    run = work / "t"
    data = work / "data"
    if not (data / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "eo_edge.cli", "data", "prepare", "--source",
                        str(ROOT.parent / "shared" / "data" / "EuroSAT.zip"), "--out", str(data), "-q"], check=True,
                       env={**os.environ, "EO_EDGE_HOME": str(work / "home")}, timeout=900)
    return {
        "compile": ([sys.executable, "-m", "eo_edge.cli", "compile", str(m), "--int8", "--method", "percentile",
                     "-o", str(out_c), "-q"], [out_c], _onnx_ok),
        "export": ([sys.executable, "-m", "eo_edge.cli", "export", str(ROOT / "models" / "resnet8_kd_eurosat64.pt"),
                    "-o", str(out_e), "--parity-images", "64", "-q"], [out_e], _onnx_ok),
        "train": ([sys.executable, "-m", "eo_edge.cli", "train", "--arch", "resnet8", "--epochs", "3", "--limit-train",
                   "512", "--batch-size", "64", "--threads", "2", "--data", str(data), "--no-resume", "--out", str(run), "-q"],
                  [run / "last.pt", run / "best.pt"], _ckpt_ok),
    }


def kill_loop(name: str, argv: list[str], outs: list[Path], ok, kills: int, rng: random.Random, env: dict) -> dict:
    counts = {"kills": 0, "previous_intact": 0, "new_complete": 0, "absent": 0, "corrupt": 0,
              "temporaries_after_kills": 0, "temporaries_after_final_run": None, "final_rc": None}
    for _ in range(2):  # the first run fills caches (calibration ranges, ...): time the second
        t0 = time.perf_counter()
        first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
        if first.returncode != 0:
            raise RuntimeError(f"{name}: {first.stderr.strip().splitlines()[-1:]}")
    d = counts["seconds_per_run"] = time.perf_counter() - t0
    for _ in range(kills):
        before = {o: _sha(o) for o in outs}
        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.9) * d)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            counts["kills"] += 1
        p.wait()
        for o in outs:
            if not o.exists():
                counts["absent"] += 1
            elif not ok(o):
                counts["corrupt"] += 1
            elif _sha(o) == before[o]:
                counts["previous_intact"] += 1
            else:
                counts["new_complete"] += 1
        counts["temporaries_after_kills"] = len(_partials(outs[0].parent))
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    counts["final_rc"] = p.returncode
    counts["temporaries_after_final_run"] = len(_partials(outs[0].parent))
    counts["final_outputs_ok"] = all(o.exists() and ok(o) for o in outs)
    return counts


def run_all(work: Path, kills: int, seed: int) -> dict:
    rng = random.Random(seed)
    env = {**os.environ, "EO_EDGE_HOME": str(work / "home")}
    return {name: kill_loop(name, argv, outs, ok, kills, rng, env) for name, (argv, outs, ok) in commands(work).items()}


def main() -> None:
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as td:
        res = run_all(Path(td), a.kills, a.seed)
    rec = {"command": f"python benchmarks/crash-hygiene/kill.py --kills {a.kills} --seed {a.seed}",
           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": res}
    (Path(__file__).parent / "record.json").write_text(json.dumps(rec, indent=1) + "\n")
    print(json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
