"""The batch git workflow against real git in temporary directories."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from executor.batch.diff import (
    GitError,
    apply_diff,
    changes_in_diff,
    commit_baseline,
    git_env,
    run_git,
    staged_diff,
)

BASE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def _workspace(tmp_path: Path, files: dict[str, bytes]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir(parents=True)
    for name, content in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    _run(commit_baseline(repo, env=BASE_ENV))
    return repo


def _diff(repo: Path) -> bytes:
    result = _run(staged_diff(repo, env=BASE_ENV))
    assert isinstance(result, bytes)
    return result


def _name_status(repo: Path) -> dict[str, list[str]]:
    """Cross-check with git itself (NUL-separated, so any file name is safe)."""
    out = subprocess.run(
        ["git", "diff", "--cached", "--name-status", "-z"],
        cwd=repo,
        env=git_env(BASE_ENV),
        capture_output=True,
        check=True,
    ).stdout
    parts = out.split(b"\0")
    result: dict[str, list[str]] = {"M": [], "A": [], "D": [], "R": []}
    i = 0
    while i < len(parts) - 1:
        status = parts[i].decode()[0]
        if status == "R":
            result["R"].append(parts[i + 2].decode())
            i += 3
        else:
            result[status].append(parts[i + 1].decode())
            i += 2
    return result


def test_baseline_is_isolated_and_includes_ignored_files(tmp_path: Path) -> None:
    repo = _workspace(tmp_path, {".gitignore": b"ignored.txt\n", "ignored.txt": b"x\n"})
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=repo, env=git_env(BASE_ENV), capture_output=True, check=True
    ).stdout.split()
    assert b"ignored.txt" in tracked  # --force in the baseline
    log = subprocess.run(
        ["git", "log", "--format=%an <%ae>|%cn|%s"],
        cwd=repo,
        env=git_env(BASE_ENV),
        capture_output=True,
        check=True,
    ).stdout
    assert log == b"Sourcegraph <batch-changes@sourcegraph.com>|Sourcegraph|src-action-exec\n"
    # A new ignored file created by a step is not part of the diff (git add --all).
    (repo / "ignored.txt").write_bytes(b"changed\n")
    (repo / "sub").mkdir()
    (repo / ".gitignore").write_bytes(b"ignored.txt\nnew-ignored\n")
    (repo / "new-ignored").write_bytes(b"n\n")
    diff = _diff(repo)
    assert b"new-ignored\n+" not in diff and b"+++ new-ignored" not in diff
    assert b"+++ ignored.txt" in diff  # already tracked files still show up


def test_env_has_no_inherited_variables() -> None:
    env = git_env({"PATH": "/bin", "HOME": "/h", "SECRET_TOKEN": "x"})
    assert "SECRET_TOKEN" not in env
    assert env["PATH"] == "/bin" and env["HOME"] == "/h"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_AUTHOR_EMAIL"] == "batch-changes@sourcegraph.com"


def test_add_modify_delete_rename_binary_and_odd_names(tmp_path: Path) -> None:
    rename_body = b"".join(b"line %d\n" % i for i in range(50))
    repo = _workspace(
        tmp_path,
        {
            "README.md": b"hello\n",
            "gone.txt": b"bye\n",
            "old name.txt": rename_body,
            "dir/keep.go": b"package main\n",
            "empty-gone": b"",
            "keep-empty": b"",
        },
    )
    (repo / "README.md").write_bytes(b"hello\nworld\n")
    (repo / "gone.txt").unlink()
    (repo / "empty-gone").unlink()
    (repo / "old name.txt").rename(repo / "new name.txt")
    (repo / "with space.txt").write_bytes(b"s\n")
    (repo / 'quote"d.txt').write_bytes(b"q\n")
    (repo / "ünïcödé.txt").write_bytes(b"u\n")
    (repo / "empty-new").write_bytes(b"")  # git pairs it with empty-gone as a rename
    (repo / "blob.bin").write_bytes(bytes(range(256)) * 4)
    os.chmod(repo / "dir/keep.go", 0o755)
    diff = _diff(repo)
    assert b"GIT binary patch" in diff
    assert b"--- README.md\n+++ README.md\n" in diff  # --no-prefix
    changes = changes_in_diff(diff)
    expected = _name_status(repo)
    assert sorted(changes.modified or []) == sorted(expected["M"]) == ["README.md", "dir/keep.go"]
    assert sorted(changes.deleted or []) == sorted(expected["D"]) == ["gone.txt"]
    assert sorted(changes.renamed or []) == sorted(expected["R"]) == ["empty-new", "new name.txt"]
    assert sorted(changes.added or []) == sorted(expected["A"])
    assert set(changes.added or []) == {
        "blob.bin",
        'quote"d.txt',
        "with space.txt",
        "ünïcödé.txt",
    }


def test_apply_cached_diff_then_continue(tmp_path: Path) -> None:
    files = {"a.txt": b"one\n", "bin.dat": b"\x00\x01\x02" * 100, "x y.txt": b"z\n"}
    first = _workspace(tmp_path / "first", files)
    (first / "a.txt").write_bytes(b"one\ntwo\n")
    (first / "bin.dat").write_bytes(b"\xff\xfe" * 300)
    (first / "x y.txt").unlink()
    (first / "é new.txt").write_bytes(b"new\n")
    cached = _diff(first)

    second = _workspace(tmp_path / "second", files)
    _run(apply_diff(second, cached, env=BASE_ENV))
    assert (second / "bin.dat").read_bytes() == b"\xff\xfe" * 300
    assert not (second / "x y.txt").exists()
    assert _diff(second) == cached  # replay reproduces the cumulative diff byte for byte
    # A next step builds on top: the diff stays cumulative against the baseline.
    (second / "a.txt").write_bytes(b"one\ntwo\nthree\n")
    later = changes_in_diff(_diff(second))
    assert later.modified == ["a.txt", "bin.dat"]
    assert later.added == ["é new.txt"]
    assert later.deleted == ["x y.txt"]


def test_apply_failure_raises_git_error(tmp_path: Path) -> None:
    repo = _workspace(tmp_path, {"a.txt": b"one\n"})
    bad = b"--- a.txt\n+++ a.txt\n@@ -1 +1 @@\n-not there\n+x\n"
    with pytest.raises(GitError) as info:
        _run(apply_diff(repo, bad, env=BASE_ENV))
    assert info.value.argv[:2] == ["apply", "-p0"]
    assert info.value.returncode != 0


def test_empty_diff_and_empty_apply(tmp_path: Path) -> None:
    repo = _workspace(tmp_path, {"a.txt": b"one\n"})
    _run(apply_diff(repo, b"", env=BASE_ENV))
    assert _diff(repo) == b""
    assert changes_in_diff(b"").model_dump() == {
        "modified": None,
        "added": None,
        "deleted": None,
        "renamed": None,
    }


def test_empty_files_without_hunks(tmp_path: Path) -> None:
    repo = _workspace(tmp_path, {"empty-gone": b"", "a.txt": b"a\n"})
    (repo / "empty-gone").unlink()
    diff = _diff(repo)
    assert b"---" not in diff  # no ---/+++ lines: names come from the extended headers
    assert changes_in_diff(diff).deleted == ["empty-gone"]
    subprocess.run(["git", "commit", "-qm", "x"], cwd=repo, env=git_env(BASE_ENV), check=True)
    (repo / "fresh empty").write_bytes(b"")
    diff = _diff(repo)
    assert changes_in_diff(diff).added == ["fresh empty"]


def test_hunk_content_that_looks_like_headers() -> None:
    diff = (
        b"diff --git f.txt f.txt\nindex 1..2 100644\n--- f.txt\n+++ f.txt\n"
        b"@@ -1,2 +1,2 @@\n--- not a header\n+++ neither\n context\n"
        b"diff --git g.txt g.txt\nnew file mode 100644\nindex 0..1\n--- /dev/null\n+++ g.txt\n"
        b"@@ -0,0 +1 @@\n+diff --git x x\n"
    )
    changes = changes_in_diff(diff)
    assert changes.modified == ["f.txt"]
    assert changes.added == ["g.txt"]


def test_quoted_names_are_unquoted() -> None:
    diff = (
        b'diff --git "\\303\\274.txt" "\\303\\274.txt"\nnew file mode 100644\n'
        b"index 0000000..e69de29\n"
        b'diff --git "a\\"b" "a\\"b"\ndeleted file mode 100644\nindex e69de29..0000000\n'
    )
    changes = changes_in_diff(diff)
    assert changes.added == ["ü.txt"]
    assert changes.deleted == ['a"b']


@pytest.mark.slow
def test_large_diff_50mb(tmp_path: Path) -> None:
    repo = _workspace(tmp_path, {"small.txt": b"x\n"})
    line = b"0123456789abcdef" * 4 + b"\n"  # 65 bytes
    (repo / "big.txt").write_bytes(line * (50 * 1024 * 1024 // len(line)))
    diff = _diff(repo)
    assert len(diff) > 50 * 1024 * 1024
    changes = changes_in_diff(diff)
    assert changes.added == ["big.txt"]

    other = tmp_path / "other"
    other.mkdir()
    (other / "small.txt").write_bytes(b"x\n")
    _run(commit_baseline(other, env=BASE_ENV))
    _run(apply_diff(other, diff, env=BASE_ENV))
    assert (other / "big.txt").stat().st_size == (repo / "big.txt").stat().st_size


def test_run_git_returns_bytes(tmp_path: Path) -> None:
    repo = _workspace(tmp_path, {"a": b"1\n"})
    out = _run(run_git(repo, "rev-parse", "--is-inside-work-tree", env=BASE_ENV))
    assert out == b"true\n"
