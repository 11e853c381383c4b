"""Band names: RGB, Sentinel-2's 13 in EuroSAT MS order, else band1..bandN; and ``--bands`` (names or 1-based numbers)."""

from __future__ import annotations

import numpy as np

from ..errors import EOEdgeError


def band_names(n: int, dtype) -> list[str]:
    """Names of ``n`` bands: RGB for 3-band uint8, Sentinel-2 L1C order for 13 bands, else band1..bandN."""
    if n == 3 and np.dtype(dtype) == np.uint8:
        return ["R", "G", "B"]
    if n == len(S2_BANDS):
        return list(S2_BANDS)
    return [f"band{i + 1}" for i in range(n)]


def select_bands(spec: str, names: list[str]) -> list[int]:
    """Band indices for ``--bands``: names (``B04,B03,B02``) or 1-based band numbers (``4,3,2``,
    GDAL's convention), in the order given.

    Raises:
        EOEdgeError: an unknown name or number, or a band given twice.
    """
    out = []
    for tok in (t.strip() for t in spec.split(",") if t.strip()):
        if tok in names:
            out.append(names.index(tok))
        elif tok.isdigit() and 1 <= int(tok) <= len(names):
            out.append(int(tok) - 1)
        else:
            raise EOEdgeError(f"--bands: unknown band {tok!r}; this data has {', '.join(names)} (or 1..{len(names)})")
    if not out or len(set(out)) != len(out):
        raise EOEdgeError(f"--bands {spec!r}: give each band once")
    return out


#: Sentinel-2 L1C band order of EuroSAT MS's 13-band GeoTIFFs (B8A after B08)
S2_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B08A", "B09", "B10", "B11", "B12")
