"""The sandbox's read timeouts over raw sockets on loopback (`executor.sandbox.timeouts`).

A client that opens a connection and sends nothing, half a request line, half its headers, or a
body shorter than its `Content-Length` must not keep the connection: each gets `408 Request
Timeout` where an answer can still be sent, and the connection is closed. The sandbox runs with
2 s timeouts; the test allows 60 s (shared cores). Complete requests, kept-alive ones included,
are unaffected.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.sandbox.server import SandboxServer
from executor.sandbox.state import SandboxSettings

TOKEN = "timeouts-test-token"
BOUND = 60.0  # generous: the timeouts are 2 s
REQUEST = (
    "GET /.executors/test/auth HTTP/1.1\r\nHost: x\r\n"
    f"Authorization: token-executor {TOKEN}\r\n\r\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    settings = SandboxSettings(
        token=TOKEN,
        data_dir=tmp_path_factory.mktemp("timeouts"),
        header_timeout=2.0,
        body_timeout=2.0,
    )
    with SandboxServer(settings) as srv:
        yield srv


def _connect(server: SandboxServer) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=BOUND)
    sock.settimeout(BOUND)
    return sock


def _response(sock: socket.socket) -> bytes:
    """One whole response (head and its Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or b"<closed>"
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(v for k, _, v in (ln.partition(b": ") for ln in head.split(b"\r\n"))
                      if k.lower() == b"content-length"))  # fmt: skip
    while len(body) < length:
        body += sock.recv(65536) or b"<closed>"
    return head + b"\r\n\r\n" + body


def _until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started = time.monotonic()
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic() - started


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"GET /.executors/test/auth HT",
        b"GET /.executors/test/auth HTTP/1.1\r\nHost: x\r\nAuthorization: token-exec",
    ],
    ids=["nothing", "half a request line", "half the headers"],
)
def test_a_half_sent_request_head_gets_408_and_is_closed(
    server: SandboxServer, sent: bytes
) -> None:
    with _connect(server) as sock:
        sock.sendall(sent)
        data, took = _until_closed(sock)  # a socket timeout here fails the test
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert b"request headers not received in time" in data
    assert took < BOUND


def test_a_body_that_stops_coming_gets_408_and_is_closed(server: SandboxServer) -> None:
    head = (
        "POST /.executors/queue/batches/dequeue HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: token-executor {TOKEN}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    )
    with _connect(server) as sock:
        sock.sendall(head.encode() + b'{"executorName":')  # 16 of 100 bytes, then nothing
        data, took = _until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert b"request body not received: no data for 2s" in data
    assert took < BOUND


def test_the_next_half_sent_request_on_a_kept_alive_connection_times_out_too(
    server: SandboxServer,
) -> None:
    request = REQUEST
    with _connect(server) as sock:
        sock.sendall(request.encode())
        first = _response(sock)
        assert first.startswith(b"HTTP/1.1 200 ") and first.endswith(b"ok"), first
        sock.sendall(request.encode()[:30])
        data, _ = _until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 "), data


def test_complete_requests_are_unaffected(server: SandboxServer) -> None:
    request = REQUEST
    with _connect(server) as sock:
        for _ in range(3):
            sock.sendall(request.encode())
            answer = _response(sock)
            assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"ok"), answer
            time.sleep(1)  # idle, but under the keep-alive timeout: still served
    # A slow head, all of it well inside the timeout, is not cut short either.
    with _connect(server) as sock:
        for i in range(0, len(request), 20):
            sock.sendall(request.encode()[i : i + 20])
            time.sleep(0.1)
        assert _response(sock).startswith(b"HTTP/1.1 200 ")


def test_timeouts_default_to_go_like_bounds(tmp_path: Path) -> None:
    settings = SandboxSettings(token=TOKEN, data_dir=tmp_path)
    assert (settings.header_timeout, settings.body_timeout) == (10.0, 30.0)
