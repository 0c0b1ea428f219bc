"""A stop before the frontend ever answered: `executor run` exits 128 + the signal (143 for
SIGTERM), not 1, so a service manager tells a stop from a failure (the systemd unit's
`SuccessExitStatus=143`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_while_connecting_exits_128_plus_signal(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "EXECUTOR_FRONTEND_URL": f"http://127.0.0.1:{port}",
        "EXECUTOR_FRONTEND_PASSWORD": "connect-token",
        "EXECUTOR_QUEUE_NAME": "batches",
        "EXECUTOR_LOG_FORMAT": "json",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "executor", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(3)  # started and trying to connect (the port refuses)
        assert proc.poll() is None, proc.communicate()[0]
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, out
    assert "signal while connecting" in out
    assert "connect-token" not in out
