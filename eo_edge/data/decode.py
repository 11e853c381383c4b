"""Decoding one image file (JPEG/PNG/... through Pillow, (Geo)TIFF through rasterio: any compression) into a uint8 or
multispectral array."""

from __future__ import annotations

import io

import numpy as np

from .dataset import IMAGE_SIZE

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}


TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF


def decode_tiff(data: bytes, size: int | None = None) -> tuple[np.ndarray, str | None]:
    """Decode a (Geo)TIFF, any compression GDAL reads (LZW, DEFLATE, JPEG, ...: the one raster
    reader, :func:`eo_edge.data.raster.read_image_bytes`): (H, W, C), every band, values exact in their
    own dtype (uint8, uint16, int16, float32; float64 becomes float32). ``size``: bilinear resize (reported).

    Raises:
        ValueError: unreadable, or an unsupported dtype/layout.
    """
    from .raster import read_image_bytes

    arr, _ = read_image_bytes(data)
    note = None
    if size is not None and arr.shape[:2] != (size, size):
        from .transforms import resize_bilinear

        note = f"size {arr.shape[1]}x{arr.shape[0]}->{size}x{size}"
        r = resize_bilinear(arr[None].astype(np.float32), size)[0]
        arr = (np.rint(r) if arr.dtype.kind in "ui" else r).astype(arr.dtype)
    return np.ascontiguousarray(arr), note


def decode_image(data: bytes, size: int | None = IMAGE_SIZE) -> tuple[np.ndarray, str | None]:
    """Decode one image file's bytes to an (H, W, 3) uint8 RGB array.

    Args:
        size: resize to ``size`` x ``size`` (bilinear; reported in the note), or None to keep the
            image's own size.

    Returns:
        ``(array, note)``: ``note`` says what was converted (mode, size), else None.

    Raises:
        ValueError: the bytes are not a readable image (truncated, corrupt, not an image).
    """
    from PIL import Image

    if data[:4] in TIFF_MAGIC:  # every band, exact values (no 8-bit conversion)
        return decode_tiff(data, size)
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
                # converting would clip every value above 255 (a 16-bit EO image is mostly above)
                raise ValueError(f"{im.mode} ({'16' if '16' in im.mode else '32'}-bit) non-TIFF image: an 8-bit "
                                 "conversion would saturate it at 255 (save 16-bit bands as TIFF: read exactly)")
            notes = []
            if im.mode != "RGB":
                notes.append(f"mode {im.mode}->RGB")
                if im.mode in ("RGBA", "LA", "P"):
                    im = im.convert("RGBA")
                    bg = Image.new("RGBA", im.size, (0, 0, 0, 255))
                    im = Image.alpha_composite(bg, im)
                im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                notes.append(f"size {im.size[0]}x{im.size[1]}->{size}x{size}")
                im = im.resize((size, size), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8).copy()
    except ValueError as e:
        raise ValueError(str(e)) from None
    except Exception as e:  # Pillow raises many types for bad files
        raise ValueError(f"{type(e).__name__}: {e}") from None
    return arr, ("; ".join(notes) or None)
