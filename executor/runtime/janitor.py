"""The janitor: remove step containers and workspaces that no live job owns.

Sourcegraph's Docker runtime has no janitor; it relies on `docker run --rm`, which leaves a running
container behind when the executor dies (kill -9, OOM, host reboot mid-job). This one runs at
start-up and every `EXECUTOR_CLEANUP_TASK_INTERVAL`, and it must never touch a live job, also
when several daemons share one host (each with its own executor name).

Ownership and liveness, the scheme every daemon follows:

* **Liveness lock.** For its whole life a daemon holds an exclusive `fcntl.flock` on
  `<workspace root>/.executor-<name>.lock` (`hold_liveness_lock`). The kernel drops the lock when
  the process dies, however it dies, so "can I lock it?" answers "is that daemon dead?" without
  PIDs, heartbeats or clocks. The descriptor is close-on-exec, so a surviving `docker` CLI child
  cannot keep a dead daemon looking alive.
* **Containers** carry labels (`executor.runtime.argv.container_labels`): executor name, job ID,
  this host's label and the absolute path of the owner's lock file (so daemons with different
  workspace roots can still judge each other).
* **Workspaces** (`workspace-*` directories under the root) have an owner marker written right
  after creation (`write_owner_marker`): JSON with executor name, job ID, lock path, in
  `<root>/.<workspace name>.owner` *beside* the workspace, where no step mount reaches.
  So do a job's **docker config directories** (`executor-docker-config-*`, the registry
  credentials handed to `docker --config`), which a killed daemon would otherwise leave behind
  with the secrets in them; the janitor treats them exactly like workspaces.

A container or workspace is an orphan when

* it belongs to this executor and its job is not live (`live_jobs()`), or
* it belongs to another executor whose lock file can be locked (dead) or does not exist, or
* (workspaces only) it has no marker and is older than `unowned_grace` (a crash before the marker
  was written, or a daemon that predates markers).

Containers labelled for another host are never considered. Races with jobs that start during a
sweep are avoided by listing first and reading `live_jobs()` afterwards: a job that is live when
its resources were listed is still in the set. `live_jobs()` must therefore hold a job from before
its workspace is created until after its teardown has finished. It may return record UIDs
(`42-batches`) or job IDs; a marker or label holding either form of a live job counts as live.

SECURITY: every file the janitor opens (markers, lock files) is opened `O_NOFOLLOW | O_NONBLOCK`
and used only when it is a regular file; a lock path is probed only when its name is a liveness
lock's (`.executor-<name>.lock`). All of it (listing, marker reads, lock probes, unlinks) runs in
a worker thread, never on the event loop: nothing found on disk can make a heartbeat late.

This module talks to Docker only through the `Runtime` Protocol and does not know jobs' meaning.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import stat
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import structlog

from executor.runtime import ContainerInfo, Runtime
from executor.runtime.argv import LABEL_EXECUTOR, LABEL_HOST, LABEL_JOB, LABEL_LOCK
from executor.runtime.auth import DOCKER_CONFIG_PREFIX
from executor.workspace.files import remove_tree
from executor.workspace.marker import (
    MARKER_SUFFIX,
    OwnerMarker,
    marked_directory,
    read_owner_marker,
    remove_owner_marker,
)

__all__ = [
    "WORKSPACE_PREFIX",
    "Janitor",
    "JanitorCounters",
    "LivenessLock",
    "SweepResult",
    "executor_alive",
    "hold_liveness_lock",
    "liveness_lock_path",
]

#: Directories under the workspace root the janitor may consider (Sourcegraph's naming).
WORKSPACE_PREFIX = "workspace-"
_JOB_DIR_PREFIXES = (WORKSPACE_PREFIX, DOCKER_CONFIG_PREFIX)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_LOCK_NAME = re.compile(r"\.executor-[A-Za-z0-9_.-]+\.lock")
#: Every open of a file the janitor did not just create.
_PROBE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW
_log = structlog.get_logger(__name__)


def liveness_lock_path(root: str | os.PathLike[str], executor_name: str) -> Path:
    """`<root>/.executor-<name>.lock`, with characters unsafe in a file name replaced."""
    return Path(root) / f".executor-{_UNSAFE.sub('_', executor_name)}.lock"


class LivenessLock:
    """An exclusive flock held for the life of a daemon; release (or exit) to give it up."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Remove the lock file (if it is still ours) and drop the lock."""
        if self._fd is None:
            return
        try:
            if _same_file(self.path, self._fd):
                self.path.unlink()
        except OSError:
            pass  # a janitor may already have removed it; the lock is what matters
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> LivenessLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def hold_liveness_lock(root: str | os.PathLike[str], executor_name: str) -> LivenessLock:
    """Take this daemon's liveness lock; raises RuntimeError if another process holds it."""
    path = liveness_lock_path(root, executor_name)
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    while True:
        fd = os.open(path, flags, 0o644)  # readable by siblings so they can probe it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(f"executor {executor_name!r} is already running ({path})") from None
        # A janitor may have unlinked a stale file between our open and flock: then we would
        # hold a lock nobody can see. Only a lock on the file at `path` counts.
        if _same_file(path, fd):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return LivenessLock(path, fd)
        os.close(fd)


def executor_alive(lock_path: str | os.PathLike[str]) -> bool:
    """Whether the daemon owning `lock_path` still holds it (a missing file means dead).

    When the file cannot be opened for another reason (permissions), the owner counts as alive:
    leaving an orphan for a later sweep is better than removing a live job. So does an owner
    whose lock *directory* is missing here: it runs in another mount namespace (a container on
    the same engine and hostname, e.g. the image with `--network host`), where we cannot see
    its lock, so we cannot tell that it died.
    """
    # Defence in depth (markers and labels are out of a step's reach): never follow a link,
    # never block on a FIFO or device (O_NONBLOCK makes their open return at once), only lock a
    # regular file, and only one named like a liveness lock.
    if not _LOCK_NAME.fullmatch(os.path.basename(os.fspath(lock_path))):
        return True
    try:
        fd = os.open(lock_path, _PROBE_FLAGS)
    except FileNotFoundError:
        return not os.path.isdir(os.path.dirname(os.fspath(lock_path)) or ".")
    except OSError:
        return True
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return True  # not a lock we made: cannot tell, so spare it
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe lock if we got it
    return False


@dataclass
class JanitorCounters:
    """Running totals, for metrics and the shutdown log line."""

    containers_removed: int = 0
    workspaces_removed: int = 0
    errors: int = 0


@dataclass
class SweepResult:
    """What one `run_once` removed (names and paths) and how many removals failed."""

    containers: list[str] = field(default_factory=list)
    workspaces: list[Path] = field(default_factory=list)
    errors: int = 0


class Janitor:
    """Removes orphaned step containers and workspaces; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        executor_name: str,
        host: str,
        workspace_root: str | os.PathLike[str],
        live_jobs: Callable[[], Iterable[int | str]],
        interval: float = 60.0,
        counters: JanitorCounters | None = None,
        lock_path: str | os.PathLike[str] | None = None,
        clean_workspaces: bool = True,
        unowned_grace: float = 3600.0,
        remove_workspace: Callable[[Path, str], Awaitable[str | None]] | None = None,
    ) -> None:
        """`host` is this host's `executor.host` label value; `live_jobs` returns this
        executor's live job IDs. Set `clean_workspaces=False` when workspaces are kept on
        purpose (EXECUTOR_KEEP_WORKSPACES). `remove_workspace(path, job)` removes a workspace and
        returns the error text or None (`rootclean.RootCleaner.remove_workspace`: root-owned files
        go through a cleanup container); without it, `workspace.files.remove_tree` as this user."""
        self.runtime = runtime
        self.executor_name = executor_name
        self.host = host
        self.root = Path(workspace_root)
        self.live_jobs = live_jobs
        self.interval = interval
        self.counters = counters if counters is not None else JanitorCounters()
        self.lock_path = Path(lock_path or liveness_lock_path(self.root, executor_name))
        self.clean_workspaces = clean_workspaces
        self.unowned_grace = unowned_grace
        self.remove_workspace = remove_workspace or _remove_as_user

    async def run_forever(self) -> None:
        """Sweep now and then every `interval` seconds until cancelled; errors never stop it."""
        while True:
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - counted and logged; the next sweep retries
                self.counters.errors += 1
                _log.exception("janitor sweep failed")
            await asyncio.sleep(self.interval)

    async def run_once(self) -> SweepResult:
        """One sweep: orphaned containers, then orphaned workspaces, then dead lock files."""
        result = SweepResult()
        # List before reading live_jobs(): anything listed whose job is live is in the set.
        containers = await self.runtime.list_containers({LABEL_HOST: self.host})
        workspaces = await asyncio.to_thread(self._list_workspaces)
        live = {str(job) for job in self.live_jobs()}
        # Owners may record a record UID ("42-batches") or the bare job ID ("42"); accept both.
        # This can only spare more, never remove more.
        live |= {job.partition("-")[0] for job in live}
        # Lock probes open files: in a thread, like every other file access of the sweep.
        doomed, orphans = await asyncio.to_thread(self._judge, containers, workspaces, live)

        for info in doomed:
            try:
                await self.runtime.remove_container(info.id or info.name)
            except Exception as err:  # noqa: BLE001 - counted and logged; retried next sweep
                result.errors += 1
                _log.warning("could not remove orphaned container", container=info.name, err=err)
                continue
            result.containers.append(info.name)
            _log.info("removed orphaned container", container=info.name, executor=info.owner)

        for path, job in orphans:
            try:
                if error := await self.remove_workspace(path, job):
                    raise OSError(error)
            except OSError as err:
                result.errors += 1
                _log.warning("could not remove orphaned workspace", path=str(path), err=err)
                continue
            remove_owner_marker(path)
            result.workspaces.append(path)
            _log.info("removed orphaned workspace", path=str(path))

        await asyncio.to_thread(self._remove_dead_files)
        self.counters.containers_removed += len(result.containers)
        self.counters.workspaces_removed += len(result.workspaces)
        self.counters.errors += result.errors
        return result

    def _judge(
        self,
        containers: Iterable[ContainerInfo],
        workspaces: list[tuple[Path, OwnerMarker | None]],
        live: set[str],
    ) -> tuple[list[_Doomed], list[tuple[Path, str]]]:
        """Which containers and directories are orphans (blocking: run it in a thread)."""
        alive: dict[str, bool] = {}

        def owner_alive(name: str, lock: str) -> bool:
            path = lock or str(liveness_lock_path(self.root, name))
            if path not in alive:
                alive[path] = executor_alive(path)
            return alive[path]

        doomed: list[_Doomed] = []
        for info in containers:
            owner = info.labels.get(LABEL_EXECUTOR)
            if not owner or not self._orphan(owner, info.labels.get(LABEL_JOB, ""), live):
                continue
            if owner != self.executor_name and owner_alive(owner, info.labels.get(LABEL_LOCK, "")):
                continue
            doomed.append(_Doomed(info.id, info.name, owner))
        orphans: list[tuple[Path, str]] = []
        for path, marker in workspaces:
            if marker is None:
                if not self._older_than_grace(path):
                    continue
            elif not self._orphan(marker.executor, marker.job, live) or (
                marker.executor != self.executor_name and owner_alive(marker.executor, marker.lock)
            ):
                continue
            orphans.append((path, marker.job if marker else ""))
        return doomed, orphans

    def _orphan(self, owner: str, job: str, live: set[str]) -> bool:
        """Orphan unless it is our live job; other owners are then judged by their lock."""
        return owner != self.executor_name or job not in live

    def _list_workspaces(self) -> list[tuple[Path, OwnerMarker | None]]:
        # Docker config directories hold registry secrets: removed even when workspaces are
        # kept on purpose (the handler removes them at teardown in that case, too).
        prefixes = _JOB_DIR_PREFIXES if self.clean_workspaces else (DOCKER_CONFIG_PREFIX,)
        try:
            with os.scandir(self.root) as scan:
                entries = list(scan)
        except FileNotFoundError:
            return []
        return [
            (Path(e.path), read_owner_marker(e.path))
            for e in entries
            if e.name.startswith(prefixes) and e.is_dir(follow_symlinks=False)
        ]

    def _older_than_grace(self, path: Path) -> bool:
        try:
            return time.time() - path.lstat().st_mtime > self.unowned_grace
        except FileNotFoundError:
            return False

    def _remove_dead_files(self) -> None:
        """Unlink lock files of dead executors (never our own), locking each while doing so,
        and owner markers whose directory is gone (a teardown interrupted between the two)."""
        for path in self.root.glob(".executor-*.lock"):
            if path == self.lock_path:
                continue
            try:
                fd = os.open(path, _PROBE_FLAGS)
            except OSError:
                continue
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _same_file(path, fd):
                    path.unlink()
            except OSError:
                pass  # alive (lock held), already gone, or not ours to remove
            finally:
                os.close(fd)
        for prefix in _JOB_DIR_PREFIXES:
            for marker in self.root.glob(f".{prefix}*{MARKER_SUFFIX}"):
                directory = marked_directory(marker)
                if directory is not None and not os.path.lexists(directory):
                    with contextlib.suppress(OSError):
                        marker.unlink()


@dataclass(frozen=True)
class _Doomed:
    id: str
    name: str
    owner: str


def _same_file(path: Path, fd: int) -> bool:
    try:
        on_disk = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


async def _remove_as_user(path: Path, job: str) -> str | None:
    """The default `remove_workspace`: the host-side `rm -rf` workspace teardown uses too."""
    return (await asyncio.to_thread(remove_tree, path)).error
