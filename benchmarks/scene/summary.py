"""Render benchmarks/scene/README.md from the scene records (eo-edge-scene/1) it is given.

Usage: python benchmarks/scene/summary.py benchmarks/scene/*.json > benchmarks/scene/README.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(paths: list[str]) -> None:
    recs = [(Path(p), json.loads(Path(p).read_text())) for p in paths]
    s0 = recs[0][1]["scene"]
    print("# Scene benchmark: a Sentinel-2-tile-sized raster, tile by tile (issue 29)\n")
    print(f"Scene: {s0['width']:,} x {s0['height']:,} px, {s0['bands']} bands {s0['dtype']}, {s0['driver']} "
          f"({s0['compression'] or 'uncompressed'}), {s0['bytes'] / 1e6:,.0f} MB of pixels, "
          f"{s0['pixel_area_km2'] * 1e6:,.1f} m^2 per pixel (geodesic); built by "
          "`python benchmarks/scene/make_scene.py` (the 400 x 400 px centre of the real Landsat 7 scene in "
          "`../shared/data/scenes/`, mirror-tiled, 10 m pixels). Command: `bash benchmarks/scene/run.sh` "
          "(each model in its own process).\n")
    h = recs[0][1].get("host") or {}
    print(f"Host: {h.get('cpu', '?')}, {h.get('logical_cpus', '?')} logical CPUs; nothing else running.\n")
    print("Targets (issue 29): end to end >= 80 % of the inference-only tiles/s of the same run; peak RSS <= 1 GB.\n")
    print("| model | backend, threads | preprocessing | tiles classified | end to end tiles/s | inference-only tiles/s "
          "| end to end / inference-only | end to end Mpx/s | km^2/s | real-time factor vs Sentinel-2 MSI 10 m "
          "| peak RSS MB | wall s |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for p, r in recs:
        t = r["throughput"]
        e, i = t["end_to_end"], t["inference_only"]
        print(f"| `{Path(r['model']['path']).name}` | {r['backend']}, {r['threads']} | "
              f"{'graph' if r['tiling']['preprocess'].startswith('in the graph') else 'numpy'} | "
              f"{r['tiles']['classified']:,} | {e['tiles_per_s']:,.0f} | {i['tiles_per_s']:,.0f} | "
              f"{t['end_to_end_vs_inference_only'] * 100:.1f} % | {e['mpx_per_s']:,.2f} | {e['km2_per_s']:,.1f} | "
              f"{r['realtime_factor']:.3f} | {r['memory']['peak_rss_mb']:,.0f} | {e['seconds']:,.1f} |")
    r = recs[0][1]
    print(f"\nSensor: {r['sensor']['title']}: {r['sensor']['swath_km']} km swath x {r['sensor']['ground_speed_km_s']} km/s "
          f"ground speed = {r['sensor']['area_rate_km2_s']:,.0f} km^2/s = {r['sensor']['pixel_rate_mpx_s']:.2f} Mpx/s "
          f"at {r['sensor']['pixel_m']:g} m ({r['sensor']['source']}). Real-time factor = end-to-end Mpx/s / that rate; "
          ">= 1 keeps up with the sensor on one band grid.\n")
    print("Stages (s): " + "; ".join(
        f"`{Path(rr['model']['path']).name}`: " + ", ".join(f"{k} {v:.2f}" for k, v in rr["throughput"]["stages_s"].items())
        for _, rr in recs) + ". `infer_s` is inference inside the pipeline (the reader thread runs beside it on the "
        "same 2 cores); inference-only re-runs the first 4 batches afterwards with nothing else running.\n")
    print("Records: " + ", ".join(f"`{p.name}`" for p, _ in recs) + " (the `downlink.json` of each run, "
          "`docs/scene-schema.md`).")


if __name__ == "__main__":
    main(sys.argv[1:])
