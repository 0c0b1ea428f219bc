"""The owner marker: which daemon and job a workspace (or a docker config dir) belongs to.

Written right after the directory is created (`write_owner_marker`), read by the janitor
(`executor.runtime.janitor`) to tell an orphan from a live job's directory: JSON with the
executor name, the job's record UID and that executor's liveness lock path (empty: the default
lock under the workspace root). The one writer and the one reader of the format.

SECURITY: a workspace is mounted into step containers, so a step can rewrite its marker. It is
read as a regular file only (no link followed, a FIFO never blocks: O_NONBLOCK), at most 64 KiB,
and a marker that does not parse is no marker.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OWNER_MARKER", "OwnerMarker", "read_owner_marker", "write_owner_marker"]

#: The marker's file name inside the directory it marks.
OWNER_MARKER = ".executor-owner"


@dataclass(frozen=True)
class OwnerMarker:
    """Who created a workspace: executor name, job ID, and that executor's lock file."""

    executor: str
    job: str
    lock: str = ""


def write_owner_marker(
    workspace: str | os.PathLike[str],
    *,
    executor_name: str,
    job_id: int | str,
    lock_path: str | os.PathLike[str] = "",
) -> None:
    """Write `OWNER_MARKER` into a new workspace (do it right after creating the directory)."""
    data = {"executor": executor_name, "job": str(job_id), "lock": str(lock_path)}
    (Path(workspace) / OWNER_MARKER).write_text(json.dumps(data), encoding="utf-8")


def read_owner_marker(workspace: str | os.PathLike[str]) -> OwnerMarker | None:
    """The workspace's owner, or None when the marker is missing, unreadable or not ours."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(Path(workspace) / OWNER_MARKER, flags)
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
