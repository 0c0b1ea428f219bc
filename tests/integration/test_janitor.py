"""The janitor against real Docker and a real file system, with two "daemons" on one host.

A sibling daemon is alive while its liveness lock is held (here by a second lock in this process:
flock locks belong to open file descriptions, so they conflict within one process too). A dead
daemon is a child process that took its lock and was killed with SIGKILL, leaving the file behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_docker import DockerEngine

from executor.runtime.argv import container_labels
from executor.runtime.auth import write_docker_auth_config
from executor.runtime.docker import DockerRuntime
from executor.runtime.janitor import (
    Janitor,
    JanitorCounters,
    executor_alive,
    hold_liveness_lock,
    liveness_lock_path,
)
from executor.workspace.marker import (
    marked_directory,
    marker_path,
    read_owner_marker,
    remove_owner_marker,
    write_owner_marker,
)


def _dead_daemon_lock(root: Path, name: str) -> Path:
    """Take `name`'s lock in a child process, then SIGKILL it: the file stays, unlocked."""
    code = (
        "import sys, time\n"
        "from executor.runtime.janitor import hold_liveness_lock\n"
        "lock = hold_liveness_lock(sys.argv[1], sys.argv[2])\n"
        "print('locked', flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(root), name],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "locked"
        path = liveness_lock_path(root, name)
        assert executor_alive(path) is True
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert path.exists()
    return path


def test_liveness_lock_lifecycle(tmp_path: Path) -> None:
    path = liveness_lock_path(tmp_path, "host-1/odd name")
    assert path.name == ".executor-host-1_odd_name.lock"
    assert executor_alive(path) is False  # no file: dead
    with hold_liveness_lock(tmp_path, "host-1/odd name") as lock:
        assert lock.path == path
        assert executor_alive(path) is True
        assert path.read_text().strip() == str(os.getpid())
        with pytest.raises(RuntimeError, match="already running"):
            hold_liveness_lock(tmp_path, "host-1/odd name")
    assert not path.exists()
    assert executor_alive(path) is False


def test_killed_daemon_is_dead(tmp_path: Path) -> None:
    path = _dead_daemon_lock(tmp_path, "victim")
    assert executor_alive(path) is False
    # A new daemon with the same name can take the lock over.
    with hold_liveness_lock(tmp_path, "victim"):
        assert executor_alive(path) is True


def test_owner_marker_round_trip(tmp_path: Path) -> None:
    directory = tmp_path / "workspace-42-x"
    directory.mkdir()
    write_owner_marker(directory, executor_name="e1", job_id=42, lock_path="/tmp/x.lock")
    # Beside the directory, not in it: a step (which gets the directory mounted) cannot reach it.
    assert os.listdir(directory) == []
    assert marker_path(directory) == tmp_path / ".workspace-42-x.owner"
    assert marked_directory(marker_path(directory)) == directory
    assert json.loads(marker_path(directory).read_text()) == {
        "executor": "e1",
        "job": "42",
        "lock": "/tmp/x.lock",
    }
    marker = read_owner_marker(directory)
    assert marker is not None
    assert (marker.executor, marker.job, marker.lock) == ("e1", "42", "/tmp/x.lock")
    marker_path(directory).write_text("{not json")
    assert read_owner_marker(directory) is None
    assert read_owner_marker(tmp_path / "missing") is None
    remove_owner_marker(directory)
    assert not marker_path(directory).exists()


class Host:
    """A workspace root plus helpers to create labelled containers and marked workspaces."""

    def __init__(self, engine: DockerEngine, root: Path, test_labels: dict[str, str]) -> None:
        self.engine = engine
        self.root = root
        self.test_labels = test_labels
        self.host = f"test-host-{uuid.uuid4().hex[:8]}"

    def container(self, executor: str, job: int, *, host: str | None = None) -> str:
        name = f"executor-test-{uuid.uuid4().hex[:12]}"
        labels = {
            **self.test_labels,
            **container_labels(
                executor_name=executor,
                job_id=job,
                host=host or self.host,
                lock_path=str(liveness_lock_path(self.root, executor)),
            ),
        }
        label_args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
        argv = ["docker", "run", "-d", "--init", "--name", name, *label_args]
        subprocess.run(
            [*argv, self.engine.image, "sleep", "1000"],
            check=True,
            capture_output=True,
            env=self.engine.env,
        )
        return name

    def workspace(self, executor: str | None, job: int, *, age: float = 0.0) -> Path:
        path = self.root / f"workspace-{job}-{uuid.uuid4().hex[:6]}"
        (path / "repo").mkdir(parents=True)
        (path / "repo" / "file.txt").write_text("data")
        if executor is not None:
            write_owner_marker(
                path,
                executor_name=executor,
                job_id=job,
                lock_path=liveness_lock_path(self.root, executor),
            )
        if age:
            past = time.time() - age
            os.utime(path, (past, past))
        return path

    def exists(self, name: str) -> bool:
        out = subprocess.run(
            ["docker", "container", "inspect", name],
            capture_output=True,
            env=self.engine.env,
            check=False,
        )
        return out.returncode == 0


@pytest.fixture
def host(
    docker_engine: DockerEngine, test_labels: dict[str, str], tmp_path: Path
) -> Iterator[Host]:
    root = tmp_path / "workspaces"
    root.mkdir()
    yield Host(docker_engine, root, test_labels)


@pytest.mark.docker
def test_janitor_removes_orphans_and_spares_live_sibling(host: Host) -> None:
    me, sibling, dead, vanished = "exec-me", "exec-sibling", "exec-dead", "exec-vanished"
    runtime = DockerRuntime(executor_name=me, env=host.engine.env)
    dead_lock = _dead_daemon_lock(host.root, dead)
    with (
        hold_liveness_lock(host.root, me) as my_lock,
        hold_liveness_lock(host.root, sibling) as sibling_lock,
    ):
        keep = {
            "my live job": host.container(me, 1),
            "sibling's job": host.container(sibling, 3),
            "other host's dead job": host.container(dead, 6, host="some-other-host"),
        }
        remove = {
            "my finished job": host.container(me, 2),
            "dead executor's job": host.container(dead, 4),
            "executor without lock file": host.container(vanished, 5),
        }
        keep_dirs = {
            "my live job": host.workspace(me, 1),
            "my live job, bare ID in marker": host.workspace(me, 9),
            "sibling's job": host.workspace(sibling, 3),
            "fresh, no marker yet": host.workspace(None, 7),
        }
        remove_dirs = {
            "my finished job": host.workspace(me, 2),
            "dead executor's job": host.workspace(dead, 4),
            "old, no marker": host.workspace(None, 8, age=7200),
        }
        not_a_workspace = host.root / "other-dir"
        not_a_workspace.mkdir()
        # A step can write inside its workspace, never beside it: a forged marker of the old
        # layout (claiming my live job) changes nothing.
        forged = {"executor": me, "job": "1", "lock": str(my_lock.path)}
        (remove_dirs["dead executor's job"] / ".executor-owner").write_text(json.dumps(forged))
        stray = host.root / ".workspace-99-gone.owner"  # teardown stopped between the two
        stray.write_text(json.dumps({"executor": dead, "job": "99", "lock": ""}))

        counters = JanitorCounters()
        janitor = Janitor(
            runtime=runtime,
            executor_name=me,
            host=host.host,
            workspace_root=host.root,
            live_jobs=lambda: [1, "9-batches"],
            counters=counters,
            lock_path=my_lock.path,
        )
        try:
            result = asyncio.run(janitor.run_once())
            second = asyncio.run(janitor.run_once())
        finally:
            runtime.close()

        assert sorted(result.containers) == sorted(remove.values())
        assert sorted(result.workspaces) == sorted(remove_dirs.values())
        assert result.errors == 0
        for what, name in keep.items():
            assert host.exists(name), what
        for what, name in remove.items():
            assert not host.exists(name), what
        for what, path in keep_dirs.items():
            assert (path / "repo" / "file.txt").exists(), what
        for what, path in remove_dirs.items():
            assert not path.exists() and not marker_path(path).exists(), what
        assert marker_path(keep_dirs["sibling's job"]).exists()
        assert not stray.exists()
        assert not_a_workspace.exists()
        # The dead daemon's lock file is gone; live ones stay.
        assert not dead_lock.exists()
        assert my_lock.path.exists()
        assert sibling_lock.path.exists()
        assert (counters.containers_removed, counters.workspaces_removed, counters.errors) == (
            3,
            3,
            0,
        )
        assert (second.containers, second.workspaces) == ([], [])

    # Once the sibling is gone (its lock released), its leftovers are orphans too.
    runtime = DockerRuntime(executor_name=me, env=host.engine.env)
    janitor = Janitor(
        runtime=runtime,
        executor_name=me,
        host=host.host,
        workspace_root=host.root,
        live_jobs=lambda: [1],
    )
    try:
        third = asyncio.run(janitor.run_once())
    finally:
        runtime.close()
    assert keep["sibling's job"] in third.containers
    assert keep_dirs["sibling's job"] in third.workspaces
    assert not host.exists(keep["sibling's job"])
    # Our own live job is still spared, and other hosts' containers are never considered.
    assert host.exists(keep["my live job"])
    assert host.exists(keep["other host's dead job"])


@pytest.mark.docker
def test_run_forever_sweeps_at_start_and_every_interval(host: Host) -> None:
    me = "exec-loop"
    runtime = DockerRuntime(executor_name=me, env=host.engine.env)
    counters = JanitorCounters()
    first = host.container(me, 10)
    janitor = Janitor(
        runtime=runtime,
        executor_name=me,
        host=host.host,
        workspace_root=host.root,
        live_jobs=list,
        interval=0.2,
        counters=counters,
    )

    async def scenario() -> None:
        task = asyncio.create_task(janitor.run_forever())
        try:
            for _ in range(100):
                if counters.containers_removed == 1:
                    break
                await asyncio.sleep(0.05)
            assert counters.containers_removed == 1  # swept at start-up
            second = await asyncio.to_thread(host.container, me, 11)
            for _ in range(100):
                if counters.containers_removed == 2:
                    break
                await asyncio.sleep(0.05)
            assert counters.containers_removed == 2  # and again one interval later
            assert not host.exists(second)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    try:
        asyncio.run(scenario())
    finally:
        runtime.close()
    assert not host.exists(first)
    assert counters.errors == 0


@pytest.mark.docker
def test_docker_config_dirs_of_dead_owners_go_even_when_workspaces_are_kept(host: Host) -> None:
    """A daemon killed mid-job leaves its job's `docker --config` directory (registry secrets)
    beside the workspace; before the fix no janitor ever looked at it."""
    me, dead = "exec-me", "exec-dead"
    _dead_daemon_lock(host.root, dead)

    def config_dir(owner: str | None, job: int) -> Path:
        path = write_docker_auth_config({"auths": {"r.invalid": {"auth": "c2VjcmV0"}}}, host.root)
        if owner is not None:
            write_owner_marker(path, executor_name=owner, job_id=job)
        return path

    runtime = DockerRuntime(executor_name=me, env=host.engine.env)
    with hold_liveness_lock(host.root, me) as my_lock:
        live, finished, orphan = config_dir(me, 1), config_dir(me, 2), config_dir(dead, 3)
        fresh_unmarked = config_dir(None, 4)
        kept_workspace = host.workspace(dead, 3)
        janitor = Janitor(
            runtime=runtime,
            executor_name=me,
            host=host.host,
            workspace_root=host.root,
            live_jobs=lambda: ["1"],
            lock_path=my_lock.path,
            clean_workspaces=False,
        )
        try:
            result = asyncio.run(janitor.run_once())
        finally:
            runtime.close()
    assert sorted(result.workspaces) == sorted([finished, orphan])
    assert (live / "config.json").exists() and (fresh_unmarked / "config.json").exists()
    assert kept_workspace.exists()  # EXECUTOR_KEEP_WORKSPACES: workspaces stay


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue  # the listing's own descriptor, closed meanwhile
    return count


@pytest.mark.docker
def test_sweeps_do_not_pile_up_engine_connections(host: Host) -> None:
    """docker-py keeps one connection per distinct URL (up to 25) unless told otherwise: each
    container the janitor looked up by ID left a socket open (`bench.soak` saw the daemon's
    descriptors creep up)."""
    runtime = DockerRuntime(executor_name="exec-sockets", env=host.engine.env)

    async def lookups() -> tuple[int, int]:
        await runtime.list_containers({"executor.host": host.host})
        before = _open_sockets()
        for i in range(30):
            assert (
                await runtime.remove_container(f"executor-missing-{uuid.uuid4().hex}-{i}") is False
            )
            await runtime.list_containers({"executor.host": host.host})
        return before, _open_sockets()

    try:
        before, after = asyncio.run(lookups())
    finally:
        runtime.close()
    assert after <= before + 1, (before, after)


def test_a_step_written_fifo_never_blocks_the_janitor(tmp_path: Path) -> None:
    """Hostile corpus: a step replaces its workspace's owner marker with a FIFO, or points the
    marker's lock path at one; reading either returns at once (a blocking open would freeze
    the sweep, or the event loop)."""
    import threading

    ws = tmp_path / "workspace-1-abc"
    ws.mkdir()
    os.mkfifo(marker_path(ws))
    fifo_lock = tmp_path / "lock.fifo"
    os.mkfifo(fifo_lock)
    results: dict[str, object] = {}

    named_like_a_lock = tmp_path / ".executor-evil.lock"
    os.mkfifo(named_like_a_lock)

    def probe() -> None:
        results["marker"] = read_owner_marker(ws)
        results["alive"] = executor_alive(fifo_lock) and executor_alive(named_like_a_lock)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "reading a FIFO blocked"
    assert results == {"marker": None, "alive": True}
