"""`eo-edge scene`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..fileio import write_json
from .options import JsonOpt, QuietOpt
from .root import _log, app, out


@app.command("scene")
def scene_cmd(
    scenes: List[Path] = typer.Argument(..., metavar="SCENE...", help="Georeferenced rasters: GeoTIFF/COG (any compression), VRT, JP2."),
    model: Path = typer.Option(..., "--model", "-m", metavar="ONNX", help="The classifier: any eo-edge ONNX artifact (FP32, FP16, INT8)."),
    out_dir: Path = typer.Option(Path("eo-edge-scene"), "--out", metavar="DIR", help="Folder for classes.tif, tiles.geojson, downlink.json, quicklook.png (several scenes: DIR/<scene name>/)."),
    backend: str = typer.Option("auto", "--backend", metavar="NAME", help="onnxruntime, openvino, tensorrt, or auto: the fastest measured for this file on this host by `eo-edge bench` (./eo-edge-bench/bench.json or --bench-record), else onnxruntime."),
    tile: Optional[int] = typer.Option(None, "--tile", metavar="PX", help="Tile size; must equal the model's input size (the default)."),
    stride: Optional[int] = typer.Option(None, "--stride", metavar="PX", help="Step between tiles (default: the tile, no overlap)."),
    bands: Optional[str] = typer.Option(None, "--bands", metavar="LIST", help="Scene bands for the model's channels, by name (B04,B03,B02: the file's band descriptions) or number (4,3,2). Default: by name when both name them, else in order when the counts match."),
    scale: Optional[float] = typer.Option(None, "--scale", metavar="X", help="Multiply the values (after the file's scale/offset tags) by X, e.g. 10000 for a reflectance scene into a model trained on digital numbers."),
    max_nodata: float = typer.Option(0.0, "--max-nodata", metavar="FRACTION", help="Largest fraction of nodata pixels a classified tile may hold (default 0: none)."),
    batch: int = typer.Option(128, "--batch", metavar="N", help="Tiles per inference batch."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", help="Inference threads (default: the runtime's)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", metavar="P", help="Keep a tile when its calibrated probability >= P (default: the model's, from `eo-edge calibrate`, else keep all)."),
    sensor: str = typer.Option("sentinel-2-msi", "--sensor", metavar="NAME", help="The sensor the real-time factor is against: sentinel-2-msi, landsat-oli or planetscope."),
    bench_record: Optional[Path] = typer.Option(None, "--bench-record", metavar="FILE", help="bench.json that --backend auto reads."),
    preprocess: str = typer.Option("graph", "--preprocess", metavar="WHERE", help="graph: the cast and normalisation run inside the model (ONNX Runtime, OpenVINO: raw tiles are fed; the default), numpy: in the reader thread."),
    json_out: Optional[Path] = JsonOpt,
    quiet: bool = QuietOpt,
):
    """Classify georeferenced rasters tile by tile: a decision map, a downlink plan, and the real-time factor against the sensor.

    Tiles cut by the scene edge or holding nodata are counted and marked, never classified. Reading and preprocessing run in a thread beside inference (a queue of 4 batches bounds the memory); the scene is read window by window, never whole.

    Examples:
    eo-edge scene ../shared/data/scenes/landsat7-rgb-byte.tif \\
        --model models/resnet8_kd_eurosat64.int8-minmax.onnx --out S
    eo-edge scene ms/*.tif --model ms13.onnx --out MS
    eo-edge scene reflectance.tif --model resnet8.onnx --bands 4,3,2 --scale 255 \\
        --sensor landsat-oli
    """
    from ..app.scene import SceneOptions, run_scene_command

    o = SceneOptions(backend=backend, tile=tile, stride=stride, bands=bands, scale=scale, max_nodata=max_nodata,
                     batch=batch, threads=threads, threshold=threshold, sensor=sensor, bench_record=bench_record,
                     preprocess=preprocess)
    recs = run_scene_command(list(scenes), model, out_dir, o, quiet=quiet, log=_log)
    for r in recs:
        t, th = r["tiles"], r["throughput"]
        e, i = th["end_to_end"], th["inference_only"]
        name = Path(r["scene"]["path"]).name
        out.print(f"{name}: {t['classified']} of {t['total']} tiles classified (edge {t['edge']}, nodata {t['nodata']}), "
                  f"{t['kept']} kept at p >= {r['threshold']['value']:.3f} ({r['threshold']['source']}); downlink "
                  f"{r['downlink']['kept_bytes'] / 1e6:,.2f} of {r['downlink']['scene_bytes'] / 1e6:,.2f} MB", highlight=False)
        km2 = f", {e['km2_per_s']:,.1f} km²/s" if e.get("km2_per_s") else ""
        ikm2 = f", {i['km2_per_s']:,.1f} km²/s" if i.get("km2_per_s") else ""
        out.print(f"  end to end {e['tiles_per_s'] or 0:,.0f} tiles/s, {e['mpx_per_s']:,.2f} Mpx/s{km2}; "
                  f"inference only {i['tiles_per_s'] or 0:,.0f} tiles/s{ikm2} ({r['backend']})", highlight=False)
        out.print(f"  real-time factor vs {r['sensor']['title']} ({r['sensor']['pixel_rate_mpx_s']:.2f} Mpx/s): "
                  f"{r['realtime_factor']:.3f}" + ("" if r["realtime_factor"] >= 1 else " (does not keep up)"),
                  highlight=False)
        if r.get("note"):
            out.print(f"  {r['note']}", highlight=False)
    out.print(f"outputs in {out_dir}", highlight=False)
    if json_out:
        write_json(json_out, recs[0] if len(recs) == 1 else recs)
