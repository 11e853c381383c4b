"""Distillation ablation (issue 4): cross-entropy vs static KD vs dynamic per batch vs per sample.

Every row uses the same schedule (epochs, batch size, learning rate) and the same seeds; each
run is one `eo-edge train` / `eo-edge distill` command whose `--json` record is kept under
OUT/runs/, so an interrupted ablation resumes where it stopped (finished runs are skipped).
The table reports test-split top-1 and macro precision/recall, mean and sample standard
deviation over seeds.

Usage:
    python benchmarks/ablation.py --data ../shared/data/EuroSAT.zip \
        --teacher models/resnet16_eurosat64.pt --teacher models/mobilevitv2_100_eurosat64.pt \
        --epochs 30 --seeds 0,1,2 --resnet16-seeds 0,1,2 --out benchmarks/ablation
    python benchmarks/ablation.py --collect-only --out benchmarks/ablation   # re-render the table

Writes OUT/ablation.json and OUT/ablation.md (with the exact commands).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

METHODS = ("ce", "static", "batch", "sample")
LABELS = {"ce": "cross-entropy only", "static": "static KD (0.5 / 0.5)",
          "batch": "dynamic, per batch (paper)", "sample": "dynamic, per sample"}


def command(student: str, method: str, seed: int, a: argparse.Namespace, json_path: Path) -> list[str]:
    """The eo-edge command line of one ablation cell (same schedule for every method)."""
    common = ["--data", str(a.data), "--img-size", "64", "--epochs", str(a.epochs), "--batch-size", str(a.batch_size),
              "--lr", str(a.lr), "--seed", str(seed), "--device", a.device, "--json", str(json_path)]
    if a.home:
        common += ["--home", str(a.home)]
    if a.threads:
        common += ["--threads", str(a.threads)]
    run_dir = ["--out", str(json_path.with_suffix(""))]
    if method == "ce":
        return ["eo-edge", "train", "--arch", student, *common, *run_dir]
    teachers = [x for t in a.teacher for x in ("--teacher", str(t))]
    rule = [] if method == "static" or a.low is None else ["--low", str(a.low), "--high", str(a.high)]
    return ["eo-edge", "distill", "--student", student, *teachers, "--weighting", method,
            "--temperature", str(a.temperature), *rule, *common, *run_dir]


KEYS = ("top1", "macro_precision", "macro_recall", "macro_f1")


def _thresholds(schedule: dict) -> str:
    """``"0.25 / 0.45"`` when the ablation set the rule's thresholds, ``""`` for the paper's (distill's defaults)."""
    return f"{schedule['low']:g} / {schedule['high']:g}" if schedule.get("low") is not None else ""


def label(method: str, schedule: dict) -> str:
    """A row's loss name; dynamic rows name their thresholds when the ablation set them."""
    if method in ("batch", "sample") and _thresholds(schedule):
        return f"dynamic, per {method} (thresholds {_thresholds(schedule)})"
    return LABELS[method]


def summarize(records: list[dict]) -> dict:
    """Mean and sample standard deviation (None for one seed) of test top-1 and macro P/R/F1, in percent."""
    out: dict = {"n_seeds": len(records), "seeds": [r["seed"] for r in records]}
    for key in KEYS:
        v = [r["test"][key] for r in records]
        out[key] = {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else None, "values": v}
    return out


def paired_vs_ce(records: list[dict], ce: list[dict]) -> dict | None:
    """Test top-1 of a row minus a reference row (the cross-entropy row, or static KD for the
    dynamic-vs-static verdict), paired by seed: mean and its standard error over seeds
    (std / sqrt(n); None for one seed), in points."""
    by_seed = {r["seed"]: r["test"]["top1"] for r in ce}
    d = [r["test"]["top1"] - by_seed[r["seed"]] for r in records if r["seed"] in by_seed]
    if not d:
        return None
    return {"mean": statistics.fmean(d), "se": statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else None,
            "n_pairs": len(d), "values": d}


def branch_fractions(run_dir: Path) -> dict | None:
    """How often each branch of the paper's rule fired, averaged over a run's epochs (history.json)."""
    h = run_dir / "history.json"
    if not h.is_file():
        return None
    eps = [e["rule_branch_fraction"] for e in json.loads(h.read_text()) if "rule_branch_fraction" in e]
    if not eps:
        return None
    return {k: statistics.fmean(e[k] for e in eps) for k in eps[0]}


def _mean_std(d: dict) -> str:
    """``93.28 ± 1.11`` (mean ± sample std over seeds; the mean alone for one seed)."""
    return f"{d['mean']:.2f}" + (f" ± {d['std']:.2f}" if d["std"] is not None else "")


def _signed(d: dict | None) -> str:
    """``+1.16 ± 0.30`` (a paired difference ± its SE; no SE for one seed, no "-0.00"), ``""`` for None."""
    if d is None:
        return ""
    m = 0.0 if abs(d["mean"]) < 0.005 else d["mean"]
    return f"{m:+.2f}" + (f" ± {d['se']:.2f}" if d["se"] is not None else "")


def render(table: dict, rule_md: str | None = None) -> str:
    """Markdown table of the ablation (one row per student x method), then ``rule_md`` (the
    rule analysis of benchmarks/rule_analysis.py) when given."""
    s = table["schedule"]
    lines = [f"# Distillation ablation ({s['epochs']} epochs, batch {s['batch_size']}, AdamW lr {s['lr']}, "
             f"64 px, T = {s['temperature']}"
             + (f", rule thresholds {_thresholds(s)}" if _thresholds(s) else "")
             + "; test split, 4,050 images)", "",
             "| student | loss | seeds | top-1 % | macro precision % | macro recall % | macro F1 % "
             "| top-1 vs CE, pts (± SE) | rule branches (mean over epochs) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]

    for row in table["rows"]:
        r = row["summary"]
        vs = _signed(row.get("vs_ce"))
        br = row.get("branches")
        brs = "" if not br else ", ".join(f"{k} {v:.0%}" for k, v in br.items() if v)
        if row["method"] == "static":
            brs = "not used (fixed 0.5 / 0.5)"
        lines.append(f"| {row['student']} | {label(row['method'], s)} | {r['n_seeds']} | {_mean_std(r['top1'])} | "
                     f"{_mean_std(r['macro_precision'])} | {_mean_std(r['macro_recall'])} | {_mean_std(r['macro_f1'])} | "
                     f"{vs} | {brs} |")
    lines += ["", "± is the sample standard deviation over seeds; 'vs CE' is the seed-paired difference of test "
              "top-1 with its standard error over seeds. Commands (one per cell):", "", "```"]
    lines += [c for row in table["rows"] for c in row["commands"]]
    lines += ["```", ""]
    if table.get("dynamic_vs_static"):
        lines += ["## Does the paper's dynamic weighting beat static weighting?", "",
                  "Test top-1 of each dynamic row minus the static row, paired by seed (mean ± standard error over "
                  "seeds, a rough SE with 3 seeds); 'within noise' when |mean| < 2 SE, no verdict from fewer than 3 seeds. "
                  "For scale: one run's test top-1 near 94 % on 4,050 images has a binomial standard error of "
                  "about 0.37 pts.", ""]
        for v in table["dynamic_vs_static"]:
            lines.append(f"- {v['student']}, {label(v['method'], s)}: {_signed(v)} pts over {v['n_pairs']} seed(s): "
                         f"{verdict(v)}")
        lines.append("")
    if rule_md:
        lines += ["## What the paper's rule did with these teachers", "",
                  "From the cached teacher logits of every training image and D4 view (no training; "
                  "`benchmarks/rule_analysis.py`, table in `rule_analysis.md`):", "", rule_md, ""]
    return "\n".join(lines)


README_BEGIN = "<!-- ablation table (from benchmarks/ablation/ablation.json) -->"
README_END = "<!-- /ablation table -->"


def verdict(v: dict) -> str:
    """The dynamic-vs-static verdict of one paired difference (``dynamic_vs_static`` entry):
    'within noise' when |mean| < 2 SE, 'better'/'worse' otherwise, none from fewer than 3 seeds."""
    if v["n_pairs"] < 3:
        return "too few seeds for a verdict"
    return "within noise" if abs(v["mean"]) < 2 * v["se"] else ("better" if v["mean"] > 0 else "worse")


def render_readme(table: dict) -> str:
    """The short table README.md cites (top-1 and macro F1 mean ± std, paired difference vs
    cross-entropy ± SE, then the dynamic-vs-static verdicts), without the per-cell commands."""
    lines = ["| student | loss | seeds | test top-1 % (mean ± std) | macro F1 % | vs cross-entropy, pts (± SE, paired by seed) |",
             "| --- | --- | --- | ---: | ---: | ---: |"]
    for row in table["rows"]:
        r = row["summary"]
        lines.append(f"| {row['student']} | {label(row['method'], table['schedule'])} | {', '.join(map(str, r['seeds']))} | "
                     f"{_mean_std(r['top1'])} | {_mean_std(r['macro_f1'])} | {_signed(row.get('vs_ce'))} |")
    if table.get("dynamic_vs_static"):
        parts = [f"{v['student']} {label(v['method'], table['schedule'])} minus static: {_signed(v)} pts ({v['n_pairs']} seed(s), {verdict(v)})"
                 for v in table["dynamic_vs_static"]]
        lines += ["", "Dynamic vs static, paired by seed: " + "; ".join(parts) + "."]
    return "\n".join(lines)


def splice_readme(text: str, block: str) -> str:
    """``text`` with the part between README_BEGIN and README_END replaced by ``block``.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    i, j = text.find(README_BEGIN), text.find(README_END)
    if i < 0 or j < i:
        raise ValueError(f"no '{README_BEGIN}' ... '{README_END}' block")
    return text[:i + len(README_BEGIN)] + "\n" + block + "\n" + text[j:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/EuroSAT.zip"))
    ap.add_argument("--teacher", type=Path, action="append", default=[])
    ap.add_argument("--students", default="resnet8,resnet16")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", default="0,1,2", help="seeds of the ResNet8 rows (issue: at least 3)")
    ap.add_argument("--resnet16-seeds", default="0")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--temperature", type=float, default=5.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads per cell (2 cells at 1 thread each use 2 cores better than 1 at 2)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/ablation"))
    ap.add_argument("--collect-only", action="store_true", help="only re-render from the finished runs")
    ap.add_argument("--ce-runs", type=Path, default=None,
                    help="read the cross-entropy rows from this finished runs folder (another ablation's "
                         "OUT/runs: CE cells use no teacher, so a teacher-pair ablation reuses them; never rerun)")
    ap.add_argument("--static-runs", type=Path, default=None,
                    help="read the static-KD rows from this finished runs folder (static KD uses no thresholds, so "
                         "a thresholds ablation with the same teachers reuses them; never rerun)")
    ap.add_argument("--low", type=float, default=None,
                    help="the rule's low threshold in the dynamic rows, with --high (default: distill's, the paper's 0.4)")
    ap.add_argument("--high", type=float, default=None,
                    help="the rule's high threshold in the dynamic rows, with --low (default: distill's, the paper's 0.6)")
    ap.add_argument("--readme", type=Path, default=None,
                    help="also rewrite the short table between the ablation markers of this file (README.md)")
    a = ap.parse_args()
    if (a.low is None) != (a.high is None):
        sys.exit("error: give --low and --high together")
    methods = [m for m in a.methods.split(",") if m]
    if any(m not in METHODS for m in methods):
        sys.exit(f"error: --methods takes {', '.join(METHODS)}")
    if any(m != "ce" for m in methods) and not a.collect_only and len(a.teacher) < 1:
        sys.exit("error: KD rows need --teacher CKPT (the paper uses two)")
    if a.readme is not None:  # validate before any work
        try:
            splice_readme(a.readme.read_text() if a.readme.is_file() else "", "")
        except ValueError as e:
            sys.exit(f"error: {a.readme} has no ablation table markers: {e}")
    runs = a.out / "runs"
    reuse = {m: d for m, d in (("ce", a.ce_runs), ("static", a.static_runs)) if d is not None and m in methods}
    for m, d in reuse.items():  # validate before any work: every reused record must exist
        missing = [f"{st}-{m}-s{sd}.json" for st in a.students.split(",")
                   for sd in (a.seeds if st == "resnet8" else a.resnet16_seeds).split(",")
                   if not (d / f"{st}-{m}-s{sd}.json").is_file()]
        if missing:
            sys.exit(f"error: --{m}-runs {d} lacks {', '.join(missing)}")
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for student in a.students.split(","):
        seeds = [int(x) for x in (a.seeds if student == "resnet8" else a.resnet16_seeds).split(",")]
        for method in methods:
            recs, cmds = [], []
            for seed in seeds:
                jp = reuse.get(method, runs) / f"{student}-{method}-s{seed}.json"
                cmd = command(student, method, seed, a, jp)
                if not jp.is_file() and not a.collect_only:
                    print(f"[ablation] {shlex.join(cmd)}", flush=True)
                    subprocess.run(cmd, check=True)
                if jp.is_file():
                    recs.append(json.loads(jp.read_text()))
                    cmds.append(recs[-1].get("command") or shlex.join(cmd))  # the command that actually ran
            if recs:
                row = {"student": student, "method": method, "summary": summarize(recs), "commands": cmds,
                       "records": recs}
                if method != "ce":
                    bf = [b for s in seeds if (b := branch_fractions(reuse.get(method, runs) / f"{student}-{method}-s{s}"))]
                    row["branches"] = {k: statistics.fmean(b[k] for b in bf) for k in bf[0]} if bf else None
                rows.append(row)
    for row in rows:  # paired against the same student's cross-entropy row
        ce = [r for r in rows if r["student"] == row["student"] and r["method"] == "ce"]
        row["vs_ce"] = paired_vs_ce(row["records"], ce[0]["records"]) if ce and row["method"] != "ce" else None
    verdicts = []
    for student in a.students.split(","):  # the paper's question: does dynamic weighting beat static?
        st = [r for r in rows if r["student"] == student and r["method"] == "static"]
        for row in (r for r in rows if r["student"] == student and r["method"] in ("batch", "sample")):
            if st:
                d = paired_vs_ce(row["records"], st[0]["records"])
                if d is not None:
                    verdicts.append({"student": student, "method": row["method"], "vs": "static", **d})
    for row in rows:
        row.pop("records")
    table = {"schema": "eo-edge-ablation/1", "rows": rows, "dynamic_vs_static": verdicts,
             "schedule": {"epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr, "temperature": a.temperature,
                          "img_size": 64, "teachers": [str(t) for t in a.teacher],
                          "ce_runs": str(a.ce_runs) if a.ce_runs else None,
                          "static_runs": str(a.static_runs) if a.static_runs else None, "low": a.low, "high": a.high}}
    (a.out / "ablation.json").write_text(json.dumps(table, indent=2) + "\n")
    rule = a.out / "rule_analysis.md"
    md = render(table, rule.read_text().strip() if rule.is_file() else None)
    (a.out / "ablation.md").write_text(md)
    print(md)
    if a.readme is not None:
        tmp = a.readme.with_name(a.readme.name + ".tmp")
        tmp.write_text(splice_readme(a.readme.read_text(), render_readme(table)))
        tmp.replace(a.readme)
        print(f"[ablation] table written into {a.readme}")


if __name__ == "__main__":
    main()
