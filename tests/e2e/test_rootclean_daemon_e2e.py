"""`executor run` as an unprivileged user: a step leaves root-owned files, the job still ends clean.

The systemd unit runs the daemon as a dedicated non-root user while step containers run as root
and write into the bind-mounted workspace. This runs the real daemon that way (as `nobody` with
the Docker socket's group, through `setpriv`, when the tests run as root) against the sandbox,
with a step that leaves a root-owned read-only directory tree behind. The daemon cannot remove
it itself; its teardown must fall back to the cleanup container (`executor.runtime.rootclean`, wired
in `executor run`), and nothing may be left: no workspace, no container. Nothing is faked.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_daemon import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "executor-busybox:latest"
NOBODY = 65534
STEP = [
    "mkdir -p /data/left/cache/sub && echo x > /data/left/cache/sub/f",
    "chmod 0555 /data/left/cache/sub /data/left/cache /data/left",
]


@pytest.fixture
def nobody_root() -> Iterator[tuple[Path, list[str]]]:
    """A TMPDIR owned by the unprivileged user, and the argv prefix that becomes that user."""
    if os.getuid() != 0:
        prefix: list[str] = []
    elif shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot become an unprivileged user")
    else:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        if not host.startswith("unix://"):
            pytest.skip(f"the unprivileged user needs the Docker socket's group: {host}")
        gid = os.stat(host.removeprefix("unix://")).st_gid
        prefix = [
            "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={gid}", "--",
        ]  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="executor-nonroot-", dir="/tmp"))
    if os.getuid() == 0:
        os.chown(root, NOBODY, NOBODY)
    yield root, prefix
    shutil.rmtree(root, ignore_errors=True)  # as root: whatever a failed run left


def _our_containers(root: Path) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=executor.lock"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    mine = []
    for cid in out:
        lock = subprocess.run(
            ["docker", "inspect", "-f", '{{index .Config.Labels "executor.lock"}}', cid],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if lock.startswith(str(root)):
            mine.append(cid)
    return mine


def test_unprivileged_daemon_removes_root_owned_workspace(
    sandbox: Any, nobody_root: tuple[Path, list[str]]
) -> None:
    root, prefix = nobody_root
    job_id = sandbox.enqueue(
        {"dockerSteps": [{"key": "", "image": IMAGE, "commands": STEP, "dir": ".", "env": []}]}
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "TMPDIR": str(root),
        "EXECUTOR_FRONTEND_URL": sandbox.url,
        "EXECUTOR_FRONTEND_PASSWORD": sandbox.token,
        "EXECUTOR_QUEUE_NAME": "batches",
        "EXECUTOR_QUEUE_POLL_INTERVAL": "100ms",
        "EXECUTOR_HEARTBEAT_INTERVAL": "1s",
        "EXECUTOR_JOB_NUM_CPUS": "1",
        "EXECUTOR_JOB_MEMORY": "256M",
        # Never pulled: the job's own step image is local, and is preferred.
        "EXECUTOR_CLEANUP_IMAGE": "localhost:1/executor-no-such-image:0",
        "EXECUTOR_LOG_FORMAT": "json",
    }
    if "DOCKER_HOST" in os.environ:
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    log = root.parent / f"{root.name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "executor", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            done = wait_for(
                lambda: sandbox.job(job_id)["state"] not in ("queued", "processing"), timeout=90
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
    text = log.read_text(encoding="utf-8", errors="replace")
    log.unlink()
    assert done, text[-3000:]
    assert code == 0, text[-3000:]
    job = sandbox.job(job_id)
    assert job["state"] == "completed", (job["failure_message"], text[-3000:])
    teardown = {e["key"]: e for e in job["execution_logs"]}["teardown.fs"]["out"]
    # The daemon's own removal really was refused, then the cleanup container did it.
    assert "removing the rest with a cleanup container" in teardown, teardown
    assert "Operation failed" not in teardown, teardown
    assert "workspace removed with a cleanup container" in text
    time.sleep(0.5)  # the cleanup container's --rm
    assert not [p.name for p in root.iterdir() if p.name.startswith("workspace-")]
    assert _our_containers(root) == []
