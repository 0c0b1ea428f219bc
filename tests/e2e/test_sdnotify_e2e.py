"""A real daemon against the sandbox, with a real unix datagram socket as `NOTIFY_SOCKET` (what
systemd gives a `Type=notify` unit with `WatchdogSec=`): READY=1 first, then WATCHDOG=1 every
half `WATCHDOG_USEC` from the event loop; a frozen process (SIGSTOP) sends none, and pings
resume when it runs again; a drain sends STOPPING=1. The booted-systemd test
(tests/deploy/test_systemd_boot.py) shows the unit with systemd itself."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    directory = tempfile.mkdtemp(prefix="sdn-", dir="/tmp")  # short: sun_path is 108 bytes
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        yield path, sock
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(directory)


def _receive(sock: socket.socket, seconds: float) -> list[str]:
    """Every datagram that arrives within `seconds`."""
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return got


def _until(sock: socket.socket, wanted: str, seconds: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while wanted not in "\n".join(got) and (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return got


def test_ready_watchdog_frozen_and_stopping(
    sandbox: Any, daemon_factory: Any, notify_socket: tuple[str, socket.socket]
) -> None:
    path, sock = notify_socket
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}  # a ping every 0.5 s
    daemon = daemon_factory(plain_env=env)
    got = _until(sock, "STATUS=running", 60)
    assert got and got[0].startswith("READY=1\n"), (got, daemon.log_text[-2000:])
    assert "STATUS=running: dequeuing from batches" in got
    pings = _receive(sock, 5)
    assert pings.count("WATCHDOG=1") >= 3, pings  # 10 are due; generous on shared cores

    daemon.signal(signal.SIGSTOP)
    try:
        time.sleep(1)  # a ping sent just before the stop may still be queued
        _receive(sock, 0.2)
        frozen = _receive(sock, 4)
    finally:
        daemon.signal(signal.SIGCONT)
    assert frozen == [], frozen
    assert "WATCHDOG=1" in _until(sock, "WATCHDOG=1", 60)

    daemon.signal(signal.SIGTERM)
    stopping = _until(sock, "STOPPING=1", 60)
    assert any(m.startswith("STOPPING=1") for m in stopping), stopping
    assert daemon.wait(60) == 0
