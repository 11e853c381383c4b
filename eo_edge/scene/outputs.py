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


def tiles_geojson(ds, g: TileGrid, keep: np.ndarray, class_names: list[str]) -> str:
    """One polygon per tile position (its tile's footprint) as GeoJSON text, RFC 7946: EPSG:4326
    lon/lat (7 decimals), exterior rings counter-clockwise, no ``crs`` member; properties ``row``,
    ``col``, ``status``, ``class``, ``class_index``, ``probability`` (null where not classified), ``keep``.
    Written as text directly (tens of thousands of tiles: no dict per feature)."""
    from rasterio.warp import transform as warp

    t = ds.transform
    rr, cc = np.meshgrid(np.arange(g.rows), np.arange(g.cols), indexing="ij")
    c0, r0 = (cc * g.stride).ravel(), (rr * g.stride).ravel()
    corners = [(c0, r0), (c0, r0 + g.tile), (c0 + g.tile, r0 + g.tile), (c0 + g.tile, r0)]
    xs = np.concatenate([t.a * c + t.b * r + t.c for c, r in corners])
    ys = np.concatenate([t.d * c + t.e * r + t.f for c, r in corners])
    lon, lat = (np.asarray(v).reshape(4, -1) for v in warp(ds.crs, "EPSG:4326", xs.tolist(), ys.tolist()))
    # counter-clockwise (RFC 7946 section 3.1.6): the signed area of (0, 1, 2, 3) decides the order
    area = sum(lon[k] * lat[(k + 1) % 4] - lon[(k + 1) % 4] * lat[k] for k in range(4))
    order = np.where(area[None, :] >= 0, np.arange(4)[:, None], np.array([0, 3, 2, 1])[:, None])
    lon, lat = np.take_along_axis(lon, order, 0), np.take_along_axis(lat, order, 0)
    names = [json.dumps(n) for n in class_names]
    st, kl, pr, kp = g.status.ravel(), g.klass.ravel(), g.prob.ravel(), keep.ravel()
    parts = []
    for i in range(len(st)):
        ring = ",".join(f"[{lon[k, i]:.7f},{lat[k, i]:.7f}]" for k in (0, 1, 2, 3, 0))
        if st[i] == CLASSIFIED:
            props = (f'"status":"classified","class":{names[kl[i]]},"class_index":{int(kl[i])},'
                     f'"probability":{float(pr[i]):.5f},"keep":{"true" if kp[i] else "false"}')
        else:
            props = f'"status":"{STATUS_NAMES[int(st[i])]}","class":null,"class_index":null,"probability":null,"keep":null'
        parts.append(f'{{"type":"Feature","geometry":{{"type":"Polygon","coordinates":[[{ring}]]}},'
                     f'"properties":{{"row":{i // g.cols},"col":{i % g.cols},{props}}}}}')
    return '{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}"


def _signed_area(ring: list[list[float]]) -> float:
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:]))


def write_quicklook(path: Path, sample, g: TileGrid, class_names: list[str], title: str) -> None:
    """The scene (the decimated sample the pipeline gathered: its first three model bands, or the one
    band, percentile-stretched 2-98 % over valid pixels) under the class map (45 % opaque,
    classified positions only), the title above and a legend below (Pillow)."""
    from PIL import Image, ImageDraw, ImageFont

    img, valid, h, w = sample.img, sample.valid, sample.h, sample.w
    show = range(sample.n)
    rgb = np.zeros((h, w, 3), np.float32)
    rng = np.random.default_rng(0)
    for i in range(len(show)):
        v = img[i][valid] if valid.any() else img[i].ravel()
        if v.size > 200_000:  # percentiles of a random sample: the stretch, not a statistic
            v = rng.choice(v, 200_000, replace=False)
        lo, hi = np.percentile(v, [2, 98]) if v.size else (0.0, 1.0)
        rgb[..., i] = np.clip((img[i] - lo) / max(hi - lo, 1e-6), 0, 1)
    if sample.n == 1:
        rgb[..., 1] = rgb[..., 2] = rgb[..., 0]
    rgb[~valid] = 0
    # the class map on the quicklook's pixel grid: the position of each quicklook pixel's scene pixel
    rows = np.minimum(np.arange(h) * sample.f // g.stride, g.rows - 1)  # the position of each sampled scene pixel
    cols = np.minimum(np.arange(w) * sample.f // g.stride, g.cols - 1)
    k = g.klass[rows][:, cols]
    ok = g.status[rows][:, cols] == CLASSIFIED
    pal = np.asarray([colour(i) for i in range(len(class_names))], np.float32) / 255
    rgb = np.where(ok[..., None], 0.55 * rgb + 0.45 * pal[np.maximum(k, 0)], rgb)
    scene = Image.fromarray((rgb * 255 + 0.5).astype(np.uint8))
    present = sorted(set(int(x) for x in np.unique(g.klass[g.status == CLASSIFIED])))
    font = ImageFont.load_default()
    per_row = max(1, min(5, w // 170))
    legend_h = 18 * ((len(present) + per_row - 1) // per_row) + 6
    canvas = Image.new("RGB", (w, h + 22 + legend_h), "white")
    canvas.paste(scene, (0, 22))
    d = ImageDraw.Draw(canvas)
    d.text((4, 4), title, fill="black", font=font)
    for j, i in enumerate(present):
        x, y = 6 + (j % per_row) * (w // per_row), h + 26 + 18 * (j // per_row)
        d.rectangle([x, y, x + 12, y + 12], fill=colour(i), outline="black")
        d.text((x + 18, y), class_names[i], fill="black", font=font)
    canvas.save(path, format="PNG", compress_level=1)
