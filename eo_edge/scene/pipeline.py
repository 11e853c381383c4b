"""Classify a scene tile by tile: a reader thread cuts and preprocesses tile rows while the main
thread runs inference, joined by a bounded queue.

Grid: tile positions every ``stride`` pixels from the top-left corner, ``ceil(H / stride)`` rows by
``ceil(W / stride)`` columns, so every scene pixel lies under some position. A position whose tile
runs past the scene's edge is not classified (status :data:`EDGE`), nor is one with more than
``max_nodata`` of its pixels nodata (the file's nodata value or mask, GDAL's dataset mask: status
:data:`NODATA`). Neither gets a land-cover class.

Values fed to the model: ``(raw x gdal_scale + gdal_offset) x scale x model value scale``, then the
model's mean/std (:func:`eo_edge.data.transforms.preprocess`'s normalisation; tiles are already the
model's input size, so nothing is resized). Peak memory of the pipeline is bounded by the queue:
at most ``queue_batches + 2`` float32 batches of ``batch`` tiles plus one tile row of the scene.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import EOEdgeError

CLASSIFIED, EDGE, NODATA = 0, 1, 2
STATUS_NAMES = {CLASSIFIED: "classified", EDGE: "edge", NODATA: "nodata"}
QUEUE_BATCHES = 4  # prefetched batches between the reader and inference
TIMED_BATCHES = 4  # batches kept to time inference alone after the run
ONLY_S_MAX = 2.0  # seconds of inference-only timing at most


@dataclass
class TileGrid:
    """The result grid, one cell per tile position: ``klass`` int16 (-1 where not classified),
    ``prob`` float32 calibrated max probability (NaN where not classified), ``status`` uint8
    (:data:`CLASSIFIED`, :data:`EDGE`, :data:`NODATA`)."""

    rows: int
    cols: int
    tile: int
    stride: int
    klass: np.ndarray = field(init=False)
    prob: np.ndarray = field(init=False)
    status: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.klass = np.full((self.rows, self.cols), -1, np.int16)
        self.prob = np.full((self.rows, self.cols), np.nan, np.float32)
        self.status = np.full((self.rows, self.cols), CLASSIFIED, np.uint8)

    @classmethod
    def for_scene(cls, width: int, height: int, tile: int, stride: int) -> "TileGrid":
        g = cls(math.ceil(height / stride), math.ceil(width / stride), tile, stride)
        r_edge = np.arange(g.rows) * stride + tile > height
        c_edge = np.arange(g.cols) * stride + tile > width
        g.status[r_edge[:, None] | c_edge[None, :]] = EDGE
        return g

    def counts(self) -> dict[str, int]:
        return {name: int((self.status == s).sum()) for s, name in STATUS_NAMES.items()}


@dataclass
class Preprocess:
    """Raw tile values -> normalised model input: per channel ``x * a + b`` with
    ``a = gdal_scale x scale x value_scale / std`` and ``b = (gdal_offset x scale x value_scale - mean) / std``."""

    a: np.ndarray  # float32 (C,)
    b: np.ndarray  # float32 (C,)

    @classmethod
    def of(cls, cfg, gdal_scales, gdal_offsets, scale: float, value_scale: float) -> "Preprocess":
        mean, std = np.asarray(cfg.mean, np.float64), np.asarray(cfg.std, np.float64)
        k = np.asarray(gdal_scales, np.float64) * scale * value_scale
        return cls((k / std).astype(np.float32),
                   ((np.asarray(gdal_offsets, np.float64) * scale * value_scale - mean) / std).astype(np.float32))

    def __call__(self, strip: np.ndarray) -> np.ndarray:
        """(C, H, W) raw -> (C, H, W) float32 normalised."""
        x = strip.astype(np.float32)
        x *= self.a[:, None, None]
        x += self.b[:, None, None]
        return x


@dataclass
class QuickSample:
    """A decimated copy of the scene gathered while it is read (every ``f``-th row and column of
    its first ``n`` model bands, and the valid mask), so the quicklook needs no second read of
    the scene. Rows the pipeline never reads (the bottom edge) are read afterwards."""

    f: int
    n: int
    h: int
    w: int
    img: np.ndarray = field(init=False)
    valid: np.ndarray = field(init=False)
    next_row: int = 0

    def __post_init__(self) -> None:
        self.img = np.zeros((self.n, self.h, self.w), np.float32)
        self.valid = np.ones((self.h, self.w), bool)

    @classmethod
    def for_scene(cls, width: int, height: int, n_bands: int, max_side: int = 1024) -> "QuickSample":
        f = max(1, int(np.ceil(max(width, height) / max_side)))
        return cls(f, min(3, n_bands) if n_bands >= 3 else 1, max(1, height // f), max(1, width // f))

    def take(self, y0: int, strip: np.ndarray, valid: np.ndarray | None) -> None:
        """Rows of a strip starting at scene row ``y0`` (C, rows, W)."""
        while self.next_row < self.h and self.next_row * self.f < y0 + strip.shape[1]:
            y = self.next_row * self.f - y0
            if y >= 0:
                self.img[:, self.next_row] = strip[:self.n, y, ::self.f][:, :self.w]
                if valid is not None:
                    self.valid[self.next_row] = valid[y, ::self.f][:self.w] > 0
            self.next_row += 1

    def finish(self, ds, bands: list[int], use_mask: bool) -> None:
        """Read the rows the pipeline did not (one scene row each)."""
        from rasterio.windows import Window

        for j in range(self.next_row, self.h):
            win = Window(0, j * self.f, ds.width, 1)
            self.img[:, j] = ds.read(bands[:self.n], window=win)[:, 0, ::self.f][:, :self.w]
            if use_mask:
                self.valid[j] = ds.dataset_mask(window=win)[0, ::self.f][:self.w] > 0
        self.next_row = self.h


def run_scene(ds, infer: Callable[[np.ndarray], np.ndarray], temperature: float, *, bands: list[int], tile: int,
              stride: int, pre: Preprocess | None, batch: int = 128, max_nodata: float = 0.0, use_mask: bool = True,
              progress: Callable[[int, int], None] | None = None,
              sample: QuickSample | None = None) -> tuple[TileGrid, dict[str, Any]]:
    """Classify every tile position of an open rasterio dataset ``ds``.

    Args:
        infer: the model, float32 (N, C, tile, tile) -> logits (N, classes) (``Runner.infer``).
        temperature: the model's post-hoc T; probabilities are ``softmax(logits / T)``.
        bands: 1-based scene bands feeding the model's channels, in order.
        pre: the value mapping (:class:`Preprocess`), or None when the graph does it (raw tiles in the
            scene's dtype are fed: :func:`eo_edge.scene.fold.fold_preprocessing`).
        max_nodata: largest fraction of nodata pixels a classified tile may hold (0 = none).
        use_mask: read GDAL's dataset mask (False for a file with neither nodata nor mask).
        progress: ``(tile rows done, tile rows)`` callback.
        sample: filled with the scene's decimated rows as they are read (:class:`QuickSample`).

    Returns:
        ``(grid, timing)``: timing in seconds: ``pipeline_s`` (first read to last result),
        ``infer_s`` (inside the pipeline), ``read_s`` and ``preprocess_s`` (reader thread: reading with
        the mask; cutting tiles into batches, with the numpy preprocessing when not folded; time
        waiting for the queue not counted),
        ``inference_only_s`` / ``inference_only_tiles`` (up to :data:`TIMED_BATCHES` of the same
        batches re-run back to back afterwards, nothing else running, repeated for up to
        :data:`ONLY_S_MAX` s or a quarter of ``pipeline_s``), ``batches``.

    Raises:
        EOEdgeError: a read error (one line); whatever the reader thread raised.
    """
    from rasterio.windows import Window

    from ..metrics.stats import softmax

    g = TileGrid.for_scene(ds.width, ds.height, tile, stride)
    q: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES)
    stop = threading.Event()
    t_read = [0.0, 0.0]  # read, preprocess (reader thread)

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        buf: np.ndarray | None = None  # the batch being filled: (batch, C, T, T), one copy per tile
        pos: list[tuple[int, int]] = []
        try:
            for r in range(g.rows):
                if stop.is_set():
                    return
                cols = np.flatnonzero(g.status[r] == CLASSIFIED)
                if len(cols) == 0:
                    if progress:
                        progress(r + 1, g.rows)
                    continue
                t0 = time.perf_counter()
                win = Window(0, r * stride, ds.width, tile)
                strip = ds.read(bands, window=win)  # (C, tile, W)
                valid = ds.dataset_mask(window=win) if use_mask else None
                if sample is not None:
                    sample.take(r * stride, strip, valid)
                t1 = time.perf_counter()
                t_read[0] += t1 - t0
                if valid is not None:
                    holes = np.lib.stride_tricks.sliding_window_view(valid == 0, tile, axis=1)[:, ::stride]
                    frac = holes.mean(axis=(0, 2))[cols]  # nodata fraction of each tile of the row
                    bad = frac > max_nodata
                    g.status[r, cols[bad]] = NODATA
                    cols = cols[~bad]
                if len(cols):
                    x = pre(strip) if pre is not None else strip
                    view = np.lib.stride_tricks.sliding_window_view(x, tile, axis=2)[:, :, ::stride]  # (C, T, cols, T)
                    i = 0
                    while i < len(cols):
                        if buf is None:
                            buf = np.empty((batch, x.shape[0], tile, tile), x.dtype)
                        k = min(batch - len(pos), len(cols) - i)
                        sel = cols[i:i + k]
                        run = sel[-1] - sel[0] + 1 == k  # contiguous columns: a view, no gather copy
                        src = view[:, :, sel[0]:sel[-1] + 1] if run else view[:, :, sel]
                        buf[len(pos):len(pos) + k] = src.transpose(2, 0, 1, 3)
                        pos += [(r, int(c)) for c in sel]
                        i += k
                        if len(pos) == batch:
                            t_read[1] += time.perf_counter() - t1
                            if not put((pos, buf)):
                                return
                            t1 = time.perf_counter()
                            buf, pos = None, []
                t_read[1] += time.perf_counter() - t1  # cutting (and, unfolded, preprocessing); not waiting
                if progress:
                    progress(r + 1, g.rows)
            if pos:
                put((pos, buf[:len(pos)]))
            put(None)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, raised there
            put(e)

    kept: list[np.ndarray] = []
    infer_s, n_batches = 0.0, 0
    t_start = time.perf_counter()
    th = threading.Thread(target=reader, name="eo-edge-scene-reader", daemon=True)
    th.start()
    try:
        while True:
            item = q.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                if isinstance(item, EOEdgeError):
                    raise item
                raise EOEdgeError(f"reading {ds.name} failed: {type(item).__name__}: "
                                  f"{(str(item).strip().splitlines() or [''])[0][:150]}") from item
            pos, x = item
            t0 = time.perf_counter()
            logits = infer(x)
            infer_s += time.perf_counter() - t0
            n_batches += 1
            p = softmax(np.asarray(logits, np.float64), temperature)
            k = p.argmax(1)
            rr, cc = np.asarray(pos).T
            g.klass[rr, cc] = k
            g.prob[rr, cc] = p[np.arange(len(k)), k]
            if len(kept) < TIMED_BATCHES:
                kept.append(x)
    finally:
        stop.set()
        th.join(timeout=10)
    pipeline_s = time.perf_counter() - t_start
    # inference alone on the same batches, nothing else running: repeated for a sustained figure
    # (at least one pass; up to ONLY_S_MAX s, or a quarter of the pipeline's time, whichever is less)
    budget = min(ONLY_S_MAX, 0.25 * pipeline_s)
    t0, n_only = time.perf_counter(), 0
    while kept:
        for x in kept:
            infer(x)
            n_only += len(x)
        if time.perf_counter() - t0 >= budget:
            break
    only_s = time.perf_counter() - t0
    return g, {"pipeline_s": pipeline_s, "infer_s": infer_s, "read_s": t_read[0], "preprocess_s": t_read[1],
               "inference_only_s": only_s, "inference_only_tiles": n_only, "batches": n_batches}
