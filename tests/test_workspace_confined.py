"""`executor.workspace.confined`: what a step can make of a file the host reads afterwards.

Real files, links and FIFOs in a tmp dir; a canary outside the "workspace" must never be read,
changed or removed, and no call may block.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from executor.workspace.confined import UnsafePath, check_relative, read_confined, take_confined

CAP = 64 * 1024


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "sub").mkdir(parents=True)
    return root


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "skip.json"
    path.write_text('{"nextStep":"secret-from-outside"}')
    return path


def test_reads_and_takes_a_regular_file(ws: Path) -> None:
    (ws / "sub" / "skip.json").write_text('{"nextStep":"x"}')
    assert read_confined(ws, "sub/skip.json", max_bytes=CAP) == b'{"nextStep":"x"}'
    assert take_confined(ws, "./sub/../sub/skip.json", max_bytes=CAP) == b'{"nextStep":"x"}'
    assert not (ws / "sub" / "skip.json").exists()
    assert take_confined(ws, "sub/skip.json", max_bytes=CAP) is None
    assert read_confined(ws, "missing/dir/skip.json", max_bytes=CAP) is None


def test_a_symlinked_file_is_refused_and_only_the_link_removed(ws: Path, canary: Path) -> None:
    (ws / "skip.json").symlink_to(canary)
    with pytest.raises(UnsafePath, match="symbolic link"):
        read_confined(ws, "skip.json", max_bytes=CAP)
    with pytest.raises(UnsafePath, match="symbolic link"):
        take_confined(ws, "skip.json", max_bytes=CAP)
    assert not os.path.lexists(ws / "skip.json")
    assert canary.read_text() == '{"nextStep":"secret-from-outside"}'


def test_a_link_inside_the_workspace_is_refused_too(ws: Path) -> None:
    (ws / "real.json").write_text("{}")
    (ws / "skip.json").symlink_to("real.json")
    with pytest.raises(UnsafePath):
        read_confined(ws, "skip.json", max_bytes=CAP)


def test_a_directory_swapped_for_a_link_out_is_refused_and_nothing_removed(
    ws: Path, canary: Path
) -> None:
    (ws / "sub").rmdir()
    (ws / "sub").symlink_to(canary.parent)
    with pytest.raises(UnsafePath, match="not a directory"):
        take_confined(ws, "sub/skip.json", max_bytes=CAP)
    assert canary.exists()
    # Deeper too: a link anywhere on the way.
    (ws / "a").mkdir()
    (ws / "a" / "b").symlink_to(canary.parent)
    with pytest.raises(UnsafePath):
        read_confined(ws, "a/b/skip.json", max_bytes=CAP)


def test_a_fifo_never_blocks_and_is_removed(ws: Path) -> None:
    os.mkfifo(ws / "skip.json")
    with pytest.raises(UnsafePath, match="not a regular file"):
        take_confined(ws, "skip.json", max_bytes=CAP)
    assert not os.path.lexists(ws / "skip.json")


def test_a_fifo_as_a_directory_component_never_blocks(ws: Path) -> None:
    os.mkfifo(ws / "pipe")
    with pytest.raises(UnsafePath):
        read_confined(ws, "pipe/skip.json", max_bytes=CAP)


def test_a_huge_file_is_refused_without_reading_it(ws: Path) -> None:
    with open(ws / "skip.json", "wb") as fh:
        fh.truncate(8 << 30)  # sparse: 8 GiB that nobody may read into memory
    with pytest.raises(UnsafePath, match="larger than 65536 bytes"):
        take_confined(ws, "skip.json", max_bytes=CAP)
    assert not (ws / "skip.json").exists()


def test_a_directory_named_like_the_file_is_refused_and_kept(ws: Path) -> None:
    (ws / "skip.json").mkdir()
    with pytest.raises(UnsafePath, match="not a regular file"):
        take_confined(ws, "skip.json", max_bytes=CAP)
    assert (ws / "skip.json").is_dir()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc/hostname", "absolute"),
        ("../outside/skip.json", "climbs out"),
        ("sub/../../outside/skip.json", "climbs out"),
        ("a\0b", "NUL"),
    ],
)
def test_paths_that_leave_the_workspace_are_refused(
    ws: Path, canary: Path, path: str, reason: str
) -> None:
    with pytest.raises(UnsafePath, match=reason):
        take_confined(ws, path, max_bytes=CAP)
    assert canary.exists()


def test_check_relative() -> None:
    assert check_relative("") == []
    assert check_relative(".") == []
    assert check_relative("a/./b/../c/") == ["a", "c"]
    with pytest.raises(UnsafePath, match="step dir '/abs' is absolute"):
        check_relative("/abs", what="step dir")
    with pytest.raises(UnsafePath, match="climbs out"):
        check_relative("a/../..")
