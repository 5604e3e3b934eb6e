"""`leadscore-api` closes idle and slow connections and caps concurrency (real uvicorn, real
sockets on 127.0.0.1): a few hundred idle clients must not be able to use up the process."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from leadscore_core.artifact import write_atomically

from .support import EXAMPLE_LEAD, ModelFiles

TIMEOUT = 1.0
# Generous bounds: the machine may be busy; what matters is "closed", not "closed at 1.000 s".
CLOSED_WITHIN = 6.0


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "LEADSCORE_DATA_DIR": str(tmp_path / "data"),
        "LEADSCORE_KEEP_ALIVE_SECONDS": str(TIMEOUT),
        "LEADSCORE_REQUEST_READ_TIMEOUT_SECONDS": str(TIMEOUT),
        **extra,
    }


def _publish(tmp_path: Path, model_files: ModelFiles) -> None:
    write_atomically(tmp_path / "data" / "models" / "lead_scoring_model.json", model_files.v1)


def _connect(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _seconds_until_closed(sock: socket.socket, limit: float = CLOSED_WITHIN) -> float | None:
    """Read until the server closes the connection; None if it is still open after `limit`."""
    started = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_a_connection_that_never_sends_a_request_is_closed(start_server, tmp_path: Path) -> None:
    server = start_server(_env(tmp_path), console_script=True)
    with _connect(server.base_url) as idle:
        waited = _seconds_until_closed(idle)
    assert waited is not None, "an idle connection was left open"
    assert waited >= TIMEOUT * 0.9


def test_an_idle_keep_alive_connection_is_closed_after_its_response(
    start_server, tmp_path: Path
) -> None:
    server = start_server(_env(tmp_path), console_script=True)
    with _connect(server.base_url) as kept:
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")
        assert _seconds_until_closed(kept) is not None


def test_a_client_sending_its_headers_byte_by_byte_is_cut_off(start_server, tmp_path: Path) -> None:
    server = start_server(_env(tmp_path), console_script=True)
    request = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"x" * 200
    started = time.monotonic()
    with _connect(server.base_url) as slow:
        try:
            for byte in request:
                slow.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass  # the server closed it
        assert _seconds_until_closed(slow, limit=1.0) is not None
    assert time.monotonic() - started < CLOSED_WITHIN + 2


def test_a_slow_request_body_is_cut_off(
    start_server, tmp_path: Path, model_files: ModelFiles
) -> None:
    _publish(tmp_path, model_files)  # so that /score waits for the body instead of a 503
    server = start_server(_env(tmp_path), console_script=True)
    with _connect(server.base_url) as slow:
        slow.sendall(
            b"POST /score HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 500\r\n\r\n{"
        )
        waited = _seconds_until_closed(slow)
    assert waited is not None


def test_prompt_clients_are_unaffected(
    start_server, tmp_path: Path, model_files: ModelFiles
) -> None:
    _publish(tmp_path, model_files)
    server = start_server(_env(tmp_path), console_script=True)
    with server.client() as http:
        for _ in range(3):
            assert http.post("/score", json=EXAMPLE_LEAD).status_code == 200
            time.sleep(TIMEOUT / 2)  # within the keep-alive timeout: the same connection


def test_connections_beyond_the_limit_get_503(start_server, tmp_path: Path) -> None:
    server = start_server(_env(tmp_path, LEADSCORE_LIMIT_CONCURRENCY="3"), console_script=True)
    idle = [_connect(server.base_url) for _ in range(3)]
    try:
        with server.client() as http:
            assert http.get("/health").status_code == 503
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    with server.client() as http:
        assert http.get("/health").status_code == 200
