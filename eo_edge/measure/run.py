"""The bench run (:func:`run_bench`): one protocol for every number (accuracy, latency, throughput, MACs,
size, memory, power), and the paper's student-vs-MobileViT comparison re-measured.

Protocol (see ``docs/bench-schema.md`` for the JSON it writes):

* Accuracy: top-1 and macro precision/recall on the committed test split when the dataset
  is prepared, else on the shipped 1,000-image test subset (the report says which).
  Deterministic preprocessing, no test-time augmentation.
* Latency at batch 1: ``warmup`` untimed runs per artifact, then ``runs`` timed runs split
  into ``rounds`` blocks that are *interleaved* across artifacts (A B C A B C ...) in one
  process, so slow machine drift (thermal, frequency, neighbours) hits every artifact alike.
  Wall-clock per call with ``time.perf_counter_ns`` around the backend's run (host latency;
  TensorRT also reports GPU time from CUDA events). Reported: p50, p90, p99, mean, std (ms).
  Ratios between two artifacts are computed per round (median of A / median of B), and
  reported as the median and 5th-95th percentile of those per-round ratios.
* Throughput: images/s at a larger batch (``throughput_batch``), sustained: the median over
  interleaved rounds (A B C A B C ...) of ``throughput_window_s`` s of back-to-back calls on one
  preallocated batch each, after one untimed call (a third round only where the first two differ by more than 3 %); the
  record keeps the min and max of the rounds. The peak fraction uses this sustained figure.
* Cost: parameters, MACs and FLOPs of the ONNX graph at the deployed input size
  (:mod:`eo_edge.measure.flops`; FLOPs = 2 x MACs), file size (MB = 1e6 bytes), peak resident
  memory of a fresh process that loads the artifact and runs it (MB).
* Power: the best source present (:func:`eo_edge.power.best_sampler`: tegrastats > NVML >
  RAPL), idle baseline right before a timed throughput window; otherwise "n/a".
* Close to the limit: achieved MAC rate (MACs x images/s) beside the same backend's peak
  for that precision, measured with a large GEMM (:func:`gemm_peak`).
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import __version__
from ..artifact.forms import sidecar_path
from ..defaults import BENCH_BATCH, BENCH_ROUNDS, BENCH_RUNS, BENCH_WARMUP, MAX_DROP_PTS
from ..errors import EOEdgeError
from ..gate import gate_record
from ..hostinfo import busy_verdict, git_commit, host_load, host_record
from ..metrics.stats import wilson_interval
from ..power.protocol import PowerProtocol
from ..schemas import BENCH as SCHEMA
from .artifacts import Artifact
from .paper import compare_to_baseline, fastest_backends
from .probes import gemm_peak, peak_rss_many
from .timing import interleaved_latency, latency_record, percentiles, sustained_throughput, throughput_record
from ..defaults import THROUGHPUT_ROUNDS, THROUGHPUT_WINDOW_S


@dataclass
class BenchOptions:
    """Protocol knobs (counts of runs/images; threads = CPU threads per session)."""

    warmup: int = BENCH_WARMUP
    runs: int = BENCH_RUNS
    rounds: int = BENCH_ROUNDS
    throughput_batch: int = BENCH_BATCH
    throughput_window_s: float = THROUGHPUT_WINDOW_S  # seconds of back-to-back calls per round
    throughput_rounds: int = THROUGHPUT_ROUNDS  # interleaved rounds at most (a third only where two disagree)
    threads: int | None = None
    backend: str = "onnxruntime"
    corruptions: list[str] = field(default_factory=list)
    severities: list[int] = field(default_factory=list)
    power_interval_ms: int = 100
    power: PowerProtocol = field(default_factory=PowerProtocol)
    peak: bool = True
    memory: bool = True
    engine_dir: Path | None = None  # TensorRT engines (default: beside each ONNX); reused only when valid
    max_drop: float = MAX_DROP_PTS  # accuracy gate of compiled artifacts vs their FP32 parent, points (as compile's)
    faults: list[int] = field(default_factory=list)  # bit flips per trial (k); empty = no fault injection
    fault_repeats: int = 3
    fault_images: int = 500


def run_bench(arts: list[Artifact], data, data_info: dict, opts: BenchOptions, *, command: str = "",
              progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Measure every artifact with one protocol and compare students with the baseline.

    Args:
        arts: from :func:`prepare_artifacts`.
        data: test images (PreparedData); data_info: its description for the report.

    Returns:
        The bench run dict (schema ``eo-edge-bench/1``, documented in docs/bench-schema.md).
        On Ctrl-C, what was finished is returned with ``"interrupted": true``.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..artifact.config import ModelConfig
    from ..backends import get_backend
    from ..data.transforms import preprocess
    from ..metrics.evaluate import evaluate

    arts = list(arts)  # artifacts that cannot be opened are dropped from this run's list only
    threads = opts.threads or min(os.cpu_count() or 1, 4)
    for a in arts:
        a.backend = a.backend or opts.backend
    bes = {name: get_backend(name) for name in sorted({a.backend for a in arts})}
    for b in bes.values():
        ok, why = b.available()
        if not ok:
            raise EOEdgeError(why)
    versions: dict[str, str] = {}
    for b in bes.values():
        versions.update(b.versions())
    run: dict[str, Any] = {
        "schema": SCHEMA, "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eo_edge_version": __version__, "eo_edge_commit": git_commit(), "command": command,
        "host": host_record(threads, versions), "host_load": {"before": host_load()},
        "data": data_info,
        "protocol": {"warmup": opts.warmup, "runs": opts.runs, "throughput_batch": opts.throughput_batch,
                     "throughput_window_s": opts.throughput_window_s, "throughput_rounds": opts.throughput_rounds,
                     "throughput": f"median images/s over interleaved rounds of {opts.throughput_window_s:g} s of "
                                   "back-to-back calls on one preallocated batch, each after one untimed call (up to "
                                   f"{opts.throughput_rounds} rounds; a third only where the first two differ by more "
                                   "than 3 %)", "interleaved": True, "rounds": opts.rounds,
                     "threads": threads, "backend": opts.backend, "timer": "time.perf_counter_ns, host latency"},
        "peak": {}, "artifacts": [], "comparisons": [], "failed": [], "interrupted": False}
    if opts.backend != "onnxruntime":
        run["protocol"]["power"] = {"settle_s": opts.power.settle_s, "idle_s": opts.power.idle_s,
                                    "window_s": opts.power.window_s, "min_samples": opts.power.min_samples}
    cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    phases = run["phases_s"] = {}  # wall seconds per phase, in the order they ran (where the bench time goes)
    clock = [time.perf_counter(), None]

    def phase(name: str | None) -> None:  # close the running phase, open the next
        now = time.perf_counter()
        if clock[1] is not None:
            phases[clock[1]] = round(phases.get(clock[1], 0.0) + now - clock[0], 2)
        clock[:] = [now, name]

    try:
        with Progress(*cols, disable=not progress, transient=True) as prog:
            # open and evaluate
            phase("accuracy")
            t = prog.add_task("accuracy", total=len(arts))
            for a in list(arts):
                try:
                    be = bes[a.backend]
                    a.runner = (_trt_load(be, a, opts, log) if a.backend == "tensorrt"
                                else be.load(a.path, threads=threads))
                except EOEdgeError as e:  # one artifact that cannot be built/opened is a row, not an abort
                    log(f"[yellow]warning:[/] {a.name}: not measured: {e}")
                    run["failed"].append({"name": a.name, "path": str(a.path), "precision": a.precision,
                                          "error": str(e)})
                    arts.remove(a)
                    prog.advance(t)
                    continue
                a.cfg = ModelConfig.from_dict(a.runner.metadata["config"], a.path.name)
                rep, a.logits, a.labels = evaluate(a.runner.infer, data, a.cfg.input_size, a.cfg.mean, a.cfg.std,
                                                   a.cfg.class_names, batch_size=64, progress=False,
                                                   temperature=a.cfg.temperature, decision=a.cfg.decision,
                                                   return_logits=True)
                n_ok = int((a.logits.argmax(1) == a.labels).sum())
                dq = rep["decision"]
                a.result = {"name": a.name, "model": a.model, "role": a.role, "precision": a.precision,
                            "backend": a.backend, "path": str(a.path), "input_size": a.cfg.input_size,
                            "compiled_by": a.compiled_by,
                            "accuracy": {**{k: rep[k] for k in ("top1", "macro_precision", "macro_recall", "macro_f1",
                                                                "n_images")},
                                         "ci95": list(wilson_interval(n_ok, len(a.labels)))},  # Wilson 95 %
                            # confidence quality (decision.decision_quality: ECE over 15 bins, NLL, Brier at the
                            # model's temperature T, and at T = 1)
                            "calibration": {"ece_pct": rep["ece_pct"], "nll": rep["nll"], "brier": rep["brier"],
                                            "temperature": dq["temperature"], "uncalibrated": dq["uncalibrated"],
                                            "bins": rep["calibration"]["bins"]},  # reliability diagram
                            # selective classification: AURC, the stored keep rule checked here, the best possible
                            "decision": {"aurc_pct": dq["aurc_pct"], "at_threshold": dq["at_threshold"],
                                         "best_on_this_split": dq["best_on_this_split"],
                                         "risk_coverage": dq["risk_coverage"]}}
                prog.advance(t)
            _gate_compiled(arts, opts.max_drop, log)
            arts, run["left_out"] = leave_out_failing(arts, log)
            # interleaved batch-1 latency
            xs = {a.name: preprocess(np.asarray(data.images[:1]), a.cfg.input_size, a.cfg.mean, a.cfg.std) for a in arts}
            phase("latency")
            t = prog.add_task("latency (interleaved)", total=len(arts) * max(1, opts.runs // opts.rounds) * opts.rounds)
            from ..backends.base import Runner

            device_ms: dict[str, list[float]] = {a.name: [] for a in arts}

            def timed_call(r, x, dev: list) -> None:
                r.infer(x)
                tm = r.timing()  # the device time of this call (TensorRT: CUDA events)
                if tm and "gpu_ms" in tm:
                    dev.append((float(tm["gpu_ms"]), float(tm.get("h2d_ms", np.nan)), float(tm.get("d2h_ms", np.nan))))

            # only runners that measure device time pay for reading it inside the timed loop
            fns = [(lambda r=a.runner, x=xs[a.name], d=device_ms[a.name]: timed_call(r, x, d))
                   if type(a.runner).timing is not Runner.timing else (lambda r=a.runner, x=xs[a.name]: r.infer(x))
                   for a in arts]
            rounds = interleaved_latency(fns, opts.warmup, opts.runs, opts.rounds, lambda n: prog.advance(t, n))
            for a, rr in zip(arts, rounds):
                s = np.concatenate(rr)
                a.result["latency_ms"] = latency_record(s)
                a.result["_rounds"] = rr
                dev = device_ms[a.name][-len(s):]  # the timed calls (warm-up left out)
                if dev:  # GPU compute, and the copies around it, per timed call (trtexec's split)
                    d = np.array(dev)
                    a.result["device_latency_ms"] = {"batch": 1, "timer": "CUDA events", **percentiles(d[:, 0]),
                                                     "h2d": percentiles(d[:, 1]), "d2h": percentiles(d[:, 2])}
            # throughput (+ power)
            from ..power import best_sampler
            from ..power.protocol import measure_power

            sampler = best_sampler(opts.power_interval_ms)
            batches = []
            for a in arts:
                xb = preprocess(np.asarray(data.images[: opts.throughput_batch]), a.cfg.input_size, a.cfg.mean, a.cfg.std)
                if len(xb) < opts.throughput_batch:
                    xb = np.concatenate([xb] * (opts.throughput_batch // len(xb) + 1))[: opts.throughput_batch]
                batches.append(np.ascontiguousarray(xb, dtype=np.float32))
            phase("throughput")
            t = prog.add_task("throughput", total=len(arts) * max(1, min(2, opts.throughput_rounds)))
            rates = sustained_throughput([a.runner.infer for a in arts], batches, opts.throughput_window_s,
                                         opts.throughput_rounds, progress=lambda k: prog.advance(t, k))
            phase("power")
            t = prog.add_task("power", total=len(arts))
            for a, xb, rr in zip(arts, batches, rates):
                power: dict[str, Any] = {"source": "n/a"}
                if sampler is not None:
                    try:
                        power = measure_power(sampler, a.runner.infer, xb, opts.power)
                        if power.get("warning"):
                            log(f"[yellow]warning:[/] {a.name}: {power['warning']}")
                    except Exception as e:  # noqa: BLE001 - a failing power source must not lose the run
                        power = {"source": "n/a", "error": str(e).splitlines()[0][:200]}
                a.result["throughput"] = throughput_record(rr, opts.throughput_batch, opts.throughput_window_s)
                a.result["power"] = power
                prog.advance(t)
            # cost
            from .flops import count_macs

            phase("cost")
            t = prog.add_task("MACs, size, memory", total=len(arts))
            rss = (peak_rss_many([(a.path, a.backend) for a in arts], opts.throughput_batch, threads)
                   if opts.memory else [None] * len(arts))  # one fresh process per artifact, side by side
            macs: dict[tuple[Path, int], dict] = {}  # one count per file and input size (runtimes share the file)
            for a, rss_mb in zip(arts, rss):
                key = (a.path, a.cfg.input_size)
                c = macs[key] = macs.get(key) or count_macs(a.path, a.cfg.input_size)
                md_params = a.runner.metadata.get("params")
                a.result.update({"params": int(md_params if md_params else c["params"]),
                                 "params_source": "PyTorch trainable parameters (export metadata)" if md_params
                                 else "ONNX initializers (BatchNorm folded)", "params_onnx": int(c["params"]),
                                 "macs": int(c["macs"]), "flops": int(c["flops"]),
                                 "macs_input_size": a.cfg.input_size, "size_mb": a.path.stat().st_size / 1e6,
                                 **({"engine_size_mb": a.engine.stat().st_size / 1e6,
                                     "device_memory_mb": getattr(a.runner, "device_memory_mb", None)}
                                    if a.engine else {}),
                                 "peak_rss_mb": rss_mb})
                prog.advance(t)
            # robustness
            if opts.corruptions:
                from .corruptions import corrupt

                phase("robustness")
                t = prog.add_task("robustness", total=len(opts.corruptions) * len(opts.severities) * len(arts))
                for name in opts.corruptions:
                    for sev in opts.severities:
                        cd = type(data)(corrupt(np.asarray(data.images), name, sev), data.labels, data.names,
                                        data.class_names)
                        for a in arts:
                            rep = evaluate(a.runner.infer, cd, a.cfg.input_size, a.cfg.mean, a.cfg.std,
                                           a.cfg.class_names, batch_size=64, progress=False)
                            a.result.setdefault("robustness", {}).setdefault(name, {})[str(sev)] = rep["top1"]
                            prog.advance(t)
            # fault tolerance: random bit flips in the stored weights (eo_edge.measure.faults)
            if opts.faults:
                phase("bit flips")
                t = prog.add_task("bit flips", total=len(arts))
                ort_paths = {a.path for a in arts if a.backend == "onnxruntime"}
                for a in arts:  # the campaign runs in ONNX Runtime: once per file
                    if a.backend == "onnxruntime" or a.path not in ort_paths:
                        a.result["faults"] = fault_tolerance(a, data, opts, threads)
                    prog.advance(t)
            # peak per precision
            probed = [b for b in bes if b in ("onnxruntime", "openvino")]  # TensorRT: no GEMM probe (yet)
            if opts.peak and probed:  # the GEMM probe runs in each backend measured, like with like
                pairs = sorted({(a.backend, a.precision) for a in arts if a.backend in probed})
                phase("GEMM peak")
                t = prog.add_task("GEMM peak", total=len(pairs))
                run["peak_by_backend"] = {}
                for be_name, prec in pairs:
                    run["peak_by_backend"].setdefault(be_name, {})[prec] = gemm_peak(prec, threads, backend=be_name)
                    prog.advance(t)
                run["peak"] = dict(run["peak_by_backend"].get(opts.backend if opts.backend in probed else probed[0], {}))
    except KeyboardInterrupt:
        run["interrupted"] = True
        log("[yellow]interrupted: keeping the measurements already finished[/]")
    finally:
        phase(None)
        for a in arts:
            if a.runner is not None:
                a.runner.close()
    for a in arts:
        pk = ((run.get("peak_by_backend") or {}).get(a.backend) or run["peak"]).get(a.precision, {}).get("gmacs_per_s")
        if "throughput" in a.result and "macs" in a.result:
            a.result["mac_rate_gmacs"] = a.result["macs"] * a.result["throughput"]["images_per_s"] / 1e9
            a.result["peak_fraction"] = a.result["mac_rate_gmacs"] / pk if pk else None
    run["host_load"]["after"] = host_load()
    spreads = {}
    for a in arts:
        rr = a.result.get("_rounds") or []
        meds = [float(np.median(r)) for r in rr if len(r)]
        if meds and min(meds) > 0:
            spreads[a.name] = max(meds) / min(meds)
    run["host_load"].update(busy_verdict(run["host_load"]["before"], run["host_load"]["after"], spreads))
    run["host_load"]["round_spread"] = spreads
    if run["host_load"]["busy"]:
        log("[yellow]warning:[/] the host was busy during this run (" + "; ".join(run["host_load"]["reasons"])
            + "): latencies may be inflated")
    run["comparisons"] = compare_to_baseline(arts)
    run["fastest_backend"] = fastest_backends([a.result for a in arts if a.result])
    for a in arts:
        a.result.pop("_rounds", None)
        if a.result:
            run["artifacts"].append(a.result)
    return run


def fault_tolerance(a: Artifact, data, opts: BenchOptions, threads: int | None) -> dict | None:
    """Top-1 of ``a`` with k random bits flipped in its stored weights (any bit position, the
    physical single-event-upset model), ``opts.fault_repeats`` seeded trials per k in
    ``opts.faults``, on a seeded sample of ``opts.fault_images`` of the bench images; run in ONNX
    Runtime on the artifact's ONNX (:func:`eo_edge.measure.faults.run_campaign`). ``None`` for an artifact
    measured on another backend when the same file is also measured on ONNX Runtime."""
    import onnx

    from ..data.transforms import preprocess
    from .faults import PRECISION_DTYPES, FaultModel, run_campaign

    rng = np.random.default_rng(0)
    n = len(a.labels)
    idx = np.sort(rng.choice(n, size=min(opts.fault_images, n), replace=False))
    xs = preprocess(np.asarray(data.images[idx]), a.cfg.input_size, a.cfg.mean, a.cfg.std)
    batches = [xs[i:i + 100] for i in range(0, len(xs), 100)]
    fm = FaultModel(onnx.load(str(a.path)), PRECISION_DTYPES[a.precision])
    res = run_campaign(fm, batches, a.labels[idx], opts.faults, ["any"], opts.fault_repeats, seed=0, threads=threads)
    return {"class": "any", "n_images": int(len(idx)), "repeats": opts.fault_repeats, "clean_top1": res["clean_top1"],
            "dtype": fm.dtypes()[0], "n_weights": fm.n_elements,
            "rows": [{k: r[k] for k in ("k", "mean_top1", "min_top1", "mean_drop", "worst_drop")} for r in res["rows"]]}


def _trt_load(be, a: Artifact, opts: BenchOptions, log: Callable[[str], None]):
    """Open ``a`` on TensorRT: an ``.engine`` as given; an ONNX through the engine cache
    (:meth:`~eo_edge.backends.tensorrt.TensorRTBackend.cached_engine`: reused only when its
    sidecar's source ONNX sha256, TensorRT version and device match; else built with the
    profile min 1, opt = max = the throughput batch, static for DLA)."""
    if a.engine is None:
        a.engine = be.cached_engine(a.path, opts.engine_dir or a.path.parent, precision=a.precision,
                                    opt_batch=opts.throughput_batch, log=log)
    return be.load(a.engine)


def _gate_compiled(arts: list[Artifact], max_drop: float, log: Callable[[str], None]) -> None:
    """The accuracy gate of ``eo-edge compile`` on every FP16/INT8 artifact of the run whose FP32
    parent is measured too: top-1 drop vs the parent on the bench images, its paired SE and
    top-1 agreement (:func:`eo_edge.metrics.logits.compare_logits`, the one logits comparator), passed
    when the drop is <= ``max_drop`` points. A failing artifact is still measured, with a warning
    and its gate shown in the report; the compile-time gate in its sidecar is kept beside it."""
    from ..metrics.logits import compare_logits

    parents = {(a.source, a.backend): a for a in arts if a.precision == "fp32" and a.logits is not None}
    for a in arts:
        p = parents.get((a.source, a.backend))
        if a.precision == "fp32" or a.logits is None or p is None or len(p.logits) != len(a.logits):
            continue
        c = compare_logits(p.logits, a.logits, a.labels)
        g = gate_record(c, max_drop, parent=p.name, parent_path=str(p.path), compile_gate=_sidecar_gate(a.path))
        a.result["gate"] = g
        if not g["passed"] and a.compiled_by != "bench" and a.given:  # a file the user gave: measured, marked failing
            log(f"[yellow]warning:[/] {a.name} (from {a.path}) fails the accuracy gate: top-1 drops {c['drop']:.2f} pts "
                f"(SE {c['drop_se']:.2f}) below {p.name} (> {max_drop} pts); make it with `eo-edge compile "
                f"--auto-fallback --max-drop {max_drop}` and bench that file")


def leave_out_failing(arts: list[Artifact], log: Callable[[str], None]) -> tuple[list[Artifact], list[dict]]:
    """Artifacts the user did not name (compiled here by bench, or a file of the built-in default set)
    whose gate fails are not measured further nor reported as deliverables: ``(kept, left out)``, one
    line logged per artifact left out (issue 33). A file the user passed stays, marked as failing."""
    kept, left = [], []
    for a in arts:
        g = (a.result or {}).get("gate")
        if (a.compiled_by == "bench" or not a.given) and g and not g["passed"]:
            what = "compiled here by bench" if a.compiled_by == "bench" else "a file of the built-in default set"
            why = (f"{what}, it fails its accuracy gate: top-1 {g['drop']:.2f} pts (SE "
                   f"{g['drop_se']:.2f}) below {g['parent']} (> {g['max_drop']} pts); `eo-edge compile --int8 "
                   f"--auto-fallback` makes one that passes, bench that file")
            log(f"left out {a.name}: {why}")
            left.append({"name": a.name, "precision": a.precision, "backend": a.backend, "path": str(a.path),
                         "reason": why, "gate": g})
        else:
            kept.append(a)
    return kept, left


def _sidecar_gate(path: Path) -> dict | None:
    """The gate ``eo-edge compile`` recorded in an artifact's ``.json`` sidecar, if any."""
    side = sidecar_path(path)
    try:
        import json

        rec = json.loads(side.read_text())
        arts = [x for x in rec.get("artifacts", []) if Path(str(x.get("artifact", ""))).name == path.name]
        return arts[0].get("gate") if arts else None
    except (OSError, ValueError, AttributeError):
        return None
