"""Disk-pressure admission: is there room on the workspace filesystem for another job?

Checked before each dequeue (the worker's `admission` hook, run in a thread): free space and free
inodes of the workspace root against `EXECUTOR_MIN_FREE_DISK` (ours; `5%` of the filesystem by
default, or a size such as `2G`, `0` for no check). Below it the executor stops dequeuing, says
why once, and resumes by itself when space comes back; a full host then leaves its jobs queued
for other executors instead of failing each one within a second.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DiskAdmission"]


class DiskAdmission:
    """Callable: the reason not to take work now, or None."""

    def __init__(self, root: Path, fraction: float, min_bytes: int) -> None:
        self.root = root
        self.fraction = fraction
        self.min_bytes = min_bytes

    def __call__(self) -> str | None:
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


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"
