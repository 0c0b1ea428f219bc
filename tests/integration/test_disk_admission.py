"""Disk-pressure admission on a real small filesystem (a tmpfs the test mounts): the check
refuses work while the filesystem is fuller than `EXECUTOR_MIN_FREE_DISK` allows and admits it
again once space is back."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.workspace.disk import DiskAdmission


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("mounting the test tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,nr_inodes=64", "tmpfs", mnt], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", mnt], check=False)


def test_refuses_below_the_percentage_and_resumes(small_fs: Path) -> None:
    check = DiskAdmission(small_fs, 0.25, 0)
    assert check() is None
    (small_fs / "big").write_bytes(b"x" * (7 << 20))
    reason = check()
    assert reason is not None and "low disk space" in reason and str(small_fs) in reason
    (small_fs / "big").unlink()
    assert check() is None


def test_refuses_below_a_size_and_when_inodes_run_out(small_fs: Path) -> None:
    assert DiskAdmission(small_fs, 0.0, 16 << 20)() is not None  # more than the whole fs
    check = DiskAdmission(small_fs, 0.0, 1 << 20)
    assert check() is None
    for i in range(200):
        try:
            (small_fs / f"f{i}").touch()
        except OSError:
            break
    reason = check()
    assert reason is not None and "inodes" in reason


def test_zero_means_no_check(tmp_path: Path) -> None:
    assert DiskAdmission(tmp_path / "missing", 0.0, 0)() is None
    assert "cannot check" in (DiskAdmission(tmp_path / "missing", 0.05, 0)() or "")
