"""A daemon whose Docker engine does not answer `GET /info` takes no job: the job stays queued
for healthy executors, the reason is logged once, `/healthz` shows it, and the heartbeat's
`prometheusMetrics` carries `executor_docker_engine_up 0.0`. The engine here is the FAKE in
`tests/fake_engine.py` (answering errors): a broken engine cannot be produced on the shared one."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fake_engine import fake_engine
from fixtures_daemon import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthz(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            body: dict[str, Any] = json.loads(answer.read())
            return body
    except OSError:
        return None


def test_a_daemon_with_a_broken_engine_dequeues_nothing(
    sandbox: Any, daemon_factory: Any, tmp_path: Path
) -> None:
    job_id = sandbox.enqueue(
        {"dockerSteps": [{"key": "", "image": "executor-busybox:latest", "commands": ["true"]}]}
    )
    port = _free_port()
    with fake_engine(tmp_path, "error") as engine:
        daemon = daemon_factory(
            plain_env={"DOCKER_HOST": engine},
            health_server_addr=f"127.0.0.1:{port}",
            queue_poll_interval="200ms",
        )

        def stored_metrics() -> str:
            executors = sandbox._call("GET", "/.sandbox/executors")
            return "".join(e["prometheus_metrics"] for e in executors)

        assert wait_for(lambda: "executor_docker_engine_up 0.0" in stored_metrics(), 90, 0.5), (
            daemon.log_text[-3000:]
        )
        health = wait_for(lambda: (h := _healthz(port)) and h["refusing"] and h, 30)
        time.sleep(1)  # a few more polls: none of them may take the job
        assert sandbox.job(job_id)["state"] == "queued"
        log = daemon.log_text
    assert health, log[-3000:]
    expected = "the Docker engine answered 404 to GET /info: page not found"
    assert health["refusing"] == expected, health
    assert log.count("Docker engine unfit for jobs") == 1, log[-3000:]
    assert log.count("not dequeuing: " + expected) == 1, log[-3000:]
