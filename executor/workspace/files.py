"""Job files and step scripts (`setup.fs.extras`), written only inside the workspace; removal.

Sourcegraph's `worker/files` and `workspace/files.go` (spec §4.3). A job file whose path is
absolute, contains NUL, climbs out through `..`, or would be written through a symlink pointing
outside the workspace (a cloned repository can contain such links) is refused with
`refusing to write outside of working directory: <path>` before anything is created for it.
Also declares the Protocols `workspace` needs of the logger and the files API (the consumer
declares them), and `remove_tree`, the host-side `rm -rf` shared by workspace teardown and
`executor.runtime.rootclean` (which adds the Docker fallback for root-owned files). Knows the
filesystem; knows nothing of git, Docker or HTTP.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from executor.config.goparse import format_go_duration
from executor.errors import WorkspaceError
from executor.wire import ZERO_TIME, Job

__all__ = [
    "FILE_MODE",
    "EntryLogger",
    "FilesClient",
    "TreeRemoval",
    "remove_tree",
    "show_path",
    "within",
    "write_files",
]

# Files and scripts are created with os.ModePerm like Sourcegraph's os.WriteFile(…, 0777):
# the process umask applies, exactly as it does in Go (0755 under the usual umask 022).
FILE_MODE = 0o777
_KEY = "setup.fs.extras"


class _Redacts(Protocol):
    def redact(self, text: str) -> str: ...


class _Entry(Protocol):
    def write(self, stream: str, line: str) -> None: ...
    def write_text(self, text: str) -> None: ...
    def finalize(self, exit_code: int) -> None: ...


class EntryLogger(Protocol):
    """What workspaces need of `logstream.ExecutionLogger` (declared by the consumer)."""

    @property
    def redactor(self) -> _Redacts: ...

    def open(self, key: str, command: list[str] | None) -> _Entry: ...


class FilesClient(Protocol):
    """The files API, for job files given by `bucket` and `key`."""

    async def get_file(self, job: Job, bucket: str, key: str) -> bytes:
        """The content of `bucket/key`."""
        ...


async def write_files(
    job: Job,
    workspace: Path,
    scripts_dir: Path,
    logger: EntryLogger,
    files: FilesClient,
    scripts: Sequence[tuple[str, str]],
) -> None:
    if not job.files and not scripts:
        return
    handle = logger.open(_KEY, None)
    target: Path | None = None
    try:
        # Refuse lexically bad paths before writing (or fetching) anything.
        for rel in job.files:
            _check_relative(rel)
        for name, _ in scripts:
            if not name or "/" in name or "\0" in name or name in (".", ".."):
                raise WorkspaceError(f"invalid script name {show_path(name)}")
        for rel, spec in job.files.items():
            started = time.monotonic()
            content = spec.content
            if spec.bucket and spec.key:
                content = await files.get_file(job, spec.bucket, spec.key)
            target = _confined_target(workspace, rel)
            _write(target, content)
            if spec.modified_at != ZERO_TIME:
                stamp = spec.modified_at.timestamp()
                os.utime(target, (stamp, stamp), follow_symlinks=False)
            took = format_go_duration(time.monotonic() - started)
            handle.write_text(f"Wrote {target} in {took}\n")
        for name, text in scripts:
            started = time.monotonic()
            target = scripts_dir / name
            _write(target, text.encode("utf-8"))
            took = format_go_duration(time.monotonic() - started)
            handle.write_text(f"Wrote {target} in {took}\n")
    except BaseException as err:
        if isinstance(err, WorkspaceError | OSError):
            handle.write_text(f"{err}\n")
        handle.finalize(1)
        if isinstance(err, OSError):
            where = f"writing {target}: " if target is not None and not err.filename else ""
            raise WorkspaceError(f"failed setup.fs.extras: {where}{err}", step_key=_KEY) from err
        raise
    handle.finalize(0)


def show_path(path: str) -> str:
    return path.replace("\0", "\\x00")


def _refuse(rel: str) -> WorkspaceError:
    message = f"refusing to write outside of working directory: {show_path(rel)}"
    return WorkspaceError(message, step_key=_KEY)


def within(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _check_relative(rel: str) -> list[str]:
    """The path's components, or refusal if it is absolute, has NUL or climbs out."""
    if not rel or "\0" in rel or os.path.isabs(rel):
        raise _refuse(rel)
    norm = os.path.normpath(rel)
    if norm in (".", "..") or norm.startswith("../"):
        raise _refuse(rel)
    return norm.split("/")


def _confined_target(workspace: Path, rel: str) -> Path:
    """Create the parents of `rel` inside `workspace`; refuse any symlink that leads out.

    Walks one component at a time so no directory is created through an escaping link. The
    workspace is private to this job (mode 0700) and no step runs yet, so nothing can swap a
    component between the check and the write.
    """
    parts = _check_relative(rel)
    current = workspace
    for part in parts[:-1]:
        candidate = current / part
        if candidate.is_symlink() or candidate.exists():
            real = Path(os.path.realpath(candidate))
            if not within(real, workspace) or not real.is_dir():
                raise _refuse(rel)
            current = real
        else:
            candidate.mkdir(mode=FILE_MODE)
            current = candidate
    target = current / parts[-1]
    if target.is_symlink():
        real = Path(os.path.realpath(target))
        if not within(real, workspace):
            raise _refuse(rel)
        target = real
    return target


def _write(target: Path, content: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(target, flags, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)


_DENIED = {errno.EACCES, errno.EPERM}


@dataclass(frozen=True)
class TreeRemoval:
    """What `remove_tree` could not do: `error` (None when the tree is gone) and whether any
    failure was EACCES/EPERM, i.e. something only a more privileged user can remove."""

    error: str | None = None
    permission_denied: bool = False


def remove_tree(path: Path) -> TreeRemoval:
    """`rm -rf path` as this process's user, making read-only directories writable on the way.

    Never raises for entries that cannot be removed: it removes what it can and reports the
    rest. Entries that vanish meanwhile (a racing janitor) are not errors.
    """
    failed: list[str] = []
    denied = False

    def on_error(func: Callable[..., object], target: str, exc: BaseException) -> None:
        nonlocal denied
        if isinstance(exc, FileNotFoundError):
            return
        try:
            # A read-only directory (a module cache a step made) blocks unlinking its entries:
            # add the owner's write and search bits and retry once. That only works on
            # directories we own; root-owned ones fail here with EPERM.
            for p in (os.path.dirname(target), target):
                mode = os.lstat(p).st_mode
                if stat.S_ISDIR(mode):
                    os.chmod(p, stat.S_IMODE(mode) | stat.S_IRWXU)
            func(target)
        except FileNotFoundError:
            pass
        except OSError as err:
            denied = denied or bool(_DENIED & {err.errno, getattr(exc, "errno", None)})
            # Report the original failure, not the retry's (often a chmod's EPERM).
            first = exc if isinstance(exc, OSError) else err
            failed.append(f"{target}: {first.strerror or first}")

    try:
        os.lstat(path)
    except FileNotFoundError:
        return TreeRemoval()
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=on_error)
    else:

        def onerror(func: Callable[..., object], target: str, info: tuple[Any, ...]) -> None:
            on_error(func, target, info[1])

        shutil.rmtree(path, onerror=onerror)
    if not failed and os.path.lexists(path):
        failed.append(f"{path}: still present (not a directory?)")
    if not failed:
        return TreeRemoval()
    return TreeRemoval(
        f"{len(failed)} paths could not be removed, first {failed[0]}", permission_denied=denied
    )
