"""Build a Sentinel-2-tile-sized test scene from a real one (a benchmark input, not committed).

10,980 x 10,980 px (one Sentinel-2 MGRS tile at 10 m), 3 bands uint8, GeoTIFF tiled 512 x 512,
uncompressed: the 400 x 400 px centre of ../shared/data/scenes/landsat7-rgb-byte.tif (real Landsat 7
pixels, no nodata) mirror-tiled, in the source's CRS (EPSG:32618) with a 10 m pixel. Written
strip by strip (never the whole scene in memory).

Usage: python benchmarks/scene/make_scene.py OUT.tif [--size 10980]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

SRC = Path(__file__).resolve().parents[3] / "shared" / "data" / "scenes" / "landsat7-rgb-byte.tif"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", type=int, default=10980)
    a = ap.parse_args()
    with rasterio.open(SRC) as s:
        c = s.read(window=Window(s.width // 2 - 200, s.height // 2 - 200, 400, 400))  # (3, 400, 400)
        crs = s.crs
    block = np.concatenate([c, c[:, :, ::-1]], axis=2)  # mirror: no seams
    block = np.concatenate([block, block[:, ::-1, :]], axis=1)  # (3, 800, 800)
    n = a.size
    reps = -(-n // 800)
    row = np.tile(block, (1, 1, reps))[:, :, :n]  # (3, 800, n)
    prof = {"driver": "GTiff", "width": n, "height": n, "count": 3, "dtype": "uint8", "crs": crs,
            "transform": from_origin(300000.0, 4500000.0, 10.0, 10.0), "tiled": True, "blockxsize": 512,
            "blockysize": 512, "compress": "none", "BIGTIFF": "IF_SAFER"}
    with rasterio.open(a.out, "w", **prof) as d:
        for y in range(0, n, 800):
            h = min(800, n - y)
            d.write(row[:, :h], window=Window(0, y, n, h))
    print(f"{a.out}: {n} x {n} px, 3 bands uint8, {a.out.stat().st_size / 1e6:,.0f} MB")


if __name__ == "__main__":
    main()
