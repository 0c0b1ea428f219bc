"""`EXECUTOR_HEALTH_SERVER_ADDR` on a real daemon: `/healthz` answers 200 while it heartbeats the
sandbox, and nothing once the process is frozen (SIGSTOP: the loop answers every probe itself,
so a frozen loop cannot look healthy). A disk check refusing work is logged once."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest
from fixtures_daemon import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthz(port: int, timeout: float = 5) -> tuple[int, dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")
    except OSError:
        return None


def test_healthz_from_the_running_daemon(sandbox: Any, daemon_factory: Any) -> None:
    port = _free_port()
    daemon = daemon_factory(health_server_addr=f"127.0.0.1:{port}")
    answer = wait_for(lambda: _healthz(port), 60, 0.5)
    assert answer is not None and answer[0] == 200, (answer, daemon.log_text[-2000:])
    assert answer[1]["healthy"] is True and "heartbeatAgeSeconds" in answer[1]
    daemon.signal(signal.SIGSTOP)
    try:
        assert _healthz(port, timeout=3) is None  # frozen: no answer, the probe fails
    finally:
        daemon.signal(signal.SIGCONT)
    assert wait_for(lambda: _healthz(port), 60, 0.5) is not None


def test_disk_pressure_stops_dequeuing_and_says_so_once(sandbox: Any, daemon_factory: Any) -> None:
    # 99 % free wanted: no real workspace filesystem here has that much free.
    job_id = sandbox.enqueue(
        {"dockerSteps": [{"key": "", "image": "executor-busybox:latest", "commands": ["true"]}]}
    )
    daemon = daemon_factory(min_free_disk="99%", queue_poll_interval="200ms")
    assert wait_for(lambda: "not dequeuing: low disk space" in daemon.log_text, 60, 0.5)
    assert sandbox.job(job_id)["state"] == "queued"
    assert daemon.log_text.count("not dequeuing: low disk space") == 1
