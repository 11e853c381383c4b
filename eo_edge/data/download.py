"""Resumable, checksummed HTTP(S) download with the standard library (urllib) only.

``download(url, dest, sha256)`` writes into ``<dest>.part`` and renames it onto ``dest`` only
once the whole file is there and its sha256 matches, so ``dest`` is either absent, the
previous file, or the complete verified file; never half-written. An interrupted transfer
leaves the ``.part`` behind and the next call continues it with an HTTP ``Range`` request.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .. import __version__
from ..errors import EOEdgeError
from ..fileio import sha256_file
from .dataset import EUROSAT_SHA256

__all__ = ["EUROSAT_SHA256", "EUROSAT_URL", "download"]

#: The official EuroSAT RGB archive (Helber et al.; 27,000 64x64 JPEG images, 10 classes).
EUROSAT_URL = "https://madm.dfki.de/files/sentinel/EuroSAT.zip"
#: sha256 of the EuroSAT.zip copy this project was developed with (95,739,400 bytes). The
#: official archive at :data:`EUROSAT_URL` should have the same digest; if the host ever
#: re-packs the file, download() fails with a checksum error instead of using other data.

_SHA_RE = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_USER_AGENT = f"eo-edge/{__version__} (+urllib)"


# Failures after which trying again (and resuming) makes sense. Refused connections, unknown
# hosts and HTTP errors are not retried.
_TRANSIENT = (socket.timeout, TimeoutError, ConnectionResetError, ConnectionAbortedError,
              http.client.IncompleteRead, http.client.RemoteDisconnected)


class _Interrupted(Exception):
    """The transfer stopped early; the .part file holds what arrived (resume is possible)."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        if not isinstance(err.reason, BaseException):
            return _one_line(err.reason)
        err = err.reason
    if isinstance(err, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return _one_line(err) or type(err).__name__


def download(url: str, dest: str | os.PathLike, sha256: str | None, *, chunk: int = 1 << 20,
             progress: bool = True, timeout: float = 60, retries: int = 3) -> Path:
    """Download ``url`` to ``dest``, resuming a previous partial download, and verify it.

    Steps:

    1. If ``dest`` exists and either ``sha256`` is None or its sha256 matches, it is kept and
       nothing is downloaded (``dest`` is only ever created by the final atomic rename, so an
       existing file is complete). A ``dest`` with a different digest is left untouched until a
       verified download replaces it.
    2. Bytes go to ``dest.with_suffix(dest.suffix + ".part")``. If that file exists, the
       request carries ``Range: bytes=N-`` (N = its size) and a ``206`` answer is appended;
       a ``200`` answer (server ignoring ranges) or a ``206`` starting elsewhere restarts from
       zero; a ``416`` (nothing left to send) checks the ``.part`` as it is.
    3. A transfer that stops early (connection reset/closed before ``Content-Length``, read
       timeout) is resumed automatically up to ``retries`` times; after that the ``.part`` is
       kept and an :class:`EOEdgeError` says to run again to resume.
    4. When complete, the ``.part`` sha256 is compared with ``sha256``: on a mismatch the
       ``.part`` is deleted and an :class:`EOEdgeError` raised (``dest`` not created or
       replaced); otherwise the ``.part`` is renamed atomically onto ``dest``.

    Args:
        url: ``http://`` or ``https://`` URL (redirects are followed).
        dest: target file; its parent folder is created if missing.
        sha256: expected lowercase hex sha256 of the whole file, or None to skip verification.
        chunk: read/write size in bytes.
        progress: show a rich progress bar on stderr.
        timeout: socket timeout in seconds for connecting and for each read.
        retries: automatic resume attempts after an interrupted transfer within this call.

    Returns:
        ``Path(dest)``.

    Raises:
        EOEdgeError: bad arguments, a network or HTTP error, an interrupted transfer after
            ``retries`` resumes, a checksum mismatch, or a local write error. One line each.
    """
    dest = Path(dest)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise EOEdgeError(f"only http:// and https:// URLs can be downloaded, got {url!r}")
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not _SHA_RE.fullmatch(sha256):
            raise EOEdgeError(f"sha256 must be 64 hexadecimal characters, got {sha256!r}")
    if chunk <= 0 or timeout <= 0 or retries < 0:
        raise EOEdgeError("chunk and timeout must be positive and retries non-negative")
    if dest.is_dir():
        raise EOEdgeError(f"download target is a folder, not a file: {dest}")

    if dest.is_file():
        if sha256 is None or sha256_file(dest) == sha256:
            return dest

    part = dest.with_suffix(dest.suffix + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EOEdgeError(f"cannot create folder {dest.parent}: {_reason(e)}") from None

    bar = _Progress(dest.name) if progress else None
    try:
        for attempt in range(retries + 1):
            try:
                _fetch(url, part, chunk=chunk, timeout=timeout, bar=bar)
                break
            except _Interrupted as e:
                if attempt == retries:
                    raise EOEdgeError(f"download of {url} interrupted ({e}); {part.name} kept with "
                                      f"{_size(part)} bytes, run again to resume") from None
    finally:
        if bar is not None:
            bar.close()

    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256:
            with contextlib.suppress(OSError):
                part.unlink()
            raise EOEdgeError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}; "
                              f"the downloaded file was deleted")
    try:
        os.replace(part, dest)
    except OSError as e:
        raise EOEdgeError(f"cannot move {part} to {dest}: {_reason(e)}") from None
    return dest


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _fetch(url: str, part: Path, *, chunk: int, timeout: float, bar: "_Progress | None",
           _allow_416_restart: bool = True) -> None:
    """One HTTP request continuing ``part``; returns when the server's body is complete.

    Raises _Interrupted if the body stops early, EOEdgeError on any other failure.
    """
    offset = _size(part)
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and offset:
            # Range not satisfiable: the .part already holds the whole file (or more than it).
            # Let the checksum decide; if there is no checksum, trust a size match only.
            total = _total_from_416(e)
            if total is None or total == offset:
                return
            if _allow_416_restart:
                _truncate(part)
                return _fetch(url, part, chunk=chunk, timeout=timeout, bar=bar, _allow_416_restart=False)
        raise EOEdgeError(f"cannot download {url}: {_reason(e)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        cause = e.reason if isinstance(e, urllib.error.URLError) else e
        if isinstance(cause, _TRANSIENT):  # worth another try (counted against ``retries``)
            raise _Interrupted(_reason(e)) from None
        raise EOEdgeError(f"cannot download {url}: {_reason(e)}") from None

    with resp:
        status = resp.status
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        mode = "ab"
        start = 0
        total = None
        if status == 206:
            m = _CONTENT_RANGE_RE.match(resp.headers.get("Content-Range", ""))
            start = int(m.group(1)) if m else offset
            total = int(m.group(3)) if m and m.group(3) != "*" else None
            if start != offset:  # not the piece we asked for: start over
                resp.close()
                _truncate(part)
                return _fetch(url, part, chunk=chunk, timeout=timeout, bar=bar,
                              _allow_416_restart=_allow_416_restart)
        elif status == 200:
            mode = "wb"  # no range (or ignored): the body is the whole file
            total = length
        else:
            raise EOEdgeError(f"cannot download {url}: unexpected HTTP {status} {resp.reason}")
        expected = length if length is not None else (total - start if total is not None else None)

        if bar is not None:
            bar.start(total=total, completed=start)
        received = 0
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        data = resp.read(chunk)
                    except (OSError, http.client.HTTPException) as e:
                        raise _Interrupted(f"{_reason(e)} after {start + received} bytes") from None
                    if not data:
                        break
                    f.write(data)
                    received += len(data)
                    if bar is not None:
                        bar.advance(len(data))
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise EOEdgeError(f"cannot write {part}: {_reason(e)}") from None
        if expected is not None and received < expected:
            raise _Interrupted(f"connection closed after {start + received} of {start + expected} bytes")


def _total_from_416(err: urllib.error.HTTPError) -> int | None:
    m = re.match(r"bytes\s+\*/(\d+)", (err.headers or {}).get("Content-Range", "") or "")
    return int(m.group(1)) if m else None


def _truncate(part: Path) -> None:
    try:
        with open(part, "wb"):
            pass
    except OSError as e:
        raise EOEdgeError(f"cannot write {part}: {_reason(e)}") from None


class _Progress:
    """A rich progress bar (bytes, speed, ETA) on stderr, tolerant of unknown totals."""

    def __init__(self, name: str):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), TimeRemainingColumn(),
                                  console=Console(stderr=True), transient=False)
        self._name = name
        self._task = None
        self._progress.start()

    def start(self, total: int | None, completed: int) -> None:
        if self._task is None:
            self._task = self._progress.add_task(self._name, total=total, completed=completed)
        else:
            self._progress.update(self._task, total=total, completed=completed)

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def close(self) -> None:
        self._progress.stop()
