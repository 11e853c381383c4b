"""The bench use case: resolve inputs, compile what is missing, measure, and hand the run to the report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..artifact.forms import BACKENDS, PRECISIONS, check_precisions
from ..assets import default_inputs
from ..defaults import CALIB_SIZE, MAX_DROP_PTS, POWER_IDLE_S, POWER_SETTLE_S, POWER_WINDOW_S, check_max_drop
from ..errors import EOEdgeError
from ..home import home_dir
from ..measure.artifacts import Artifact, _role, load_config, model_label
from ..measure.run import BenchOptions
from ..power.protocol import PowerProtocol


def prepare_artifacts(inputs: list[Path], precisions: list[str], cache: Path, log: Callable[[str], None],
                      backend: str = "onnxruntime", home: Path | None = None, explicit: bool = True) -> list[Artifact]:
    """Turn checkpoints / ONNX files into precision-carrying ONNX artifacts.

    A checkpoint is exported (needs torch) and, like an FP32 ONNX, compiled to each requested
    precision that is not already given; results are cached in ``cache`` by content hash.
    Compiled inputs (FP16/INT8 ONNX) are measured as they are. INT8 made here uses uint8
    activations for ONNX Runtime (its fast U8S8 form on x86) and symmetric int8 for TensorRT.
    ``precisions`` decides what FP32 inputs are compiled to, each precision only where no file of
    that precision and model was given (a given INT8-s8 file is measured; no INT8-u8 is made beside
    it); inputs given ``explicit``-ly are always measured (the shipped defaults are filtered by
    ``precisions`` too, and marked ``given=False``: one of them that fails its gate is left out).

    Raises:
        EOEdgeError: a missing or unreadable input, or nothing this backend can measure.
    """
    from ..artifact.config import ModelConfig
    from ..artifact.forms import (
        PRECISIONS,
        artifact_path,
        check_precisions,
        format_by_tag,
        format_of_metadata,
        get_format,
        int8_activations,
    )
    from ..artifact.onnx_meta import read_metadata
    from ..data.transforms import preprocess
    from ..fileio import sha256_file
    from ..quantize.convert import to_fp16, to_int8

    precisions = check_precisions(precisions)
    cache.mkdir(parents=True, exist_ok=True)
    seen: dict[tuple[str, str], Artifact] = {}
    fp32_sources: list[tuple[Path, dict]] = []
    given: set[str] = set()  # sources of the files given (not compiled here)
    for p in inputs:
        p = Path(p)
        if not p.exists():
            raise EOEdgeError(f"bench input not found: {p}")
        if p.is_dir():
            raise EOEdgeError(f"bench input {p} is a folder; give checkpoint, ONNX or engine files")
        engine = None
        if p.suffix == ".engine":  # a built engine: measured as is; its source ONNX gives MACs and params
            if backend != "tensorrt":
                raise EOEdgeError(f"{p.name} is a TensorRT engine: bench it with --backend tensorrt")
            from ..backends.trt_sidecar import load_sidecar

            side = load_sidecar(p)
            src = p.parent / str(side.get("source_onnx", ""))
            if not src.is_file() or sha256_file(src) != side.get("source_onnx_sha256"):
                raise EOEdgeError(f"{p.name}: its source ONNX {side.get('source_onnx')} (sha256 in the sidecar) must "
                                  "lie beside it; bench reads MACs and params from it")
            engine, p = p, src
        stem = p.name.split(".")[0]  # the file's own name, before a checkpoint is exported into the cache
        if p.suffix in (".pt", ".pth", ".ckpt"):
            from ..export import export

            onnx_p = cache / f"{p.stem}-{sha256_file(p)[:10]}.onnx"
            if not onnx_p.is_file():
                log(f"exporting {p.name} -> {onnx_p.name}")
                export(p, onnx_p)
            p = onnx_p
        import onnx

        from ..artifact.onnx_meta import check_io, metadata_channels, proto_io

        proto = onnx.load(str(p), load_external_data=False) if p.suffix == ".onnx" else None
        if proto is not None:
            check_io(*proto_io(proto), p.name, metadata_channels(proto))  # before any work
        md = read_metadata(proto if proto is not None else p)
        if "config" not in md:
            raise EOEdgeError(f"{p} carries no eo-edge metadata; export it with `eo-edge export`")
        cfg = ModelConfig.from_dict(md["config"], p.name)
        fmt = format_of_metadata(md)
        key = (p.name.split(".")[0] if fmt.precision != "fp32" else p.stem, fmt.tag)
        label = model_label(stem, cfg)
        seen[key] = Artifact(f"{label}-{fmt.tag}", p, cfg.arch, _role(cfg), fmt.precision, fmt.tag, source=key[0],
                             engine=engine, given=explicit)
        given.add(key[0])
        if fmt.precision == "fp32":
            fp32_sources.append((p, md, label))
    act = int8_activations(backend)
    have = {(a.source, a.precision) for a in seen.values()}  # (model, precision) that a given file already covers
    for p, md, label in fp32_sources:
        cfg = ModelConfig.from_dict(md["config"], p.name)
        for prec in precisions:
            fmt = get_format(prec, act)
            if prec == "fp32" or (p.stem, prec) in have:  # a file of this precision was given: measure it, make no other
                continue
            beside = artifact_path(p, fmt)  # what `eo-edge compile` wrote next to it, if made from this very file
            if beside.is_file() and read_metadata(beside).get("parent_sha256") == sha256_file(p):
                log(f"using {beside.name} (compiled from {p.name})")
                seen[(p.stem, fmt.tag)] = Artifact(f"{label}-{fmt.tag}", beside, cfg.arch, _role(cfg), prec, fmt.tag,
                                                   source=p.stem, given=explicit)
                continue
            out = artifact_path(cache / f"{p.stem}-{sha256_file(p)[:10]}.onnx", fmt)
            if not out.is_file():
                log(f"compiling {p.name} -> {prec}")
                if prec == "fp16":
                    to_fp16(p, out)
                else:
                    from ..data.resolve import calibration_set

                    calib = calibration_set(cfg, CALIB_SIZE, home, log=log)  # the model's own data (EuroSAT: calibration/)
                    x = preprocess(calib[0], cfg.input_size, cfg.mean, cfg.std)
                    to_int8(p, out, x, method="minmax", image_hashes=calib[2], cache_dir=cache / "calib",
                            activations=act)
            seen[(p.stem, fmt.tag)] = Artifact(f"{label}-{fmt.tag}", out, cfg.arch, _role(cfg), prec, fmt.tag,
                                               source=p.stem, compiled_by="bench")
    arts = []
    for a in seen.values():
        fmt = format_by_tag(a.tag)
        if a.precision not in precisions and not (explicit and a.compiled_by == "input" and a.source in given):
            continue
        if fmt.runs_on(backend):
            arts.append(a)
        else:
            log(f"skipping {a.path.name}: {backend} cannot run {a.tag} ({fmt.description})")
    if not arts:
        raise EOEdgeError(f"nothing to measure: no input is in --precisions {','.join(precisions)} on {backend}")
    # unique names (two inputs with the same label and precision are named by their source file)
    names: dict[str, int] = {}
    for a in arts:
        names[a.name] = names.get(a.name, 0) + 1
    for a in arts:
        if names[a.name] > 1:  # e.g. two ResNet8 checkpoints: name them by their source file
            a.name = f"{a.source}-{a.tag}"
    order = {"student": 0, "teacher": 1, "baseline": 2}
    return sorted(arts, key=lambda a: (order.get(a.role, 3), a.model, a.name.removesuffix("-" + a.tag),
                                       PRECISIONS.index(a.precision)))




#: What a bench config's ``protocol`` object may set: ``{key: BenchOptions field}``.
PROTOCOL_KEYS = {"warmup": "warmup", "runs": "runs", "rounds": "rounds", "throughput_batch": "throughput_batch",
                 "threads": "threads", "throughput_window_s": "throughput_window_s",
                 "throughput_rounds": "throughput_rounds"}


@dataclass
class BenchRequest:
    """What a bench run was asked for. ``None`` means "not given": the ``--config`` file's value
    applies, else the default (:class:`~eo_edge.measure.run.BenchOptions`, ``backend``
    ``onnxruntime``, every precision)."""

    inputs: list[Path] = field(default_factory=list)
    config: Path | None = None
    precisions: list[str] | None = None
    backend: str | None = None  # a runtime, or "all"/"auto": every runtime available here
    data: Path | None = None
    split: str = "test"
    runs: int | None = None
    warmup: int | None = None
    rounds: int | None = None
    batch: int | None = None
    threads: int | None = None
    throughput_s: float | None = None  # seconds per sustained-throughput round
    throughput_rounds: int | None = None
    corruptions: list[str] = field(default_factory=list)
    severities: str = "1-5"
    idle_s: float = POWER_IDLE_S  # power protocol, seconds (PowerProtocol)
    settle_s: float = POWER_SETTLE_S
    power_window_s: float = POWER_WINDOW_S
    peak: bool = True
    memory: bool = True
    max_drop: float = MAX_DROP_PTS
    faults: str | None = None
    out_dir: Path = Path("eo-edge-bench")
    home: Path | None = None
    scene: Path | None = None  # also classify this raster per artifact: scene throughput and real-time factor
    sensor: str = "sentinel-2-msi"


@dataclass
class BenchPlan:
    """A validated request: the files, precisions and runtimes to measure and the protocol."""

    paths: list[Path]
    precisions: list[str]
    backends: list[str]
    opts: BenchOptions
    config: dict = field(default_factory=dict)
    explicit: bool = True  # the paths were given (command line or config), not the shipped defaults


def _protocol(cfgd: dict, where: str) -> dict:
    proto = cfgd.get("protocol") or {}
    if not isinstance(proto, dict):
        raise EOEdgeError(f"{where}: 'protocol' must be an object of {', '.join(PROTOCOL_KEYS)}")
    unknown = sorted(set(proto) - set(PROTOCOL_KEYS))
    if unknown:
        raise EOEdgeError(f"{where}: unknown protocol key(s) {', '.join(unknown)}; known: {', '.join(PROTOCOL_KEYS)}")
    return proto


def plan(req: BenchRequest) -> BenchPlan:
    """Validate ``req`` before any work and resolve every "not given" value.

    Order of precedence, per setting: the explicit request, then the ``--config`` file
    (``models`` are added to the inputs; ``precisions``, ``backends``, ``batch_sizes`` (the largest
    is the throughput batch) and ``protocol`` (``warmup``, ``runs``, ``rounds``,
    ``throughput_batch``, ``threads``) apply when not given), then the defaults.

    Raises:
        EOEdgeError: a bad value, an unavailable runtime, a missing input (one line).
    """
    from ..backends import get_backend
    from ..measure.corruptions import CORRUPTIONS, parse_severities
    from ..measure.probes import check_batch_memory

    cfgd: dict = load_config(req.config) if req.config else {}
    where = f"bench config {req.config.name}" if req.config else ""
    proto = _protocol(cfgd, where) if cfgd else {}
    precs = check_precisions(req.precisions if req.precisions is not None else cfgd.get("precisions", list(PRECISIONS)),
                             " in --precisions")
    if req.backend is not None:
        names = [req.backend]
    else:  # not given: the config's, else every runtime installed here (the best this host can do)
        names = list(cfgd.get("backends") or ["all"])
    backends: list[str] = []
    for name in names:
        if name in ("all", "auto"):  # every runtime available here, side by side
            backends += [b for b in BACKENDS if get_backend(b).available()[0] and b not in backends]
            continue
        ok, why = get_backend(name).available()
        if not ok:
            raise EOEdgeError(why)
        if name not in backends:
            backends.append(name)
    power = PowerProtocol(idle_s=req.idle_s, settle_s=req.settle_s, window_s=req.power_window_s)
    power.check()
    d = BenchOptions()
    batch = req.batch if req.batch is not None else proto.get(
        "throughput_batch", max((int(b) for b in cfgd.get("batch_sizes") or []), default=d.throughput_batch))

    def pick(value, key, default):
        return value if value is not None else proto.get(key, default)

    opts = BenchOptions(warmup=int(pick(req.warmup, "warmup", d.warmup)), runs=int(pick(req.runs, "runs", d.runs)),
                        rounds=int(pick(req.rounds, "rounds", d.rounds)), throughput_batch=int(batch),
                        threads=pick(req.threads, "threads", None), backend=backends[0] if len(backends) == 1 else "all",
                        throughput_window_s=float(pick(req.throughput_s, "throughput_window_s", d.throughput_window_s)),
                        throughput_rounds=int(pick(req.throughput_rounds, "throughput_rounds", d.throughput_rounds)),
                        peak=req.peak, memory=req.memory, power=power,
                        engine_dir=home_dir(req.home) / "engines", max_drop=check_max_drop(req.max_drop))
    if opts.runs < 1 or opts.rounds < 1 or opts.warmup < 0 or opts.throughput_batch < 1:
        raise EOEdgeError("--runs, --rounds and --batch must be positive, --warmup non-negative")
    if not (opts.throughput_window_s > 0 and opts.throughput_window_s < 3600) or opts.throughput_rounds < 1:
        raise EOEdgeError("--throughput-s must be a positive number of seconds and --throughput-rounds at least 1")
    if req.faults:
        from .faults import parse_bits

        try:
            opts.faults = parse_bits(req.faults)
        except EOEdgeError as e:
            raise EOEdgeError(str(e).replace("--bits", "--faults")) from None
    for c in req.corruptions:
        if c not in CORRUPTIONS:
            raise EOEdgeError(f"unknown corruption {c!r}; known: {', '.join(CORRUPTIONS)}")
    opts.corruptions = list(req.corruptions)
    opts.severities = parse_severities(req.severities) if req.corruptions else []
    if req.split not in ("train", "val", "test", "all"):
        raise EOEdgeError(f"unknown --split {req.split!r}; choose train, val, test or all")
    paths = [Path(p) for p in req.inputs] + [Path(m) for m in cfgd.get("models", [])]
    explicit = bool(paths)
    if not paths:
        paths = default_inputs()
        if not paths:
            raise EOEdgeError("no inputs and no shipped models/*.onnx found")
    check_batch_memory(paths, opts.throughput_batch)
    if req.scene is not None:  # readable, and a sensor we know, before any work
        from ..data.raster import open_raster
        from ..scene.sensors import get_sensor

        get_sensor(req.sensor)
        open_raster(req.scene).close()
    return BenchPlan(paths=paths, precisions=precs, backends=backends, opts=opts, config=cfgd, explicit=explicit)


def run(req: BenchRequest, *, command: str = "", quiet: bool = False,
        log: Callable[[str], None] = print) -> tuple[dict, dict]:
    """``eo-edge bench``: plan, build the artifacts (compiling FP32 inputs to the other
    precisions), measure them all with one protocol, write ``bench.json``, ``report.md`` and the
    plots to ``req.out_dir`` (a previous run there is kept aside, never replaced silently).

    Returns:
        ``(run, files)``: the bench run dict (schema ``eo-edge-bench/1``) and the report files written.

    Raises:
        EOEdgeError: bad input (before any work), or a failing step (one line).
    """
    from ..data.resolve import measurement_data
    from ..fileio import write_json
    from ..measure.run import run_bench
    from ..report import write_report
    from ..report.writer import keep_previous_run

    p = plan(req)
    t0 = time.perf_counter()
    arts: list[Artifact] = []
    for b in p.backends:
        got = prepare_artifacts(p.paths, p.precisions, home_dir(req.home) / "bench-cache", log, backend=b, home=req.home,
                                explicit=p.explicit)
        for a in got:
            a.backend = b
            if len(p.backends) > 1:
                a.name = f"{a.name}@{b}"
        arts += got
    req.out_dir.mkdir(parents=True, exist_ok=True)
    ds, info = measurement_data(req.data, req.home, not quiet, log=log, split=req.split)
    prepared_s = time.perf_counter() - t0
    log(f"benchmarking {len(arts)} artifacts on {info['kind']} ({info['n_images']} images), "
        f"backend {', '.join(p.backends)}")
    result = run_bench(arts, ds, info, p.opts, command=command, progress=not quiet, log=log)
    result["phases_s"] = {"prepare": round(prepared_s, 2), **result.get("phases_s", {})}  # compile on the fly, data
    if req.scene is not None and not result.get("interrupted"):
        t1 = time.perf_counter()
        result["scene"] = scene_rows(req, arts, p.opts, log)
        result["phases_s"]["scene"] = round(time.perf_counter() - t1, 2)
    if not result["comparisons"]:
        log("[yellow]note:[/] no FP32 baseline (role 'baseline', e.g. MobileViTV2) among the inputs: "
            "the paper comparison is skipped")
    kept = keep_previous_run(req.out_dir)  # no run is silently replaced
    if kept is not None:
        log(f"the previous run in {req.out_dir} was kept in {kept}")
    write_json(req.out_dir / "bench.json", result)
    files = write_report(result, req.out_dir)
    return result, files


def scene_rows(req: BenchRequest, arts: list[Artifact], opts: BenchOptions, log: Callable[[str], None]) -> dict:
    """``bench --scene``: the scene pipeline (:func:`eo_edge.app.scene.scene_throughput`) per artifact
    and backend (ONNX Runtime and OpenVINO; TensorRT engines are measured by ``eo-edge scene`` on the
    board), at the run's threads and throughput batch. A failing artifact is listed with its reason."""
    from ..data.raster import describe, open_raster
    from ..scene.sensors import get_sensor
    from .scene import scene_throughput

    with open_raster(req.scene) as ds:
        info = describe(ds).record()
    rows = []
    for a in arts:
        if a.backend not in ("onnxruntime", "openvino") or a.path.suffix != ".onnx":
            continue
        log(f"scene: {a.name} on {req.scene.name}")
        try:
            r = scene_throughput(req.scene, a.path, a.backend, threads=opts.threads, batch=opts.throughput_batch,
                                 sensor=req.sensor)
        except EOEdgeError as e:
            rows.append({"name": a.name, "backend": a.backend, "error": str(e)})
            continue
        rows.append({"name": a.name, "backend": a.backend, "precision": a.precision, **r})
    return {"scene": info, "sensor": get_sensor(req.sensor).record(), "threads": opts.threads,
            "batch": opts.throughput_batch, "artifacts": rows,
            "how": "eo-edge scene's pipeline (read, nodata mask, preprocessing in the graph, inference, softmax) "
                   "over the whole scene, no outputs written; rates over the pipeline time; Mpx/s and km^2/s count "
                   "the whole scene (nodata and edge areas cost a read, not an inference)"}
