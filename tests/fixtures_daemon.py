"""Fixture plugin: the daemon (`executor run`) as a real subprocess against the sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench._common import executor_env

__all__ = ["Daemon", "daemon_factory", "run_validate", "wait_for"]


class Daemon:
    """One `executor run` process; its stderr (JSON log lines) goes to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "executor", "run"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    @property
    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        self._log.close()


@pytest.fixture
def daemon_factory(sandbox: Any, tmp_path: Path) -> Iterator[Any]:
    """Start daemons against the sandbox: `daemon_factory(**EXECUTOR_overrides) -> Daemon`;
    `plain_env` adds variables without the prefix (Sourcegraph's `NODE_EXPORTER_URL`)."""
    started: list[Daemon] = []
    workspace_root = tmp_path / "workspaces"
    workspace_root.mkdir()

    def start(
        frontend: Any = None, plain_env: dict[str, str] | None = None, **overrides: str
    ) -> Daemon:
        box = frontend if frontend is not None else sandbox
        env = executor_env(box.url, box.token, workspace_root, **overrides)
        env.update(plain_env or {})
        daemon = Daemon(env, tmp_path / f"daemon-{len(started)}.log")
        started.append(daemon)
        return daemon

    start.workspace_root = workspace_root  # type: ignore[attr-defined]
    yield start
    for daemon in started:
        daemon.stop()


def wait_for(predicate: Any, timeout: float, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def run_validate(sandbox: Any, **variables: str) -> subprocess.CompletedProcess[str]:
    """`executor validate` against the sandbox with only PATH, HOME and the given variables."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "EXECUTOR_FRONTEND_URL": sandbox.url,
        "EXECUTOR_FRONTEND_PASSWORD": sandbox.token,
        "EXECUTOR_QUEUE_NAME": "batches",
        **variables,
    }
    if "DOCKER_HOST" in os.environ:
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    return subprocess.run(
        [sys.executable, "-m", "executor", "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
