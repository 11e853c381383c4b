"""``eo-edge scene``: classify georeferenced rasters tile by tile, write a decision map and a
downlink plan, and measure the run against a sensor's pixel rate (:mod:`eo_edge.scene`)."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import schemas
from ..errors import EOEdgeError

GDAL_CACHE_MB = 64  # GDAL's block cache while reading scenes (its default is 5 % of RAM)
OUTPUTS = ("classes.tif", "classes.tif.aux.xml", "tiles.geojson", "downlink.json", "quicklook.png")


@dataclass
class SceneOptions:
    """Options of ``eo-edge scene`` (``None`` = not given: the model's or the scene's own value)."""

    backend: str = "auto"  # a runtime, or auto: the fastest one a bench record measured for the file, else onnxruntime
    tile: int | None = None  # must equal the model's input size
    stride: int | None = None  # default: the tile
    bands: str | None = None  # --bands: names or 1-based numbers
    scale: float | None = None  # multiplies the values (after GDAL scale/offset), e.g. 10000 for reflectance
    max_nodata: float = 0.0
    batch: int = 128
    threads: int | None = None
    threshold: float | None = None
    sensor: str = "sentinel-2-msi"
    bench_record: Path | None = None  # for backend auto (default ./eo-edge-bench/bench.json when present)
    preprocess: str = "graph"  # graph: cast and normalisation folded into the model (ONNX Runtime, OpenVINO); numpy


def model_value_scale(cfg) -> float:
    """The factor the model's training values were multiplied by before mean/std: recorded in its
    config (``extra.value_scale``) by ``eo-edge train``; else 1/255 for a 3-band model (RGB images in
    [0, 1], the ImageNet convention of every shipped RGB model) and 1 for other band counts."""
    v = (cfg.extra or {}).get("value_scale")
    return float(v) if v else (1.0 / 255.0 if cfg.in_chans == 3 else 1.0)


def pick_backend(model: Path, requested: str, record: Path | None, log: Callable[[str], None]) -> tuple[str, str]:
    """``(backend, why)``. ``auto``: the runtime with the highest measured throughput for this file in a
    bench record of this host (``record``, else ``./eo-edge-bench/bench.json``), among those installed;
    else onnxruntime."""
    from ..backends import get_backend

    if requested != "auto":
        ok, why = get_backend(requested).available()
        if not ok:
            raise EOEdgeError(why)
        return requested, "--backend"
    from ..hostinfo import cpu_name

    rec_path = record or Path("eo-edge-bench") / "bench.json"
    if rec_path.is_file():
        try:
            run = json.loads(rec_path.read_text())
        except ValueError:
            run = {}
        if (run.get("host") or {}).get("cpu") == cpu_name():
            rates = {}
            for a in run.get("artifacts", []):
                if Path(str(a.get("path", ""))).name == model.name and a.get("backend"):
                    ips = (a.get("throughput") or {}).get("images_per_s")
                    if ips and get_backend(a["backend"]).available()[0]:
                        rates[a["backend"]] = max(ips, rates.get(a["backend"], 0.0))
            if rates:
                best = max(rates, key=rates.get)
                return best, (f"auto: fastest for {model.name} in {rec_path} on this CPU "
                              f"({', '.join(f'{b} {v:,.0f} img/s' for b, v in sorted(rates.items()))})")
        elif run:
            log(f"backend auto: {rec_path} was measured on another CPU; using onnxruntime")
    return "onnxruntime", "auto: no bench record of this file on this host (eo-edge bench --backend all makes one)"


def scene_runner(art, backend: str, threads: int | None, dtype: str, pre, workdir: Path, graph: bool = True):
    """``(infer, folded)`` for one scene: with ``graph`` on ONNX Runtime and OpenVINO, a copy of the
    opened artifact ``art`` with the value mapping ``pre`` folded in front
    (:func:`eo_edge.scene.fold.fold_preprocessing`, raw tiles of ``dtype`` fed; written to ``workdir``),
    else the artifact as it is (float32 tiles from ``pre`` fed)."""
    from ..backends import get_backend
    from ..scene.fold import ONNX_TYPES, fold_preprocessing

    if graph and backend in ("onnxruntime", "openvino") and dtype in ONNX_TYPES:
        fp = Path(workdir) / f"folded-{dtype}.onnx"
        fp.write_bytes(fold_preprocessing(art.proto, pre.a, pre.b, dtype).SerializeToString())
        return get_backend(backend).load(fp, threads=threads).infer_raw, True
    return get_backend(backend).load(art.path, threads=threads).infer, False


def check_values(ds, bands: list[int], gdal_scales, gdal_offsets, scale: float, value_scale: float, cfg) -> None:
    """Refuse a scene whose values are clearly in other units than the model's training data (one
    line saying which ``--scale`` fits), judged on a decimated read of the scene's valid pixels: a
    float reflectance scene in [0, 1.5] fed to a model trained on digital numbers is the case."""
    if not np.issubdtype(np.dtype(ds.dtypes[0]), np.floating):
        return
    h, w = max(1, min(ds.height, 256)), max(1, min(ds.width, 256))
    v = ds.read(bands, out_shape=(len(bands), h, w)).astype(np.float64)
    ok = ds.dataset_mask(out_shape=(h, w)) > 0
    v = v[:, ok] * np.asarray(gdal_scales)[:, None] + np.asarray(gdal_offsets)[:, None]
    if v.size == 0:
        return
    p99 = float(np.percentile(np.abs(v), 99)) * scale
    expected = 255.0 if value_scale < 1 else float(np.max(np.abs(cfg.mean)))  # the training values' typical size
    if expected > 10 and p99 <= 1.5:
        hint = 255 if value_scale < 1 else 10000
        raise EOEdgeError(f"{Path(ds.name).name}: values up to {p99:.3g} look like reflectance in [0, 1], but the "
                          f"model was trained on values up to ~{expected:,.0f}: pass --scale {hint}")


def run_scene_command(scenes: list[Path], model: Path, out_dir: Path, o: SceneOptions, *, quiet: bool = False,
                      log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Classify each scene with ``model`` and write :data:`OUTPUTS` to ``out_dir`` (one scene) or
    ``out_dir/<scene stem>/`` (several), published together only when all four are written.

    Returns:
        One ``downlink.json`` record per scene (schema ``eo-edge-scene/1``, ``docs/scene-schema.md``).

    Raises:
        EOEdgeError: bad options, an unreadable model or scene, bands or values that do not fit the
            model, an output folder that is a scene's own folder (one line, before any work).
    """
    import rasterio

    from ..artifact.onnx_meta import open_artifact
    from ..data.raster import describe, map_bands, open_raster
    from ..scene.sensors import get_sensor

    if not scenes:
        raise EOEdgeError("give at least one scene")
    sensor = get_sensor(o.sensor)
    if not 0 <= o.max_nodata <= 1:
        raise EOEdgeError(f"--max-nodata is a fraction in [0, 1], got {o.max_nodata}")
    if o.batch < 1:
        raise EOEdgeError(f"--batch must be at least 1, got {o.batch}")
    if o.threshold is not None and not 0 <= o.threshold <= 1:
        raise EOEdgeError(f"--threshold is a probability in [0, 1], got {o.threshold}")
    if o.preprocess not in ("graph", "numpy"):
        raise EOEdgeError(f"--preprocess {o.preprocess!r}: choose graph or numpy")
    if o.scale is not None and not (o.scale > 0 and math.isfinite(o.scale)):
        raise EOEdgeError(f"--scale must be a positive number, got {o.scale}")
    if not model.is_file():
        raise EOEdgeError(f"model not found: {model}" if not model.exists() else f"{model} is a folder; give an ONNX file")
    if model.suffix != ".onnx":
        raise EOEdgeError(f"{model.name}: eo-edge scene runs ONNX artifacts (export a checkpoint with `eo-edge export`)")
    out_dir = Path(out_dir)
    for s in scenes:
        if s.exists() and out_dir.resolve() == s.resolve().parent:
            raise EOEdgeError(f"--out {out_dir} is the folder of {s.name}: its outputs ({', '.join(OUTPUTS)}) would be "
                              "written among the scenes; give another folder")
        if out_dir.exists() and not out_dir.is_dir():
            raise EOEdgeError(f"--out {out_dir} is a file; give a folder")
    backend, why = pick_backend(model, o.backend, o.bench_record, log)
    art = open_artifact(model)  # read, checked and hashed once; a runner is made per scene for its form
    cfg = art.config
    tile = o.tile if o.tile is not None else cfg.input_size
    if tile != cfg.input_size:
        raise EOEdgeError(f"--tile {tile} differs from the model's input size {cfg.input_size} px; tiles are not resized")
    stride = o.stride if o.stride is not None else tile
    if not 1 <= stride <= tile:
        raise EOEdgeError(f"--stride must be between 1 and the tile ({tile} px), got {stride}")
    model_bands = list((cfg.extra or {}).get("bands") or [])
    threshold = o.threshold if o.threshold is not None else float(cfg.decision.get("threshold", 0.0))
    thr_src = ("--threshold" if o.threshold is not None else "model config (eo-edge calibrate)"
               if "threshold" in cfg.decision else "none stored in the model: keep all")
    vscale = model_value_scale(cfg)
    # every scene opened and checked before any is classified
    opened, scene_bands = [], []
    env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)  # a tile row's blocks, not the scene
    env.__enter__()
    try:
        for s in scenes:
            ds = open_raster(s)
            opened.append(ds)
            ri = describe(ds)
            bands = map_bands(ri, model_bands, cfg.in_chans, o.bands)
            scene_bands.append(bands)
            if tile > ri.width or tile > ri.height:
                raise EOEdgeError(f"--tile {tile} px is larger than {s.name} ({ri.width} x {ri.height} px)")
            check_values(ds, bands, [ri.scales[b - 1] for b in bands], [ri.offsets[b - 1] for b in bands],
                         o.scale or 1.0, vscale, cfg)
        return [_one_scene(s, ds, art, out_dir if len(scenes) == 1 else out_dir / s.stem, o, tile, stride,
                           bands, threshold, thr_src, vscale, sensor, backend, why, quiet, log)
                for s, ds, bands in zip(scenes, opened, scene_bands)]
    finally:
        for ds in opened:
            ds.close()
        env.__exit__(None, None, None)


def _one_scene(path: Path, ds, art, dest: Path, o: SceneOptions, tile: int, stride: int,
               bands: list[int], threshold: float, thr_src: str, vscale: float, sensor, backend: str, why: str,
               quiet: bool, log: Callable[[str], None]) -> dict[str, Any]:
    from ..data.raster import describe
    from ..fileio import check_out_dir, staged
    from ..hostinfo import cpu_name
    from ..scene.outputs import classes_aux_xml, tiles_geojson, write_classes_tif, write_quicklook
    from ..scene.pipeline import CLASSIFIED, QUEUE_BATCHES, Preprocess, QuickSample, run_scene
    from ..scene.sensors import SENSORS, realtime_factors

    cfg, model = art.config, art.path
    ri = describe(ds)
    pre = Preprocess.of(cfg, [ri.scales[b - 1] for b in bands], [ri.offsets[b - 1] for b in bands], o.scale or 1.0,
                        vscale)
    if ri.crs is None:
        log(f"{path.name} has no CRS: working in pixel coordinates (classes.tif without a CRS, no tiles.geojson)")
    say = (lambda m: None) if quiet else log
    say(f"{path.name}: {ri.width} x {ri.height} px, {ri.count} bands {ri.dtype}"
        + (f", {ri.compression}" if ri.compression else "") + f"; tiles {tile} px, stride {stride}; "
        f"bands {bands} -> {cfg.arch} on {backend} ({why})")
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if quiet:
            return
        now = time.perf_counter()
        if now - last[0] > 5 or done == total:
            last[0] = now
            log(f"  {path.name}: tile rows {done}/{total}")

    with tempfile.TemporaryDirectory(prefix="eo-edge-scene.") as td:
        infer, folded = scene_runner(art, backend, o.threads, ri.dtype, pre, Path(td), graph=o.preprocess == "graph")
        sample = QuickSample.for_scene(ri.width, ri.height, len(bands))
        g, timing = run_scene(ds, infer, cfg.temperature, bands=bands, tile=tile, stride=stride,
                              pre=None if folded else pre, batch=o.batch, max_nodata=o.max_nodata,
                              use_mask=ri.has_mask, progress=progress, sample=sample)
    t_write = time.perf_counter()  # end to end = the pipeline + everything from here to the published outputs
    keep = (g.status == CLASSIFIED) & (np.nan_to_num(g.prob, nan=-1.0) >= threshold)
    counts = g.counts()
    n_cls = counts["classified"]
    class_names = list(cfg.class_names)
    per_class = {c: int(((g.klass == i) & (g.status == CLASSIFIED)).sum()) for i, c in enumerate(class_names)}
    kept_class = {c: int(((g.klass == i) & keep).sum()) for i, c in enumerate(class_names)}
    tile_bytes = tile * tile * ri.count * np.dtype(ri.dtype).itemsize
    dest.mkdir(parents=True, exist_ok=True)
    check_out_dir(dest / "downlink.json")
    with staged() as stage:
        write_classes_tif(stage.path(dest / "classes.tif", ".tif"), g, keep, class_names, ds.crs, ri.transform)
        stage.path(dest / "classes.tif.aux.xml", ".xml").write_text(classes_aux_xml(class_names))
        gj = None
        if ri.crs is not None:
            gj = tiles_geojson(ds, g, keep, class_names)
            stage.path(dest / "tiles.geojson", ".geojson").write_text(gj)
        sample.finish(ds, bands, ri.has_mask)
        write_quicklook(stage.path(dest / "quicklook.png", ".png"), sample, g, class_names,
                        f"{path.name}: {cfg.arch} ({model.name}), {n_cls} tiles classified, "
                        f"{int(keep.sum())} kept (p >= {threshold:.2f})")
        write_s = time.perf_counter() - t_write
        e2e_s = timing["pipeline_s"] + write_s  # the inference-only timing between them is not part of the run
        area_km2 = ri.pixel_area_km2 * ri.width * ri.height if ri.pixel_area_km2 is not None else None
        scene_mpx = ri.width * ri.height / 1e6
        inf_tps = timing["inference_only_tiles"] / timing["inference_only_s"] if timing["inference_only_s"] > 0 else None
        e2e_tps = n_cls / e2e_s if e2e_s > 0 else None
        e2e_mpx = scene_mpx / e2e_s
        md = art.metadata
        rec: dict[str, Any] = {
            "schema": schemas.SCENE, "scene": ri.record(), "model": {
                "path": str(model), "sha256": art.sha256, "arch": cfg.arch, "precision": md.get("precision"),
                "source_sha256": md.get("source_sha256"), "parent_sha256": md.get("parent_sha256"),
                "input_size": cfg.input_size, "classes": class_names, "temperature": cfg.temperature},
            "backend": backend, "backend_choice": why, "threads": o.threads,
            "host": {"cpu": cpu_name(), "logical_cpus": os.cpu_count()},
            "tiling": {"tile": tile, "stride": stride, "rows": g.rows, "cols": g.cols, "bands": bands,
                       "scale": o.scale or 1.0, "gdal_scales": [ri.scales[b - 1] for b in bands],
                       "gdal_offsets": [ri.offsets[b - 1] for b in bands], "model_value_scale": vscale,
                       "max_nodata": o.max_nodata, "batch": o.batch,
                       "preprocess": ("in the graph: Cast, Mul, Add before the model (raw tiles fed)" if folded
                                      else "numpy, in the reader thread (float32 tiles fed)"),
                       "prefetch_queue_batches": QUEUE_BATCHES,
                       "batch_mb": o.batch * len(bands) * tile * tile * (np.dtype(ri.dtype).itemsize if folded else 4) / 1e6},
            "memory": {"peak_rss_mb": peak_rss_mb(),
                       "bound": "the process (model, runtime) plus at most prefetch_queue_batches + 2 batches and "
                                "one tile row of the scene: the scene is never read whole"},
            "tiles": {"total": g.rows * g.cols, **counts, "kept": int(keep.sum()),
                      "abstained": int(n_cls - keep.sum())},
            "threshold": {"value": threshold, "source": thr_src},
            "per_class": {c: {"tiles": per_class[c], "kept": kept_class[c]} for c in class_names},
            "downlink": {"scene_bytes": ri.bytes, "kept_bytes": int(keep.sum()) * tile_bytes,
                         "kept_fraction": (int(keep.sum()) * tile_bytes / ri.bytes) if ri.bytes else None,
                         "tile_bytes": tile_bytes,
                         "note": "kept tiles at the scene's dtype and bands, uncompressed; tiles overlap when "
                                 "the stride is below the tile"},
            "throughput": {
                "end_to_end": {"seconds": e2e_s, "tiles_per_s": e2e_tps, "mpx_per_s": e2e_mpx,
                               "km2_per_s": area_km2 / e2e_s if area_km2 else None,
                               "includes": "read, nodata mask, preprocess, inference, softmax (the pipeline), then the keep "
                                           "decisions and writing every output"},
                "inference_only": {"tiles_per_s": inf_tps,
                                   "mpx_per_s": inf_tps * stride * stride / 1e6 if inf_tps else None,
                                   "km2_per_s": (inf_tps * stride * stride * ri.pixel_area_km2
                                                 if inf_tps and ri.pixel_area_km2 else None),
                                   "tiles": timing["inference_only_tiles"], "seconds": timing["inference_only_s"],
                                   "how": "the first 4 batches of this run re-run back to back after it, nothing else running, "
                                          "repeated for up to 2 s (or a quarter of the pipeline time)"},
                "end_to_end_vs_inference_only": (e2e_tps / inf_tps) if e2e_tps and inf_tps else None,
                "stages_s": {k: timing[k] for k in ("pipeline_s", "infer_s", "read_s", "preprocess_s")} | {
                    "write_s": write_s},
            },
            "sensor": sensor.record(),
            "realtime_factor": e2e_mpx / sensor.pixel_rate_mpx_s,
            "realtime_factors": realtime_factors(e2e_mpx),
            "sensors": [s.record() for s in SENSORS.values()],
            "outputs": [n for n in OUTPUTS if n != "tiles.geojson" or gj is not None],
        }
        if n_cls == 0:
            rec["note"] = ("no tile classified: every tile position is cut by the scene edge or holds nodata "
                           f"(edge {counts['edge']}, nodata {counts['nodata']})")
        stage.path(dest / "downlink.json", ".json").write_text(json.dumps(rec, indent=1, default=_json_default))
        stage.publish()
    return rec


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far (MB, Linux ``VmHWM``); None where unknown."""
    try:
        for ln in open("/proc/self/status"):
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1]) / 1024
    except OSError:
        pass
    return None


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


def scene_throughput(scene: Path, model: Path, backend: str, *, threads: int | None = None, batch: int = 128,
                     bands: str | None = None, scale: float | None = None, sensor: str = "sentinel-2-msi") -> dict:
    """The scene pipeline of ``eo-edge scene`` (read, nodata mask, preprocessing folded into the
    graph on ONNX Runtime and OpenVINO, inference, softmax) on ``model``, without writing outputs:
    what ``eo-edge bench --scene`` measures per artifact and backend.

    Returns:
        ``{"tiles", "tiles_per_s", "mpx_per_s", "km2_per_s", "inference_only_tiles_per_s",
        "realtime_factor", "realtime_factors", "seconds", "preprocess"}`` (rates over the pipeline
        time; Mpx and km^2 of the whole scene).

    Raises:
        EOEdgeError: as :func:`run_scene_command` for the scene and model.
    """
    import rasterio

    from ..artifact.onnx_meta import open_artifact
    from ..data.raster import describe, map_bands, open_raster
    from ..scene.pipeline import Preprocess, run_scene
    from ..scene.sensors import get_sensor, realtime_factors

    s = get_sensor(sensor)
    art = open_artifact(model)
    cfg = art.config
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), open_raster(scene) as ds, \
            tempfile.TemporaryDirectory(prefix="eo-edge-scene.") as td:
        ri = describe(ds)
        b = map_bands(ri, list((cfg.extra or {}).get("bands") or []), cfg.in_chans, bands)
        if cfg.input_size > min(ri.width, ri.height):
            raise EOEdgeError(f"the model's {cfg.input_size} px tiles are larger than {scene.name} ({ri.width} x {ri.height} px)")
        vscale = model_value_scale(cfg)
        check_values(ds, b, [ri.scales[i - 1] for i in b], [ri.offsets[i - 1] for i in b], scale or 1.0, vscale, cfg)
        pre = Preprocess.of(cfg, [ri.scales[i - 1] for i in b], [ri.offsets[i - 1] for i in b], scale or 1.0, vscale)
        infer, folded = scene_runner(art, backend, threads, ri.dtype, pre, Path(td))
        g, t = run_scene(ds, infer, cfg.temperature, bands=b, tile=cfg.input_size, stride=cfg.input_size,
                         pre=None if folded else pre, batch=batch, use_mask=ri.has_mask)
    n = g.counts()["classified"]
    mpx = ri.width * ri.height / 1e6 / t["pipeline_s"]
    area = ri.pixel_area_km2 * ri.width * ri.height if ri.pixel_area_km2 else None
    return {"tiles": n, "seconds": t["pipeline_s"], "tiles_per_s": n / t["pipeline_s"], "mpx_per_s": mpx,
            "km2_per_s": area / t["pipeline_s"] if area else None,
            "inference_only_tiles_per_s": (t["inference_only_tiles"] / t["inference_only_s"]
                                           if t["inference_only_s"] > 0 else None),
            "realtime_factor": mpx / s.pixel_rate_mpx_s, "realtime_factors": realtime_factors(mpx),
            "preprocess": "graph" if folded else "numpy"}
