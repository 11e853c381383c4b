"""What ``eo-edge scene`` writes: the decision map (``classes.tif``), one polygon per tile
(``tiles.geojson``), the downlink plan (``downlink.json``) and a picture (``quicklook.png``).

``classes.tif`` has one pixel per tile position: the scene's CRS, the scene's transform scaled by
the stride; three uint8 bands, nodata 255 where a position was not classified: 1 class index (the
class names in the band's tags ``CLASS_<i>`` and ``CLASS_NAMES``; category names and a colour table
in GDAL's ``classes.tif.aux.xml`` beside it, since TIFF holds a colour table only on single-band
files), 2 calibrated probability in whole percent (0-100), 3 keep flag (1 keep, 0 abstain).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .pipeline import CLASSIFIED, STATUS_NAMES, TileGrid

NODATA_U8 = 255
# a fixed colour per class index (EuroSAT's ten classes first; matplotlib's tab20 order after)
PALETTE = [(228, 196, 88), (34, 120, 50), (150, 200, 90), (120, 120, 120), (200, 60, 60), (170, 220, 140),
           (210, 130, 200), (240, 120, 40), (60, 140, 230), (20, 60, 160), (140, 86, 75), (227, 119, 194),
           (188, 189, 34), (23, 190, 207), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
           (196, 156, 148), (247, 182, 210)]


def colour(i: int) -> tuple[int, int, int]:
    return PALETTE[i % len(PALETTE)]


def write_classes_tif(path: Path, g: TileGrid, keep: np.ndarray, class_names: list[str], crs, transform) -> None:
    """The decision map as a GeoTIFF (see the module doc). ``transform`` is the scene's affine."""
    import rasterio
    from affine import Affine

    cls = np.where(g.status == CLASSIFIED, g.klass, NODATA_U8).astype(np.uint8)
    pct = np.where(g.status == CLASSIFIED, np.rint(np.nan_to_num(g.prob) * 100), NODATA_U8).astype(np.uint8)
    kp = np.where(g.status == CLASSIFIED, keep.astype(np.uint8), NODATA_U8).astype(np.uint8)
    t = Affine(*transform[:6]) @ Affine.scale(g.stride)
    with rasterio.open(path, "w", driver="GTiff", width=g.cols, height=g.rows, count=3, dtype="uint8",
                       nodata=NODATA_U8, crs=crs, transform=t, compress="deflate", photometric="minisblack") as dst:
        dst.write(np.stack([cls, pct, kp]))
        for b, d in enumerate(("class", "probability_pct", "keep"), start=1):
            dst.set_band_description(b, d)
        dst.update_tags(1, CLASS_NAMES=json.dumps(list(class_names)),
                        **{f"CLASS_{i}": n for i, n in enumerate(class_names)})
        dst.update_tags(2, UNITS="percent", MEANING="calibrated max softmax probability, softmax(logits / T)")
        dst.update_tags(3, MEANING="1 = keep (probability >= threshold), 0 = abstain")
        dst.update_tags(EO_EDGE="eo-edge scene decision map: one pixel per tile position; 255 = not classified "
                                "(cut by the scene edge, or nodata)")



def classes_aux_xml(class_names: list[str]) -> str:
    """GDAL's PAM sidecar of ``classes.tif`` (``classes.tif.aux.xml``): band 1's category names and
    colour table. TIFF holds a colour table only on single-band files, so GDAL (and QGIS) read
    these from the sidecar beside the file; the class names are in the file's own tags too."""
    from xml.sax.saxutils import escape

    cats = "".join(f"<Category>{escape(n)}</Category>" for n in class_names)
    entries = "".join('<Entry c1="{}" c2="{}" c3="{}" c4="255"/>'.format(*colour(i)) for i in range(len(class_names)))
    return ('<PAMDataset>\n  <PAMRasterBand band="1">\n    <Description>class</Description>\n'
            f"    <CategoryNames>{cats}</CategoryNames>\n    <ColorInterp>Palette</ColorInterp>\n"
            f"    <ColorTable>{entries}</ColorTable>\n  </PAMRasterBand>\n</PAMDataset>\n")


def tiles_geojson(ds, g: TileGrid, keep: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """One polygon per tile position (its tile's footprint), RFC 7946: EPSG:4326 lon/lat, exterior
    rings counter-clockwise; properties ``row``, ``col``, ``status``, ``class``, ``class_index``,
    ``probability`` (None where not classified), ``keep``."""
    from rasterio.warp import transform as warp

    t = ds.transform
    rr, cc = np.meshgrid(np.arange(g.rows), np.arange(g.cols), indexing="ij")
    c0, r0 = (cc * g.stride).ravel(), (rr * g.stride).ravel()
    corners = [(c0, r0), (c0, r0 + g.tile), (c0 + g.tile, r0 + g.tile), (c0 + g.tile, r0)]
    xs = np.concatenate([t.a * c + t.b * r + t.c for c, r in corners])
    ys = np.concatenate([t.d * c + t.e * r + t.f for c, r in corners])
    lon, lat = (np.asarray(v).reshape(4, -1) for v in warp(ds.crs, "EPSG:4326", xs.tolist(), ys.tolist()))
    feats = []
    for i, (r, c) in enumerate(zip(rr.ravel(), cc.ravel())):
        st = int(g.status[r, c])
        ring = [[round(float(lon[k, i]), 7), round(float(lat[k, i]), 7)] for k in (0, 1, 2, 3, 0)]
        if _signed_area(ring) < 0:  # counter-clockwise exterior (RFC 7946 section 3.1.6)
            ring = ring[::-1]
        k = int(g.klass[r, c])
        ok = st == CLASSIFIED
        feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                      "properties": {"row": int(r), "col": int(c), "status": STATUS_NAMES[st],
                                     "class": class_names[k] if ok else None, "class_index": k if ok else None,
                                     "probability": round(float(g.prob[r, c]), 5) if ok else None,
                                     "keep": bool(keep[r, c]) if ok else None}})
    return {"type": "FeatureCollection", "features": feats}


def _signed_area(ring: list[list[float]]) -> float:
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:]))


def write_quicklook(path: Path, ds, bands: list[int], g: TileGrid, class_names: list[str], title: str,
                    max_side: int = 1024) -> None:
    """The scene (its first three model bands, or the one band, percentile-stretched 2-98 % over
    valid pixels, read decimated: overviews where the file has them) under the class map
    (semi-transparent, classified positions only), with a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    f = max(1, int(np.ceil(max(ds.width, ds.height) / max_side)))
    h, w = max(1, ds.height // f), max(1, ds.width // f)
    show = bands[:3] if len(bands) >= 3 else bands[:1]
    img = ds.read(show, out_shape=(len(show), h, w)).astype(np.float32)
    valid = ds.dataset_mask(out_shape=(h, w)) > 0
    rgb = np.zeros((h, w, 3), np.float32)
    for i in range(len(show)):
        v = img[i][valid] if valid.any() else img[i].ravel()
        lo, hi = np.percentile(v, [2, 98]) if v.size else (0.0, 1.0)
        band = np.clip((img[i] - lo) / max(hi - lo, 1e-6), 0, 1)
        rgb[..., i] = band
    if len(show) == 1:
        rgb[..., 1] = rgb[..., 2] = rgb[..., 0]
    rgb[~valid] = 0
    # the class map on the quicklook's pixel grid: position of each quicklook pixel's scene pixel
    rows = np.minimum(((np.arange(h) + 0.5) * ds.height / h / g.stride).astype(int), g.rows - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * ds.width / w / g.stride).astype(int), g.cols - 1)
    k = g.klass[rows][:, cols]
    ok = g.status[rows][:, cols] == CLASSIFIED
    over = np.zeros((h, w, 4), np.float32)
    pal = np.asarray([colour(i) for i in range(len(class_names))], np.float32) / 255
    over[ok, :3] = pal[k[ok]]
    over[ok, 3] = 0.45
    fig, ax = plt.subplots(figsize=(8, 8 * h / w + 0.6), dpi=110)
    ax.imshow(rgb, interpolation="nearest")
    ax.imshow(over, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    present = sorted(set(int(x) for x in np.unique(g.klass[g.status == CLASSIFIED])))
    handles = [Patch(color=pal[i], label=class_names[i]) for i in present]
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=min(5, len(handles)),
                  fontsize=7, frameon=False)
    fig.savefig(path, format="png", bbox_inches="tight")
    plt.close(fig)
