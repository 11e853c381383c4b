"""Tests for eo_edge.data.download against a local HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading
from pathlib import Path

import pytest

from eo_edge.data.dataset import EUROSAT_SHA256
from eo_edge.data.download import EUROSAT_URL, download
from eo_edge.errors import EOEdgeError

EUROSAT_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "EuroSAT.zip"
N_BYTES = 300 * 1024
TIMEOUT = 5  # seconds, for every download() call and the server thread's shutdown


@pytest.fixture(scope="module")
def payload() -> bytes:
    if not EUROSAT_ZIP.is_file():
        pytest.skip(f"{EUROSAT_ZIP} not available")
    with open(EUROSAT_ZIP, "rb") as f:
        data = f.read(N_BYTES)
    assert len(data) == N_BYTES
    return data


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.data`` at any path; supports ``Range: bytes=N-``; can misbehave.

    Server attributes: ``drops`` (list; each request pops one: None or the number of body
    bytes to send before closing the connection), ``ignore_range``, ``status`` (force an
    error status), ``requests`` (the headers of every request received).
    """

    def do_GET(self):  # noqa: N802 (http.server naming)
        srv = self.server
        srv.requests.append({k.lower(): v for k, v in self.headers.items()})
        if srv.status:
            self.send_error(srv.status)
            return
        data = srv.data
        rng = self.headers.get("Range")
        start = 0
        if rng and not srv.ignore_range:
            m = re.fullmatch(r"bytes=(\d+)-", rng.strip())
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        drop = srv.drops.pop(0) if srv.drops else None
        if drop is not None:
            body = body[:drop]  # then the connection closes: fewer bytes than Content-Length
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):  # keep test output quiet
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # client went away: not a test failure
        pass


@pytest.fixture()
def server(payload):
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.data, srv.drops, srv.ignore_range, srv.status, srv.requests = payload, [], False, None, []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/EuroSAT.zip"
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(TIMEOUT)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def part_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def test_full_download(server, payload, tmp_path):
    dest = tmp_path / "sub" / "EuroSAT.zip"  # parent folder is created
    out = download(server.url, dest, sha(payload), chunk=16384, progress=False, timeout=TIMEOUT)
    assert out == dest and dest.read_bytes() == payload
    assert not part_of(dest).exists()
    assert len(server.requests) == 1 and "range" not in server.requests[0]


def test_full_download_with_progress_bar_and_no_checksum(server, payload, tmp_path):
    dest = tmp_path / "EuroSAT.zip"
    download(server.url, dest, None, chunk=65536, progress=True, timeout=TIMEOUT)
    assert dest.read_bytes() == payload


def test_existing_verified_file_is_kept_without_request(server, payload, tmp_path):
    dest = tmp_path / "EuroSAT.zip"
    dest.write_bytes(payload)
    assert download(server.url, dest, sha(payload), progress=False, timeout=TIMEOUT) == dest
    assert server.requests == []


def test_existing_file_with_wrong_checksum_is_replaced(server, payload, tmp_path):
    dest = tmp_path / "EuroSAT.zip"
    dest.write_bytes(b"stale")
    download(server.url, dest, sha(payload), chunk=65536, progress=False, timeout=TIMEOUT)
    assert dest.read_bytes() == payload and len(server.requests) == 1


def test_interrupted_transfer_resumes_in_the_same_call(server, payload, tmp_path):
    dest = tmp_path / "EuroSAT.zip"
    server.drops = [100_000]
    download(server.url, dest, sha(payload), chunk=16384, progress=False, timeout=TIMEOUT)
    assert sha(dest.read_bytes()) == sha(payload)
    assert len(server.requests) == 2
    assert "range" not in server.requests[0]
    assert server.requests[1]["range"] == "bytes=100000-"


def test_interrupted_transfer_resumes_on_the_next_call(server, payload, tmp_path):
    dest = tmp_path / "EuroSAT.zip"
    server.drops = [123_456]
    with pytest.raises(EOEdgeError, match="interrupted") as info:
        download(server.url, dest, sha(payload), chunk=16384, progress=False, timeout=TIMEOUT, retries=0)
    assert "\n" not in str(info.value) and "run again to resume" in str(info.value)
    assert not dest.exists()
    assert part_of(dest).read_bytes() == payload[:123_456]

    download(server.url, dest, sha(payload), chunk=16384, progress=False, timeout=TIMEOUT, retries=0)
    assert server.requests[-1]["range"] == "bytes=123456-"
    assert sha(dest.read_bytes()) == sha(payload)
    assert not part_of(dest).exists()


def test_repeated_interruptions_are_bounded(server, payload, tmp_path):
    dest = tmp_path / "EuroSAT.zip"
    server.drops = [10_000] * 10
    with pytest.raises(EOEdgeError, match="interrupted"):
        download(server.url, dest, sha(payload), chunk=4096, progress=False, timeout=TIMEOUT, retries=2)
    assert len(server.requests) == 3  # 1 try + 2 resumes, then give up
    assert part_of(dest).read_bytes() == payload[:30_000]


def test_server_ignoring_range_restarts_from_zero(server, payload, tmp_path):
    dest = tmp_path / "EuroSAT.zip"
    part_of(dest).write_bytes(b"\xff" * 50_000)  # wrong bytes: kept, they would spoil the checksum
    server.ignore_range = True
    download(server.url, dest, sha(payload), chunk=16384, progress=False, timeout=TIMEOUT)
    assert server.requests[0]["range"] == "bytes=50000-"  # asked to resume, got a 200
    assert dest.read_bytes() == payload


def test_complete_part_file_answered_416(server, payload, tmp_path):
    dest = tmp_path / "EuroSAT.zip"
    part_of(dest).write_bytes(payload)
    download(server.url, dest, sha(payload), progress=False, timeout=TIMEOUT)
    assert server.requests[0]["range"] == f"bytes={len(payload)}-"
    assert dest.read_bytes() == payload and not part_of(dest).exists()


def test_checksum_mismatch(server, payload, tmp_path):
    dest = tmp_path / "EuroSAT.zip"
    with pytest.raises(EOEdgeError, match="checksum mismatch") as info:
        download(server.url, dest, "0" * 64, chunk=65536, progress=False, timeout=TIMEOUT)
    assert "\n" not in str(info.value)
    assert not dest.exists() and not part_of(dest).exists()
    assert list(tmp_path.iterdir()) == []


def test_http_error_status(server, tmp_path):
    server.status = 404
    with pytest.raises(EOEdgeError, match="HTTP 404") as info:
        download(server.url, tmp_path / "x.zip", None, progress=False, timeout=TIMEOUT)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_connection_refused(tmp_path):
    with socket.socket() as s:  # find a free port, then close it: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "EuroSAT.zip"
    with pytest.raises(EOEdgeError, match="cannot download") as info:
        download(f"http://127.0.0.1:{port}/EuroSAT.zip", dest, None, progress=False, timeout=TIMEOUT)
    assert "\n" not in str(info.value) and "refused" in str(info.value).lower()
    assert not dest.exists()


@pytest.mark.parametrize("url,digest", [
    ("ftp://127.0.0.1/EuroSAT.zip", None),
    ("file:///etc/passwd", None),
    ("http://127.0.0.1:9/EuroSAT.zip", "not-a-sha"),
])
def test_bad_arguments(url, digest, tmp_path):
    with pytest.raises(EOEdgeError):
        download(url, tmp_path / "x.zip", digest, progress=False, timeout=TIMEOUT)


def test_eurosat_constants_match_the_local_copy():
    assert EUROSAT_URL == "https://madm.dfki.de/files/sentinel/EuroSAT.zip"
    assert re.fullmatch(r"[0-9a-f]{64}", EUROSAT_SHA256)
    recorded = EUROSAT_ZIP.with_name(EUROSAT_ZIP.name + ".sha256")
    if not recorded.is_file():
        pytest.skip(f"{recorded} not available")
    assert recorded.read_text().split()[0] == EUROSAT_SHA256
