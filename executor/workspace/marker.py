"""The owner marker: which daemon and job a workspace (or a docker config dir) belongs to.

Written right after the directory is created (`write_owner_marker`), read by the janitor
(`executor.runtime.janitor`) to tell an orphan from a live job's directory: JSON with the
executor name, the job's record UID and that executor's liveness lock path (empty: the default
lock under the workspace root). The one writer, reader and remover of the format.

SECURITY: the marker lives *beside* the directory it marks, `<root>/.<dir name>.owner`, not in
it: a workspace is mounted into step containers, the workspace root never is, so no step can
rewrite a marker (or the lock path it names). It is still read as a regular file only (no link
followed, a FIFO never blocks: O_NONBLOCK), at most 64 KiB, and a marker that does not parse is
no marker.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MARKER_SUFFIX",
    "OwnerMarker",
    "marked_directory",
    "marker_path",
    "read_owner_marker",
    "remove_owner_marker",
    "write_owner_marker",
]

#: `<root>/.<name>` + this suffix marks `<root>/<name>`.
MARKER_SUFFIX = ".owner"
_OPEN_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW
_OPEN_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW


@dataclass(frozen=True)
class OwnerMarker:
    """Who created a workspace: executor name, job ID, and that executor's lock file."""

    executor: str
    job: str
    lock: str = ""


def marker_path(directory: str | os.PathLike[str]) -> Path:
    """Where the marker of `directory` lives: `<parent>/.<name>.owner`."""
    path = Path(directory)
    return path.parent / f".{path.name}{MARKER_SUFFIX}"


def marked_directory(marker: str | os.PathLike[str]) -> Path | None:
    """The directory a marker file marks (the inverse of `marker_path`), or None."""
    path = Path(marker)
    name = path.name
    if not (name.startswith(".") and name.endswith(MARKER_SUFFIX)) or len(name) <= 7:
        return None
    return path.parent / name[1 : -len(MARKER_SUFFIX)]


def write_owner_marker(
    directory: str | os.PathLike[str],
    *,
    executor_name: str,
    job_id: int | str,
    lock_path: str | os.PathLike[str] = "",
) -> None:
    """Write the marker of a new `directory` (do it right after creating the directory)."""
    data = {"executor": executor_name, "job": str(job_id), "lock": str(lock_path)}
    # Readable by sibling daemons (their janitors judge ours), like the liveness lock.
    fd = os.open(marker_path(directory), _OPEN_WRITE, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data))


def remove_owner_marker(directory: str | os.PathLike[str]) -> None:
    """Remove the marker of `directory` (after the directory itself is gone); never raises."""
    with contextlib.suppress(OSError):
        marker_path(directory).unlink()


def read_owner_marker(directory: str | os.PathLike[str]) -> OwnerMarker | None:
    """The directory's owner, or None when the marker is missing, unreadable or not ours."""
    try:
        fd = os.open(marker_path(directory), _OPEN_READ)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            raw = os.read(fd, _MAX_MARKER)
        finally:
            os.close(fd)
        data = json.loads(raw.decode("utf-8"))
        return OwnerMarker(str(data["executor"]), str(data["job"]), str(data.get("lock") or ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


#: A marker is a few hundred bytes; anything longer is not ours.
_MAX_MARKER = 64 * 1024
