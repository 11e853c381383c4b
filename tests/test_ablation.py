"""benchmarks/ablation.py: collects finished runs into the ablation table (mean, std over seeds)."""

import json
import shutil
import subprocess
import sys

from conftest import ROOT


def test_ablation_collects_real_training_records(tmp_path):
    runs = tmp_path / "ab" / "runs"
    runs.mkdir(parents=True)
    rec = json.loads((ROOT / "benchmarks" / "train_resnet8_eurosat64.json").read_text())
    shutil.copy(ROOT / "benchmarks" / "train_resnet8_eurosat64.json", runs / "resnet8-ce-s0.json")
    rec2 = {**rec, "seed": 1, "test": {**rec["test"], "top1": rec["test"]["top1"] - 1.0}}
    del rec2["command"]  # a record without its command line: the table shows the one the driver would run
    (runs / "resnet8-ce-s1.json").write_text(json.dumps(rec2))
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ablation.py"), "--collect-only", "--students", "resnet8",
                        "--methods", "ce,batch", "--seeds", "0,1", "--epochs", "18", "--out", str(tmp_path / "ab")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    table = json.loads((tmp_path / "ab" / "ablation.json").read_text())
    assert [(r["student"], r["method"]) for r in table["rows"]] == [("resnet8", "ce")]  # no batch runs yet
    s = table["rows"][0]["summary"]
    assert s["n_seeds"] == 2 and s["seeds"] == [0, 1]
    assert abs(s["top1"]["mean"] - (rec["test"]["top1"] - 0.5)) < 1e-9
    assert abs(s["top1"]["std"] - 2 ** -0.5) < 1e-9  # sample std of two values 1 apart
    md = (tmp_path / "ab" / "ablation.md").read_text()
    assert "| resnet8 | cross-entropy only | 2 | 96.02 ± 0.71 |" in md
    assert rec["command"] in md  # the command that actually ran, from the record
    assert "eo-edge train --arch resnet8 --data" in md and "--seed 1 --device auto" in md  # rebuilt for seed 1


def test_ablation_pairs_kd_rows_with_cross_entropy_by_seed(tmp_path):
    runs = tmp_path / "ab" / "runs"
    runs.mkdir(parents=True)
    rec = json.loads((ROOT / "benchmarks" / "train_resnet8_eurosat64.json").read_text())
    t = rec["test"]["top1"]
    for seed, ce, kd in ((0, t, t + 0.5), (1, t - 1.0, t - 0.2)):
        (runs / f"resnet8-ce-s{seed}.json").write_text(json.dumps({**rec, "seed": seed, "test": {**rec["test"], "top1": ce}}))
        (runs / f"resnet8-batch-s{seed}.json").write_text(json.dumps({**rec, "seed": seed, "test": {**rec["test"], "top1": kd}}))
        hist = runs / f"resnet8-batch-s{seed}"
        hist.mkdir()
        (hist / "history.json").write_text(json.dumps([{"rule_branch_fraction": {"all_below_low": 0.0, "all_below_high": 1.0,
                                                                                   "some_confident": 0.0, "all_confident": 0.0}}]))
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ablation.py"), "--collect-only", "--students", "resnet8",
                        "--methods", "ce,batch", "--seeds", "0,1", "--out", str(tmp_path / "ab")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    rows = json.loads((tmp_path / "ab" / "ablation.json").read_text())["rows"]
    kd = [r for r in rows if r["method"] == "batch"][0]
    assert kd["vs_ce"]["values"] == [0.5, 0.8] or all(abs(a - b) < 1e-9 for a, b in zip(kd["vs_ce"]["values"], [0.5, 0.8]))
    assert abs(kd["vs_ce"]["mean"] - 0.65) < 1e-9 and abs(kd["vs_ce"]["se"] - 0.15) < 1e-9  # std 0.2121 / sqrt 2
    assert kd["branches"]["all_below_high"] == 1.0
    assert "+0.65 ± 0.15" in (tmp_path / "ab" / "ablation.md").read_text()


def test_rule_analysis_branches_on_hand_made_logits():
    """benchmarks/rule_analysis.py: confident teachers take 'all_confident' (0.5 / 0.5), flat
    logits 'all_below_low' (weights 0); per-batch and per-sample fractions follow the mix."""
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("rule_analysis", ROOT / "benchmarks" / "rule_analysis.py")
    ra = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ra)
    lg = np.zeros((2, 100, 8, 10), np.float32)
    lg[:, :75, :, 0] = 20.0  # 75 % of the images: both teachers certain; 25 %: flat (confidence 0.1)
    rows = ra.analyse(lg, [1.0], batch=128, n_batches=200)
    r = rows[0]
    assert abs(r["per_sample"]["branches"]["all_confident"] - 0.75) < 1e-9
    assert abs(r["per_sample"]["branches"]["all_below_low"] - 0.25) < 1e-9
    assert abs(r["mean_confidence"][0] - (0.75 * 1.0 + 0.25 * 0.1)) < 1e-6
    # a batch mean is ~0.78 >= 0.6 for both teachers: the paper's rule weights them 0.5 / 0.5
    assert r["per_batch"]["branches"]["all_confident"] == 1.0 and r["per_batch"]["weights_mean"] == [0.5, 0.5]
    assert abs(r["per_sample"]["weights_mean"][0] - 0.375) < 1e-9  # 0.75 x 0.5 + 0.25 x 0
    assert "all_confident 100.0%" in ra.render(rows, ["a.pt", "b.pt"])


def test_ablation_states_whether_dynamic_beats_static(tmp_path):
    """The paper's question answered from the records: dynamic minus static, paired by seed,
    with a verdict that says 'within noise' when the difference is under 2 standard errors."""
    runs = tmp_path / "ab" / "runs"
    runs.mkdir(parents=True)
    rec = json.loads((ROOT / "benchmarks" / "train_resnet8_eurosat64.json").read_text())
    t = rec["test"]["top1"]
    for seed, st, dyn, smp in ((0, t, t + 0.1, t + 1.0), (1, t - 1.0, t - 1.2, t), (2, t - 0.5, t - 0.4, t + 0.6)):
        for method, v in (("static", st), ("batch", dyn), ("sample", smp)):
            (runs / f"resnet8-{method}-s{seed}.json").write_text(
                json.dumps({**rec, "seed": seed, "test": {**rec["test"], "top1": v}}))
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ablation.py"), "--collect-only", "--students",
                        "resnet8", "--seeds", "0,1,2", "--epochs", "18", "--out", str(tmp_path / "ab")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    v = {x["method"]: x for x in json.loads((tmp_path / "ab" / "ablation.json").read_text())["dynamic_vs_static"]}
    assert abs(v["batch"]["mean"] - 0.0) < 1e-9 and v["batch"]["n_pairs"] == 3  # +0.1, -0.2, +0.1
    assert abs(v["sample"]["mean"] - (1.0 + 1.0 + 1.1) / 3) < 1e-9
    md = (tmp_path / "ab" / "ablation.md").read_text()
    assert "resnet8, dynamic, per batch (paper): +0.00 ± 0.10 pts over 3 seed(s): within noise" in md
    assert "resnet8, dynamic, per sample: +1.03 ± 0.03 pts over 3 seed(s): better" in md


def test_ablation_rewrites_only_the_marked_readme_block(tmp_path):
    runs = tmp_path / "ab" / "runs"
    runs.mkdir(parents=True)
    rec = json.loads((ROOT / "benchmarks" / "train_resnet8_eurosat64.json").read_text())
    t = rec["test"]["top1"]
    for seed, (ce, st, kd) in enumerate(((t, t + 1.0, t + 1.1), (t - 1.0, t + 0.2, t + 0.1), (t - 0.5, t + 0.6, t + 0.8))):
        for m, v in (("ce", ce), ("static", st), ("batch", kd)):
            (runs / f"resnet8-{m}-s{seed}.json").write_text(json.dumps({**rec, "seed": seed, "test": {**rec["test"], "top1": v}}))
    readme = tmp_path / "README.md"
    head, tail = "# title\n\nbefore\n", "\nafter the table\n"
    readme.write_text(head + "<!-- ablation table (from benchmarks/ablation/ablation.json) -->\nold table\n"
                      "<!-- /ablation table -->" + tail)
    args = [sys.executable, str(ROOT / "benchmarks" / "ablation.py"), "--collect-only", "--students", "resnet8",
            "--methods", "ce,static,batch", "--seeds", "0,1,2", "--out", str(tmp_path / "ab")]
    p = subprocess.run(args + ["--readme", str(readme)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    text = readme.read_text()
    assert text.startswith(head) and text.endswith(tail) and "old table" not in text
    assert "| resnet8 | static KD (0.5 / 0.5) | 0, 1, 2 |" in text
    # dynamic minus static per seed: +0.1, -0.1, +0.2 -> mean +0.07, SE 0.09: within noise with 3 seeds
    assert "dynamic, per batch (paper) minus static: +0.07 ± 0.09 pts (3 seed(s), within noise)" in text
    bad = tmp_path / "NOMARK.md"
    bad.write_text("no markers here\n")
    p = subprocess.run(args + ["--readme", str(bad)], capture_output=True, text=True)
    assert p.returncode != 0 and "no ablation table markers" in p.stderr and "Traceback" not in p.stderr
    assert bad.read_text() == "no markers here\n"  # nothing lost
    swapped = "<!-- /ablation table -->\n<!-- ablation table (from benchmarks/ablation/ablation.json) -->\n"
    bad.write_text(swapped)  # markers out of order: refused before any work, not a traceback at the end
    p = subprocess.run(args + ["--readme", str(bad)], capture_output=True, text=True)
    assert p.returncode != 0 and "no ablation table markers" in p.stderr and "Traceback" not in p.stderr
    assert bad.read_text() == swapped


def test_ablation_reads_cross_entropy_rows_from_another_ablation(tmp_path):
    """A teacher-pair ablation (--ce-runs) pairs its KD rows with the CE records of the main
    ablation (CE uses no teacher) and refuses, before any work, a folder that lacks one."""
    rec = json.loads((ROOT / "benchmarks" / "train_resnet8_eurosat64.json").read_text())
    t = rec["test"]["top1"]
    ce_runs, runs = tmp_path / "main" / "runs", tmp_path / "pair" / "runs"
    ce_runs.mkdir(parents=True)
    runs.mkdir(parents=True)
    for seed, ce, kd in ((0, t, t + 0.4), (1, t - 1.0, t - 0.4)):
        (ce_runs / f"resnet8-ce-s{seed}.json").write_text(json.dumps({**rec, "seed": seed, "test": {**rec["test"], "top1": ce}}))
        (runs / f"resnet8-batch-s{seed}.json").write_text(json.dumps({**rec, "seed": seed, "test": {**rec["test"], "top1": kd}}))
    args = [sys.executable, str(ROOT / "benchmarks" / "ablation.py"), "--collect-only", "--students", "resnet8",
            "--methods", "ce,batch", "--out", str(tmp_path / "pair")]
    p = subprocess.run(args + ["--seeds", "0,1", "--ce-runs", str(ce_runs)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    table = json.loads((tmp_path / "pair" / "ablation.json").read_text())
    kd = [r for r in table["rows"] if r["method"] == "batch"][0]
    assert abs(kd["vs_ce"]["mean"] - 0.5) < 1e-9 and kd["vs_ce"]["n_pairs"] == 2  # +0.4, +0.6
    assert table["schedule"]["ce_runs"] == str(ce_runs)
    assert not list(runs.glob("*-ce-*"))  # nothing copied or run in the pair folder
    before = (tmp_path / "pair" / "ablation.json").read_text()
    p = subprocess.run(args + ["--seeds", "0,1,2", "--ce-runs", str(ce_runs)], capture_output=True, text=True)
    assert p.returncode != 0 and "lacks resnet8-ce-s2.json" in p.stderr and "Traceback" not in p.stderr
    assert (tmp_path / "pair" / "ablation.json").read_text() == before  # refused up front, nothing rewritten


def test_rule_analysis_threshold_sweep_moves_the_per_batch_branch():
    """benchmarks/rule_analysis.py: with every batch-mean confidence at 0.5 the paper's 0.4 / 0.6
    takes 'all_below_high' in every batch, 0.3 / 0.5 'all_confident' (a confidence at the
    threshold counts as confident), 0.35 / 0.55 'all_below_high' again; per sample the branches
    follow each image's confidence; the batch-mean spread is reported."""
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("rule_analysis", ROOT / "benchmarks" / "rule_analysis.py")
    ra = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ra)
    lg = np.zeros((2, 64, 8, 2), np.float32)  # 2 classes: equal logits give confidence exactly 0.5
    rows = ra.threshold_sweep(lg, 1.0, [0.6, 0.5, 0.55], batch=16, n_batches=50)
    assert [r["low"] for r in rows] == [0.4, 0.3, 0.35]
    assert rows[0]["per_batch"]["branches"]["all_below_high"] == 1.0
    assert rows[1]["per_batch"]["branches"]["all_confident"] == 1.0 and rows[1]["per_batch"]["kd_share_mean"] == 0.5
    assert rows[2]["per_sample"]["branches"]["all_below_high"] == 1.0
    # branch 2 at c = 0.5, high = 0.6: w = max(0.5 - 0.1, 0.1) = 0.4 per teacher, lambda 0.4
    assert abs(rows[0]["per_batch"]["kd_share_mean"] - 0.4) < 1e-9
    md = ra.render_sweep(rows, 1.0)
    assert "| 0.30 / 0.50 | all_confident 100.0% (0.50) |" in md
    q = ra.analyse(lg, [1.0], batch=16, n_batches=50)[0]["batch_confidence_p01_p50_p99"]
    assert np.allclose(q, 0.5)
