"""Report sections on what a payload engineer decides with: uncertainty of top-1, each
artifact's provenance and accuracy gate, decision quality (calibration, selective
classification), and whether the host was quiet while it was measured."""

from __future__ import annotations

from .formatting import _artifacts, _get, _md_table, fmt, fmt_signed
from .schema import NA


def top1_ci(a: dict) -> str:
    """``lo-hi`` of the Wilson 95 % interval of an artifact's top-1 (percent)."""
    ci = _get(a, "accuracy", "ci95")
    return NA if not ci else f"{ci[0]:.1f}-{ci[1]:.1f}"


def gate_cell(a: dict) -> str:
    """The bench gate of a compiled artifact: ``pass``/``FAIL`` with its drop (points)."""
    g = a.get("gate")
    if not g:
        return "parent" if a.get("precision") == "fp32" else NA
    return f"{'pass' if g['passed'] else '**FAIL**'} ({fmt_signed(-g['drop'])})"


def provenance_section(run: dict) -> str:
    """Every artifact's file, who made it, and its accuracy gate against its FP32 parent."""
    rows = []
    for a in _artifacts(run):
        g = a.get("gate") or {}
        cg = g.get("compile_gate") or {}
        rows.append([a["name"], f"`{a.get('path', NA)}`", str(a.get("compiled_by", NA)),
                     NA if not g else f"{g['parent']}", NA if not g else f"{g['drop']:.2f} ± {g['drop_se']:.2f}",
                     NA if not g else f"{g['top1_agreement']:.1f}", NA if not g else f"<= {g['max_drop']:g}",
                     gate_cell(a), NA if not cg else f"{cg.get('drop', float('nan')):.2f} on {cg.get('n_images', '?')}"])
    if not rows:
        return ""
    commit = run.get("eo_edge_commit")
    return ("## Artifacts and accuracy gate\n\n"
            f"eo-edge {run.get('eo_edge_version', NA)}" + (f", commit `{commit}`" if commit else " (no git commit)")
            + ". `compiled by`: `input` = given or found beside its FP32 parent (same parent sha256), `bench` = "
            "compiled into the bench cache in this run. Every FP16/INT8 artifact goes through the gate of `eo-edge compile` "
            "against its FP32 parent on these images: top-1 drop in points ± its paired standard error, top-1 "
            "agreement in %; the compile-time gate (validation split) from its sidecar is shown beside it.\n\n"
            + _md_table(["Artifact", "File", "Compiled by", "FP32 parent", "Drop pts ± SE", "Agreement %", "Limit",
                         "Gate", "Compile gate (drop on val)"], rows, ["l"] * 4 + ["r"] * 3 + ["l", "l"]))


def decision_section(run: dict) -> str:
    """Calibration before/after temperature scaling and the keep/abstain rule, per artifact."""
    rows = []
    for a in _artifacts(run):
        c, d = a.get("calibration") or {}, a.get("decision") or {}
        if not c:
            continue
        un = c.get("uncalibrated") or {}
        at, best = d.get("at_threshold"), d.get("best_on_this_split") or {}
        t = c.get("temperature", 1.0)
        rows.append([
            a["name"], fmt(_get(a, "accuracy", "top1"), "pct"), NA if t == 1.0 else f"{t:.3f}",
            fmt(un.get("ece_pct", c.get("ece_pct")), "score"), NA if t == 1.0 else fmt(c.get("ece_pct"), "score"),
            fmt(un.get("nll", c.get("nll")), "score"), NA if t == 1.0 else fmt(c.get("nll"), "score"),
            fmt(d.get("aurc_pct"), "score"),
            NA if not at else f"{at['threshold']:.3f}",
            NA if not at else f"{at['coverage_pct']:.1f} / {at['accuracy_pct']:.2f}" + ("" if at["meets_target"] else " (misses)"),
            NA if not best else f"{best['coverage_pct']:.1f}" + ("" if best.get("reached") else " (not reached)")])
    if not rows:
        return ""
    tgt = next((a["decision"]["at_threshold"]["target_accuracy_pct"] for a in _artifacts(run)
                if (a.get("decision") or {}).get("at_threshold")), 99.0)
    return ("## Decision quality\n\n"
            "Confidence = the max softmax probability. ECE = expected calibration error over 15 equal-width bins "
            "(Guo et al., ICML 2017), in %; NLL in nats; 'before' at T = 1, 'after' with the model's post-hoc "
            "temperature T (fitted on validation by `eo-edge calibrate`, carried by every artifact of the model). "
            "AURC = area under the risk-coverage curve (Geifman & El-Yaniv, NeurIPS 2017), in % (lower is better). "
            f"Keep rule: keep an image when its calibrated confidence >= the model's threshold, fitted on validation "
            f"for {tgt:g} % accuracy; here checked on the data above (coverage % / accuracy % of the kept images). "
            f"'Best here' = the largest coverage reaching {tgt:g} % if the threshold were fitted on these images "
            "(an optimistic bound, not a deployable number).\n\n"
            + _md_table(["Artifact", "Top-1 %", "T", "ECE % before", "ECE % after", "NLL before", "NLL after",
                         "AURC %", "Threshold", "Kept % / acc. % at threshold", f"Best here: coverage % at {tgt:g} %"],
                        rows))


def host_load_section(run: dict) -> str:
    """Load average and CPU governor before/after the run, and the busy verdict."""
    hl = run.get("host_load")
    if not hl:
        return ""

    def la(rec: dict) -> str:
        v = rec.get("loadavg")
        return NA if not v else " / ".join(f"{x:.2f}" for x in v)

    b, a = hl.get("before") or {}, hl.get("after") or {}
    rows = [["Load average 1/5/15 min, before", la(b)], ["Load average 1/5/15 min, after", la(a)],
            ["CPU governor (cpu0)", str(b.get("governor") or NA)],
            ["CPU0 frequency MHz before / after", f"{b.get('cpu0_mhz') or NA} / {a.get('cpu0_mhz') or NA}"]]
    verdict = ("**busy or noisy**: " + "; ".join(hl.get("reasons") or [])) if hl.get("busy") else "quiet"
    return ("## Host load\n\n" + _md_table(["", ""], rows, ["l", "l"]) + f"\n\nVerdict: {verdict}. "
            + ("Latencies of a busy run are inflated and their spread wide: re-run on a quiet host before "
               "quoting them; the load average after includes the bench's own threads." if hl.get("busy")
               else "No other load before the run, and the rounds agree (the load average after includes the "
               "bench's own threads)."))


def paired_rows(c: dict) -> list[list[str]]:
    """Rows for a comparison table: the paired top-1 difference with its 95 % interval and McNemar p."""
    p = c.get("top1_paired")
    if not p:
        return []
    verdict = "within noise" if p["within_noise"] else "significant"
    return [["Top-1 difference, 95 % CI (paired, pts)", f"{p['ci95_pts'][0]:+.2f} to {p['ci95_pts'][1]:+.2f}", NA],
            ["McNemar exact p (discordant images)", f"{p['p_value']:.3g} ({p['a_only']} vs {p['b_only']}): {verdict}",
             NA]]


def fault_section(run: dict) -> str:
    """Top-1 under random bit flips in the stored weights (bench --faults), per artifact and k."""
    arts = [a for a in _artifacts(run) if a.get("faults")]
    if not arts:
        return ""
    ks = sorted({r["k"] for a in arts for r in a["faults"]["rows"]})
    rows = []
    for a in arts:
        f = a["faults"]
        by = {r["k"]: r for r in f["rows"]}
        rows.append([a["name"], str(a.get("role", NA)), f["dtype"], fmt(f["clean_top1"], "pct")]
                    + [NA if k not in by else f"{by[k]['mean_top1']:.1f} / {by[k]['min_top1']:.1f}" for k in ks])
    f0 = arts[0]["faults"]
    return ("## Fault tolerance\n\n"
            f"Top-1 % (mean / worst over {f0['repeats']} seeded trials) with k random bits flipped in the stored "
            f"weights (any bit position: the single-event-upset model), on {f0['n_images']} of the images, "
            "ONNX Runtime (`eo_edge.measure.faults`; `eo-edge faults` runs the full per-bit-class campaign). Float "
            "exponent bits can make one weight ~1e37 (FP32) or x65,536 (FP16); an int8 flip is bounded by 128 x "
            "its scale.\n\n"
            + _md_table(["Artifact", "Role", "Weights", "Clean %"] + [f"k = {k}" for k in ks], rows))


__all__ = ["decision_section", "fault_section", "gate_cell", "host_load_section", "paired_rows", "provenance_section", "top1_ci"]
