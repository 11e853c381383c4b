"""The one raster reader of eo-edge: rasterio (GDAL) for every TIFF image and every scene.

GeoTIFF and Cloud-Optimized GeoTIFF with any compression GDAL was built with (LZW, DEFLATE,
JPEG, ZSTD, ...), VRT, JPEG 2000 where GDAL has the driver. ``data prepare`` and ``predict`` read
TIFF images through :func:`read_image_bytes`; ``eo-edge scene`` opens scenes with
:func:`open_raster` and reads them window by window (never the whole scene).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EOEdgeError

#: dtypes kept exactly (float64 becomes float32)
DTYPES = (np.uint8, np.uint16, np.int16, np.float32)


def _rasterio():
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)  # plain TIFF images are fine
    return rasterio


def read_image_bytes(data: bytes) -> tuple[np.ndarray, list[str | None]]:
    """Decode a (Geo)TIFF held in memory: (H, W, C) with every band, values exact in their own dtype
    (uint8, uint16, int16, float32; float64 becomes float32), and the file's band descriptions
    (None where a band has none).

    Raises:
        ValueError: unreadable, or an unsupported dtype.
    """
    rasterio = _rasterio()
    from rasterio.io import MemoryFile

    try:
        with MemoryFile(data) as mf, mf.open() as ds:
            arr = ds.read()
            desc = list(ds.descriptions)
    except Exception as e:  # noqa: BLE001 - RasterioIOError, CPLE_* ...
        raise ValueError(f"{type(e).__name__}: {str(e).strip().splitlines()[0][:150] if str(e).strip() else ''}") \
            from None
    del rasterio
    arr = np.moveaxis(arr, 0, -1)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    if arr.dtype.type not in DTYPES:
        raise ValueError(f"TIFF of dtype {arr.dtype}: supported are uint8, uint16, int16, float32")
    return np.ascontiguousarray(arr), desc


def open_raster(path: str | Path):
    """Open a raster for windowed reading (a ``rasterio`` dataset; close it, or use ``with``).

    Raises:
        EOEdgeError: missing, a folder, or not a raster GDAL can read (one line).
    """
    rasterio = _rasterio()
    p = Path(path)
    if not p.exists():
        raise EOEdgeError(f"scene not found: {p}")
    if p.is_dir():
        raise EOEdgeError(f"{p} is a folder; give a raster file (GeoTIFF, COG, VRT, JP2)")
    try:
        return rasterio.open(p)
    except Exception as e:  # noqa: BLE001 - RasterioIOError: not recognized as a supported file format ...
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:150]
        raise EOEdgeError(f"{p.name} is not a raster GDAL can read ({reason})") from None


@dataclass(frozen=True)
class RasterInfo:
    """What a scene is, read from its header (no pixels).

    ``transform`` is the affine pixel -> CRS transform as GDAL's 6 numbers ``(a, b, c, d, e, f)``
    (``x = a*col + b*row + c``, ``y = d*col + e*row + f``); ``crs`` is None for a file without one;
    ``pixel_area_km2`` is the geodesic area of the footprint divided by its pixels (None without a
    CRS); ``scales``/``offsets`` are GDAL's per-band scale/offset tags (value = raw x scale + offset).
    """

    path: Path
    width: int
    height: int
    count: int
    dtype: str
    crs: str | None
    transform: tuple[float, ...]
    nodata: float | None
    has_mask: bool
    descriptions: tuple[str | None, ...]
    scales: tuple[float, ...]
    offsets: tuple[float, ...]
    driver: str
    compression: str | None
    pixel_area_km2: float | None

    @property
    def bytes(self) -> int:
        """Size of the scene's pixels at its dtype and bands (B)."""
        return self.width * self.height * self.count * np.dtype(self.dtype).itemsize

    def record(self) -> dict[str, Any]:
        """JSON-able."""
        return {"path": str(self.path), "width": self.width, "height": self.height, "bands": self.count,
                "dtype": self.dtype, "crs": self.crs, "transform": list(self.transform), "nodata": self.nodata,
                "mask": self.has_mask, "band_descriptions": list(self.descriptions), "scales": list(self.scales),
                "offsets": list(self.offsets), "driver": self.driver, "compression": self.compression,
                "pixel_area_km2": self.pixel_area_km2, "bytes": self.bytes}


def footprint_lonlat(ds, window: tuple[int, int, int, int] | None = None) -> list[tuple[float, float]]:
    """Corners (lon, lat) in EPSG:4326 of the whole scene or of ``(col_off, row_off, width, height)``,
    counter-clockwise from the top-left (the right-hand rule of RFC 7946), closed."""
    from rasterio.warp import transform as warp

    c0, r0, w, h = window or (0, 0, ds.width, ds.height)
    t = ds.transform
    cols, rows = [c0, c0, c0 + w, c0 + w, c0], [r0, r0 + h, r0 + h, r0, r0]
    xs = [t.a * c + t.b * r + t.c for c, r in zip(cols, rows)]
    ys = [t.d * c + t.e * r + t.f for c, r in zip(cols, rows)]
    lon, lat = warp(ds.crs, "EPSG:4326", xs, ys)
    return list(zip(lon, lat))


def describe(ds) -> RasterInfo:
    """:class:`RasterInfo` of an open dataset. The pixel area is geodesic (pyproj ``Geod`` on WGS 84
    over the footprint in EPSG:4326), so projected, Web-Mercator and geographic scenes alike get
    true ground areas."""
    from rasterio.enums import MaskFlags

    area = None
    if ds.crs is not None:
        from pyproj import Geod

        ring = footprint_lonlat(ds)
        lon, lat = zip(*ring[:-1])
        a, _ = Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)
        area = abs(a) / 1e6 / (ds.width * ds.height)
    has_mask = ds.nodata is not None or any(MaskFlags.all_valid not in f for f in ds.mask_flag_enums)
    t = ds.transform
    return RasterInfo(Path(ds.name), ds.width, ds.height, ds.count, ds.dtypes[0],
                      ds.crs.to_string() if ds.crs is not None else None, (t.a, t.b, t.c, t.d, t.e, t.f),
                      ds.nodata, has_mask, tuple(ds.descriptions), tuple(float(s) for s in ds.scales),
                      tuple(float(o) for o in ds.offsets), ds.driver,
                      ds.compression.value if ds.compression is not None else None, area)


def map_bands(info: RasterInfo, model_bands: list[str], n_model: int, spec: str | None = None) -> list[int]:
    """The scene's bands (1-based, GDAL's numbering) that feed the model's channels, in order.

    ``spec`` (``--bands``) gives them by name (``B04,B03,B02``; names are the file's band
    descriptions, else :func:`eo_edge.data.decode.band_names`: R, G, B or Sentinel-2's 13) or number (``4,3,2``). Without it: by name when the model and the file both name
    their bands, else the first ``n_model`` bands when the counts are equal.

    Raises:
        EOEdgeError: fewer bands than the model takes, an unknown name, or a count mismatch with no
            way to pick (one line naming both sides).
    """
    from .bands import band_names

    default = band_names(info.count, info.dtype)  # what data prepare calls them (13 bands: Sentinel-2 order)
    names = [d or default[i] for i, d in enumerate(info.descriptions)] if any(info.descriptions) else default
    want = f"{n_model} ({', '.join(model_bands)})" if model_bands else str(n_model)
    if spec:
        from .bands import select_bands

        idx = select_bands(spec, names)
        if len(idx) != n_model:
            raise EOEdgeError(f"--bands {spec!r} picks {len(idx)} bands; the model takes {want}")
        return [i + 1 for i in idx]
    if info.count < n_model:
        raise EOEdgeError(f"{info.path.name} has {info.count} bands ({', '.join(names)}); the model takes {want}")
    if model_bands and len(model_bands) == n_model and all(b in names for b in model_bands):
        return [names.index(b) + 1 for b in model_bands]
    if info.count == n_model:
        return list(range(1, n_model + 1))
    raise EOEdgeError(f"{info.path.name} has {info.count} bands ({', '.join(names)}); the model takes {want}: "
                      "pick them with --bands")
