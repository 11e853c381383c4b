"""Crash-safe file writing: write to a temporary file in the target folder, then rename.

An artifact already on disk is never left half-written: either the old file stays, or
the new one replaces it whole (``os.replace`` is atomic on POSIX within one filesystem).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import EOEdgeError


def check_out_dir(path: str | os.PathLike) -> Path:
    """Return ``Path(path)`` (an output *file*) after checking that its parent folder exists and
    that it is not itself a folder, before any work starts.

    Raises:
        EOEdgeError: the output folder does not exist, or ``path`` is a folder.
    """
    p = Path(path)
    if p.is_dir():
        raise EOEdgeError(f"output {p} is a folder; give a file path")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise EOEdgeError(f"output folder does not exist: {parent}")
    return p


def check_not_input(out: str | os.PathLike, *inputs: str | os.PathLike, what: str = "output") -> Path:
    """Refuse an output path that is one of the inputs (same path, a symlink to it, or a hard
    link: compared with ``os.path.samefile``), before any work starts.

    Raises:
        EOEdgeError: ``what`` names an input file (it would be destroyed).
    """
    o = Path(out)
    for i in inputs:
        i = Path(i)
        same = o.resolve() == i.resolve()
        if not same and o.exists() and i.exists():
            same = os.path.samefile(o, i)
        if same:
            raise EOEdgeError(f"{what} {o} is the input {i}: refusing to overwrite it; choose another path")
    return o


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.

    Raises:
        EOEdgeError: the output folder does not exist, or the disk is full (ENOSPC).
    """
    target = check_out_dir(path)
    sweep_stale(target)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target), suffix=PARTIAL + suffix, dir=target.parent or ".")
    os.close(fd)
    tmp_p = Path(tmp)
    try:
        yield tmp_p
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_p, 0o666 & ~umask)  # mkstemp creates 0600; artifacts get the usual mode
        os.replace(tmp_p, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp_p.unlink()
        if e.errno == 28:  # ENOSPC
            raise EOEdgeError(f"disk full while writing {target}; the previous file (if any) is unchanged") from e
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_p.unlink()
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (UTF-8) to ``path``; returns the path."""
    return write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n").encode())


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in ``chunk``-byte pieces."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Read a JSON file.

    Raises:
        EOEdgeError: ``"<what> not found: PATH"`` or ``"PATH is not valid JSON: ..."`` (one line).
    """
    p = Path(path)
    if not p.is_file():
        raise EOEdgeError(f"{what} not found: {p}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise EOEdgeError(f"{p} is not valid JSON: {str(e).splitlines()[0][:150]}") from None


def load_onnx(path: str | Path, *, external_data: bool = False):
    """Read an ONNX file into an ``onnx.ModelProto`` (no checks beyond parsing).

    Raises:
        EOEdgeError: missing file, or not a readable ONNX model (one line naming it).
    """
    import onnx

    p = Path(path)
    if not p.is_file():
        raise EOEdgeError(f"ONNX file not found: {p}")
    try:
        return onnx.load(str(p), load_external_data=external_data)
    except Exception as e:  # noqa: BLE001 - DecodeError, ValueError, missing external data ...
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:150]
        raise EOEdgeError(f"cannot read ONNX file {p}: {reason}") from None


#: Temporaries of every write end with this before their own suffix:
#: ``.<final name>.<pid>.<random>.partial<suffix>`` beside the final file (pid: the writing process).
PARTIAL = ".partial"


def temp_prefix(target: Path) -> str:
    """``.<name>.<pid>.``: the start of every temporary written for ``target`` by this process."""
    return f".{target.name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_stale(target: str | os.PathLike) -> list[Path]:
    """Remove the temporaries a killed writer left for ``target`` (a crash, SIGKILL, a watchdog reset):
    only files of eo-edge's own naming pattern (``.<name>.<pid>.<random>.partial*``, a temporary of a
    temporary included) whose process is no longer alive. Returns what was removed."""
    t = Path(target)
    pat = re.compile(r"^\.+" + re.escape(t.name) + r"\.(\d+)\.[^/]*" + re.escape(PARTIAL))
    gone = []
    try:
        entries = list(os.scandir(t.parent if str(t.parent) else "."))
    except OSError:
        return gone
    for e in entries:
        m = pat.match(e.name)
        if m and e.is_file(follow_symlinks=False) and not _alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(e.path)
                gone.append(Path(e.path))
    return gone


class Staging:
    """Several files written to temporaries beside their final names and published together: the
    one way eo-edge writes multi-file outputs (``compile``'s artifacts and sidecars, ``calibrate``'s
    model family). Use :func:`staged`; nothing reaches a final name before :meth:`publish`."""

    def __init__(self) -> None:
        self.items: list[tuple[Path, Path]] = []  # (temporary, final name), in publish order

    def path(self, target: str | os.PathLike, suffix: str = "") -> Path:
        """A new empty temporary beside ``target`` (``.<name>.<random>.partial<suffix>``), registered for it.

        Raises:
            EOEdgeError: ``target``'s folder does not exist.
        """
        t = check_out_dir(target)
        sweep_stale(t)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(t), suffix=PARTIAL + suffix, dir=t.parent or ".")
        os.close(fd)
        self.items.append((Path(tmp), t))
        return Path(tmp)

    def write(self, target: str | os.PathLike, data: bytes) -> str:
        """Stage ``data`` for ``target``; returns its sha256 (hex), the digest the published file will have."""
        self.path(target).write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    def publish(self, each: Callable[[Path, Path], None] | None = None) -> list[Path]:
        """Rename every temporary onto its final name, in order (mode 0666 & ~umask, as a plain write
        would give); ``each(temporary, final)`` runs after each rename. Returns the final names."""
        umask = os.umask(0)
        os.umask(umask)
        done = []
        for tmp, target in self.items:
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
            os.replace(tmp, target)
            done.append(target)
            if each is not None:
                each(tmp, target)
        return done

    def discard(self) -> None:
        """Remove every temporary not published (a failed check, an error, Ctrl-C)."""
        for tmp, _ in self.items:
            with contextlib.suppress(OSError):
                tmp.unlink()


@contextlib.contextmanager
def staged() -> Iterator[Staging]:
    """``with staged() as s: ...; s.publish()``: whatever is not published when the block ends
    (an exception included) is removed; a full disk is one line and leaves every final file as it was.

    Raises:
        EOEdgeError: ENOSPC while staging.
    """
    s = Staging()
    try:
        yield s
    except OSError as e:
        if e.errno == 28:  # ENOSPC
            raise EOEdgeError("disk full while writing; every earlier file is unchanged") from e
        raise
    finally:
        s.discard()
