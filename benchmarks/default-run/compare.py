"""README command 1 (`eo-edge bench`, the built-in default) now and before issue 33, side by side on this host.

Issue 33 asks that the default run, now measuring every installed runtime, take at most 1.5x the
time it took before. This runs the default bench of a baseline commit (a temporary git worktree;
default: 204bea3, main when the issue was filed: ONNX Runtime only) and of this checkout,
alternately (base, new, base, new, ...), each with an empty EO_EDGE_HOME so every run is a first
run (it compiles what it does not find), and records per run: wall seconds, the peak RSS of the
largest process (MB), the artifacts measured, those left out, those reported as failing their gate,
and the temporaries (``*.partial*``) left anywhere under the home or the output folder. Writes
``record.json`` beside this file and prints the table and the ratio of the medians.

    python benchmarks/default-run/compare.py               # 2 runs each: about 10 min on 2 vCPUs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def one_run(src: Path, work: Path, tree: str, i: int) -> dict:
    """The default bench of the source tree ``src`` (``tree``: baseline or now, run ``i``) with an empty
    home; its wall time and outputs."""
    home, out = work / f"home-{tree}-{i}", work / f"out-{tree}-{i}"
    home.mkdir()
    env = {**os.environ, "EO_EDGE_HOME": str(home), "PYTHONPATH": str(src), "COLUMNS": "200"}
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "eo_edge.cli", "bench", "--out", str(out)], cwd=src, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    run = json.loads((out / "bench.json").read_text()) if (out / "bench.json").is_file() else {}
    arts = run.get("artifacts", [])
    temps = [str(f) for d in (home, out) for f in d.rglob("*.partial*")]
    return {"tree": tree, "wall_s": round(wall, 1), "exit": os.waitstatus_to_exitcode(status),
            "max_rss_mb": round(ru.ru_maxrss / 1024, 1), "artifacts": len(arts),
            "backends": sorted({a.get("backend", "onnxruntime") for a in arts}),
            "left_out": [x["name"] for x in run.get("left_out", [])],
            "reported_failing_gate": [a["name"] for a in arts if (a.get("gate") or {}).get("passed") is False],
            "phases_s": run.get("phases_s"), "host_busy": (run.get("host_load") or {}).get("busy"),
            "temporaries_left": temps, "log_tail": log.strip().splitlines()[-1:] if log.strip() else []}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="204bea3", help="git revision of the 'before' default run")
    ap.add_argument("--reps", type=int, default=2, help="runs of each tree, alternating")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("record.json"))
    a = ap.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip())
    work = Path(tempfile.mkdtemp(prefix="eo-edge-default-run-"))
    base = work / "baseline"
    try:
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), a.baseline], cwd=ROOT, check=True)
        runs = []
        for i in range(a.reps):
            for tag, src in (("baseline", base), ("now", ROOT)):
                r = one_run(src, work, tag, i)
                runs.append(r)
                print(f"{tag:9s} run {i + 1}: {r['wall_s']:6.1f} s, {r['artifacts']} artifacts on "
                      f"{', '.join(r['backends'])}, peak RSS {r['max_rss_mb']:.0f} MB, left out {len(r['left_out'])}, "
                      f"failing gate reported {len(r['reported_failing_gate'])}, temporaries {len(r['temporaries_left'])}",
                      flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    med = {t: statistics.median(r["wall_s"] for r in runs if r["tree"] == t) for t in ("baseline", "now")}
    ratio = med["now"] / med["baseline"]
    from eo_edge.hostinfo import cpu_name

    rec = {"command": f"python benchmarks/default-run/compare.py --baseline {a.baseline} --reps {a.reps}",
           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpu": cpu_name(),
           "logical_cpus": os.cpu_count(), "baseline": a.baseline, "now": head + ("+dirty" if dirty else ""),
           "runs": runs, "median_wall_s": med, "ratio_now_to_baseline": round(ratio, 3), "limit": 1.5}
    a.out.write_text(json.dumps(rec, indent=1) + "\n")
    print(f"median wall: baseline {med['baseline']:.1f} s, now {med['now']:.1f} s: ratio {ratio:.2f} (issue 33: <= 1.5)")


if __name__ == "__main__":
    main()
