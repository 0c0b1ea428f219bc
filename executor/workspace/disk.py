"""Disk-pressure admission: is there room on the workspace filesystem for another job?

Checked before a dequeue (the worker's `admission` hook, run in a thread; at most every 5 s while
no job starts, and again before the dequeue after one): free space and free inodes of the
workspace root against `EXECUTOR_MIN_FREE_DISK` (ours; `5%` of the filesystem by default, or a
size such as `2G`, `0` for no check). Below it the executor stops dequeuing, says
why once, and resumes by itself when space comes back; a full host then leaves its jobs queued
for other executors instead of failing each one within a second.

While it refuses, the `executor_disk_pressure` gauge is 1 (`on_pressure`; the heartbeat's
`prometheusMetrics` carries it to the frontend) and the worker logs the reason once.

`filesystem_full` is the after-the-fact check: a job that failed while the workspace filesystem
has (almost) no space or inodes left is reported as a disk-full error naming its phase and path
(`executor.worker.handler`), rather than as a bare `[Errno 28]` or a step's exit code.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["FULL_SLACK", "DiskAdmission", "filesystem_full", "is_enospc"]

#: Free bytes under which a filesystem counts as full after a failed write: a writer using
#: 1 MiB buffers (dd bs=1M, git's pack writes) fails with up to that much still free.
FULL_SLACK = 4 << 20


class DiskAdmission:
    """Callable: the reason not to take work now, or None."""

    def __init__(
        self,
        root: Path,
        fraction: float,
        min_bytes: int,
        on_pressure: Callable[[bool], None] | None = None,
    ) -> None:
        """`on_pressure(refusing)` is called with every verdict (a gauge's setter)."""
        self.root = root
        self.fraction = fraction
        self.min_bytes = min_bytes
        self.on_pressure = on_pressure

    def __call__(self) -> str | None:
        reason = self._check()
        if self.on_pressure is not None:
            self.on_pressure(reason is not None)
        return reason

    def _check(self) -> str | None:
        if self.fraction <= 0 and self.min_bytes <= 0:
            return None
        try:
            st = os.statvfs(self.root)
        except OSError as err:
            return f"cannot check free space of {self.root}: {err.strerror or err}"
        free = st.f_bavail * st.f_frsize
        total = st.f_blocks * st.f_frsize
        need = self.min_bytes or int(total * self.fraction)
        if free < need:
            return (
                f"low disk space on {self.root}: {_mib(free)} free, "
                f"EXECUTOR_MIN_FREE_DISK wants {_mib(need)}"
            )
        # Inodes: a percentage applies to them too; a byte size has no inode meaning, so then
        # only an exhausted inode table refuses (f_files is 0 on filesystems without a table).
        if st.f_files:
            need_inodes = int(st.f_files * self.fraction) if self.fraction else 1
            if st.f_favail < max(need_inodes, 1):
                return (
                    f"low free inodes on {self.root}: {st.f_favail} of {st.f_files} free "
                    f"(EXECUTOR_MIN_FREE_DISK)"
                )
        return None


def filesystem_full(path: Path, slack: int = FULL_SLACK) -> str | None:
    """How the filesystem holding `path` (or its nearest existing parent) is full, or None."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
    except OSError:
        return None
    free = st.f_bavail * st.f_frsize
    if free < slack:
        return f"{_mib(free)} free of {_mib(st.f_blocks * st.f_frsize)}"
    if st.f_files and st.f_favail == 0:
        return f"no free inodes (of {st.f_files})"
    return None


def is_enospc(err: BaseException | None) -> OSError | None:
    """The ENOSPC/EDQUOT `OSError` in `err`'s cause chain, if there is one."""
    seen = 0
    while err is not None and seen < 16:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return err
        err = err.__cause__ or err.__context__
        seen += 1
    return None


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"
