"""systemd notifications over a real unix datagram socket: the fields as sd_notify(3) frames
them, the watchdog pinging only while healthy, and no-ops without `NOTIFY_SOCKET`."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.run.sdnotify import Notifier


@pytest.fixture
def listener() -> Iterator[tuple[str, socket.socket]]:
    directory = tempfile.mkdtemp(prefix="sdn-", dir="/tmp")  # short: sun_path is 108 bytes
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    try:
        yield path, sock
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(directory)


def _drain(sock: socket.socket) -> list[bytes]:
    got = []
    sock.setblocking(False)
    try:
        while True:
            got.append(sock.recv(4096))
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(10)
    return got


def test_fields_are_one_datagram_of_lines(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled and notifier.watchdog_interval == 0
    assert notifier.notify("READY=1", "STATUS=connecting to the frontend")
    assert sock.recv(4096) == b"READY=1\nSTATUS=connecting to the frontend"
    notifier.close()


def test_abstract_socket_names(tmp_path: Path) -> None:
    name = f"executor-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(10)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).notify("STOPPING=1")
        assert sock.recv(4096) == b"STOPPING=1"
    finally:
        sock.close()


def test_watchdog_pings_only_while_healthy(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": str(os.getpid())}
    notifier = Notifier(env)
    assert notifier.watchdog_interval == pytest.approx(0.05)
    healthy = [True]

    async def scenario() -> tuple[list[bytes], list[bytes], list[bytes]]:
        task = asyncio.create_task(notifier.watchdog(lambda: healthy[0]))
        await asyncio.sleep(0.5)
        first = _drain(sock)
        healthy[0] = False
        await asyncio.sleep(0.1)  # a ping may have been on its way when health changed
        _drain(sock)
        await asyncio.sleep(0.5)
        unhealthy = _drain(sock)
        healthy[0] = True
        await asyncio.sleep(0.5)
        again = _drain(sock)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return first, unhealthy, again

    first, unhealthy, again = asyncio.run(scenario())
    assert first and set(first) == {b"WATCHDOG=1"}
    assert unhealthy == []
    assert again and set(again) == {b"WATCHDOG=1"}


def test_no_socket_or_another_pids_watchdog_is_a_no_op() -> None:
    assert not Notifier({}).notify("READY=1")
    other = Notifier({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval == 0
    assert Notifier({"NOTIFY_SOCKET": "vsock:2:9"}).enabled is False


def test_an_unreachable_socket_fails_quietly(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert notifier.notify("READY=1") is False
    assert notifier.notify("WATCHDOG=1") is False
