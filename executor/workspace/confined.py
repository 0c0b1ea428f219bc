"""Files the host reads or deletes inside a workspace, confined to it by construction.

A workspace is mounted read-write into every step container, so after the first step anything
in it may be hostile: a file may be a symlink to `/etc/hostname`, a directory may have been
swapped for a link out of the workspace, a FIFO blocks a plain `open` forever, a "small" JSON
file may be gigabytes. Every host-side read or removal of a step-writable path goes through
this module (the `.pre` steps' `skip.json`, `batch exec`'s input file):

* the path is relative, without `..` climbing out, NUL or an empty name (`check_relative`;
  refused with `UnsafePath`, whose message is fit for the job's error);
* it is walked one component at a time from a descriptor of the workspace's real path, each
  component opened with `O_NOFOLLOW` relative to its parent (`openat`): no symlink is followed,
  wherever it points, and a directory swapped for a link fails the walk instead of leading out;
* the file itself is opened `O_NOFOLLOW | O_NONBLOCK` (a FIFO's open returns at once) and used
  only when `fstat` says it is a regular file, and only up to a size cap;
* removal unlinks the name in the directory found by the same walk (a link is removed as a
  link, never its target).

Sourcegraph reads `<workingDir>/skip.json` with `os.ReadFile` and removes it with `os.Remove`
(`cmd/executor/internal/worker/runner/skip.go`), following links; this is stricter on purpose.
Knows the filesystem only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = ["UnsafePath", "check_relative", "read_confined", "take_confined"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UnsafePath(ValueError):
    """A workspace path the host will not follow: absolute, climbing out, a link, not a file."""


def check_relative(path: str, *, what: str = "path") -> list[str]:
    """The components of `path` (relative to the workspace), or `UnsafePath`.

    `""` and `"."` are the workspace itself (no components). Absolute paths, NUL, and any `..`
    that climbs above the workspace are refused; `a/../b` is `b`.
    """
    shown = path.replace("\0", "\\x00")
    if "\0" in path:
        raise UnsafePath(f"{what} {shown!r} contains a NUL byte")
    if path.startswith("/"):
        raise UnsafePath(f"{what} {shown!r} is absolute; it must be relative to the workspace")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafePath(f"{what} {shown!r} climbs out of the workspace")
            parts.pop()
            continue
        parts.append(part)
    return parts


@contextlib.contextmanager
def _parent_fd(root: Path, parts: list[str], shown: str) -> Iterator[int]:
    """A descriptor of the directory holding `parts[-1]`, walked without following links."""
    fd = os.open(os.path.realpath(root), _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as err:
                if err.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath(f"{shown}: {part!r} is not a directory (a link?)") from None
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _read_at(fd: int, name: str, shown: str, max_bytes: int) -> bytes | None:
    try:
        file_fd = os.open(name, _FILE_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UnsafePath(f"{shown} is a symbolic link; not followed") from None
        raise
    try:
        info = os.fstat(file_fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePath(f"{shown} is not a regular file")
        if info.st_size > max_bytes:
            raise UnsafePath(f"{shown} is larger than {max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(file_fd, min(65536, max_bytes + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:  # grew after the fstat
                raise UnsafePath(f"{shown} is larger than {max_bytes} bytes")
        return b"".join(chunks)
    finally:
        os.close(file_fd)


def read_confined(root: Path, path: str, *, max_bytes: int) -> bytes | None:
    """The content of `root/path` (None when it does not exist), confined to `root`.

    Raises `UnsafePath` for a refused path, a link on the way or at the end, a file that is not
    regular or is larger than `max_bytes`; `OSError` for other failures.
    """
    parts = check_relative(path)
    if not parts:
        raise UnsafePath(f"{path!r} names the workspace itself, not a file")
    try:
        with _parent_fd(root, parts, path) as fd:
            return _read_at(fd, parts[-1], path, max_bytes)
    except FileNotFoundError:
        return None  # a directory on the way is missing


def take_confined(root: Path, path: str, *, max_bytes: int) -> bytes | None:
    """Like `read_confined`, and remove the name afterwards (also when it was refused).

    Whatever stood at `root/path` (a file, a link, a FIFO) is unlinked from the directory the
    walk reached, so a refused `skip.json` cannot be met again; a directory there is left alone.
    Nothing is removed when the walk itself was refused.
    """
    parts = check_relative(path)
    if not parts:
        raise UnsafePath(f"{path!r} names the workspace itself, not a file")
    try:
        with _parent_fd(root, parts, path) as fd:
            try:
                return _read_at(fd, parts[-1], path, max_bytes)
            finally:
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    os.unlink(parts[-1], dir_fd=fd)
    except FileNotFoundError:
        return None
