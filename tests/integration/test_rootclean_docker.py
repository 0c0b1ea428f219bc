"""Root-owned workspaces and an unprivileged daemon: real Docker, a real unprivileged user.

The condition is produced for real: a container running as root (as step containers do) fills
a workspace with root-owned directories, one of them without write permission, another
unreadable. The daemon side then runs as a user that cannot remove them: when the tests run
as root, `rootclean_child.py` is started with `setpriv` as `nobody` (uid 65534) with the Docker
socket's group added (the deb/systemd install runs the daemon as such a user); when the tests
already run unprivileged, directly. Nothing is faked.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixtures_docker import STEP_IMAGE, DockerEngine

from executor.runtime.argv import LABEL_EXECUTOR, ContainerSpec, DockerOptions
from executor.runtime.docker import DockerRuntime

pytestmark = pytest.mark.docker

CHILD = Path(__file__).with_name("rootclean_child.py")
UNPRIVILEGED = 65534
#: Root-owned entries: read-only directories with files, an unreadable directory, dot files.
MESS = (
    "mkdir -p /data/repo/cache/sub /data/locked && echo x > /data/repo/cache/sub/f"
    " && echo y > /data/locked/f && echo z > /data/.hidden && echo w > /data/repo/top.txt"
    " && chmod 0555 /data/repo/cache /data/repo/cache/sub && chmod 0700 /data/locked"
)
#: Put into the daemon's environment; must never show up in its output or logs.
CANARY = "canary-secret-5e1f0c"


@dataclass
class Daemon:
    """Where the unprivileged "daemon" keeps workspaces, and how to run code as it."""

    docker: DockerEngine
    labels: dict[str, str]
    root: Path
    home: Path
    prefix: list[str]
    name: str

    def make_workspace(self, tag: str) -> Path:
        """A workspace owned by the daemon user, filled with root-owned files by a container."""
        ws = self.root / f"workspace-7-{tag}"
        ws.mkdir()
        if os.getuid() == 0:
            os.chown(ws, UNPRIVILEGED, UNPRIVILEGED)
        runtime = DockerRuntime(executor_name=self.name, env=self.docker.env)
        spec = ContainerSpec(
            image=STEP_IMAGE,
            script_path="",
            workspace_dir=str(ws),
            name=f"executor-{self.name}-mess-{tag}",
            labels={**self.labels, LABEL_EXECUTOR: self.name},
            args=("-c", MESS),
        )
        lines: list[str] = []

        class Sink:
            def write(self, stream: str, line: str) -> None:
                lines.append(line)

        try:
            code = asyncio.run(runtime.run(spec, DockerOptions(), Sink()))
        finally:
            runtime.close()
        assert code == 0, lines
        assert (ws / "locked").stat().st_uid == 0  # root-owned, not the daemon user's
        return ws

    def run(self, mode: str, ws: Path, image: str, *step_images: str) -> dict[str, Any]:
        env = {"PATH": os.environ["PATH"], "HOME": str(self.home), "SRC_SECRET": CANARY}
        if "DOCKER_HOST" in self.docker.env:
            env["DOCKER_HOST"] = self.docker.env["DOCKER_HOST"]
        argv = [sys.executable, str(CHILD), mode, str(ws), self.name, image, *step_images]
        proc = subprocess.run(
            [*self.prefix, *argv], capture_output=True, text=True, env=env, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        assert CANARY not in proc.stdout + proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout)
        # The daemon side really ran unprivileged.
        assert result["uid"] == (UNPRIVILEGED if os.getuid() == 0 else os.getuid()) != 0
        return result

    def leftover_containers(self) -> list[str]:
        out = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={LABEL_EXECUTOR}={self.name}"],
            capture_output=True,
            text=True,
            env=self.docker.env,
            check=True,
        )
        return out.stdout.split()


@pytest.fixture
def daemon(docker_engine: DockerEngine, test_labels: dict[str, str]) -> Iterator[Daemon]:
    prefix: list[str] = []
    if os.getuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot become an unprivileged user")
        host = docker_engine.env.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        if not host.startswith("unix://"):
            pytest.skip(f"the unprivileged user needs the Docker socket's group: {host}")
        gid = os.stat(host.removeprefix("unix://")).st_gid
        prefix = [
            "setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", f"--groups={gid}",
            "--",
        ]  # fmt: skip
    # Not under pytest's tmp_path: that is private to the user running the tests.
    root = Path(tempfile.mkdtemp(prefix="executor-rootclean-", dir="/tmp"))
    home = root / "home"
    home.mkdir()
    if os.getuid() == 0:
        for path in (root, home):
            os.chown(path, UNPRIVILEGED, UNPRIVILEGED)
    d = Daemon(
        docker=docker_engine,
        labels=test_labels,
        root=root,
        home=home,
        prefix=prefix,
        name=f"test-{uuid.uuid4().hex[:8]}",
    )
    yield d
    for cid in d.leftover_containers():
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, env=docker_engine.env)
    if os.getuid() != 0 and root.exists():
        # Unprivileged test run: root-owned leftovers of a failed test need root to go.
        subprocess.run(
            ["docker", "run", "--rm", "--label", f"{LABEL_EXECUTOR}={d.name}",
             *[f"--label={k}={v}" for k, v in test_labels.items()],
             "--network", "none", "-v", f"{root}:/data", "--entrypoint", "/bin/sh", STEP_IMAGE,
             "-c", "rm -rf /data/* /data/.[!.]*"],
            capture_output=True, env=docker_engine.env, check=False,
        )  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


def test_teardown_falls_back_to_a_cleanup_container(daemon: Daemon) -> None:
    ws = daemon.make_workspace("a")
    result = daemon.run("teardown", ws, "", STEP_IMAGE)
    entry = result["entry"]
    # The host removal really failed for lack of permission, then the container removed it.
    assert entry.startswith(f"Removing {ws}\n")
    assert "Permission denied; removing the rest with a cleanup container" in entry
    assert "Operation failed" not in entry
    assert result["ok"] is True and result["exists"] is False
    assert not ws.exists()
    (event,) = [e for e in result["logs"] if e["event"].startswith("workspace removed")]
    assert event["image"] == STEP_IMAGE and event["path"] == str(ws)
    assert daemon.leftover_containers() == []


def test_janitor_call_removes_a_root_owned_workspace(daemon: Daemon) -> None:
    ws = daemon.make_workspace("b")
    result = daemon.run("janitor", ws, STEP_IMAGE)
    assert result["removed"] == [str(ws)] and result["errors"] == 0, result
    assert result["exists"] is False
    assert daemon.leftover_containers() == []


def test_failed_cleanup_is_logged_and_the_workspace_reported(daemon: Daemon) -> None:
    # An image that cannot be had: the pull goes to a closed local port, never to a registry.
    image = "localhost:1/executor-no-such-image:0"
    ws = daemon.make_workspace("c")
    result = daemon.run("teardown", ws, image)
    assert result["ok"] is False and result["exists"] is True
    assert "Operation failed: cleanup container exited with 125" in result["entry"]
    (event,) = [e for e in result["logs"] if e["event"].startswith("workspace left behind")]
    assert event["log_level"] == "error"
    assert event["path"] == str(ws) and event["image"] == image
    assert "exited with 125" in event["error"] and "Permission denied" in event["error"]
    assert daemon.leftover_containers() == []
