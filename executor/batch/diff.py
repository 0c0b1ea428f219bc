"""The git side of a batch step: baseline commit, cumulative diff, cached-diff replay.

Owns: the git commands src-cli and batcheshelper run around steps, with an isolated
environment, and :func:`changes_in_diff` (which files a diff adds/modifies/deletes/renames).

Must not know: docker, templates, the queue, where a diff is stored.

Facts (src-cli ``internal/batches/workspace/{git.go,bind_workspace.go}``, batcheshelper
``run/post.go``, ``lib/batches/git/changes.go``):

* git runs with ``GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG=/dev/null GIT_TERMINAL_PROMPT=0`` and
  author/committer ``Sourcegraph <batch-changes@sourcegraph.com>``. We add
  ``GIT_CONFIG_GLOBAL=/dev/null`` (newer git no longer reads ``GIT_CONFIG``) and
  ``-c safe.directory=<repo>`` (batcheshelper's ``git config --global --add safe.directory``),
  and everything of ``executor.workspace.hostgit`` (no system attributes, no global
  attributes or ignore file, no hooks or fsmonitor), as every host-side git gets.
* Baseline: ``git init``; ``git add --force --all``; ``git commit --quiet --all
  --allow-empty -m src-action-exec`` (executor mode uses the clone's HEAD instead).
* After a step: ``git add --all`` then ``git diff --cached --no-prefix --binary``: the
  cumulative diff against the baseline, with git's default rename detection. The diff is
  produced with git's defaults (non-ASCII names C-quoted), exactly as src-cli does.
* Replaying a cached diff: ``git apply -p0`` then ``git add --all``.

SECURITY (ours; src-cli runs these in the step's own repository): the repository is mounted
into step containers, so after a step its ``.git`` (config with filter drivers, fsmonitor,
``diff.external``, textconv, hooks, alternates) is hostile. The host must not interpret it, by
construction rather than by a deny-list of today's keys: before the first step,
:func:`snapshot_git_dir` copies ``.git`` (written by the executor's own clone, before any step
ran) to a private directory outside every mount, without hooks, and every later git command
runs with ``--git-dir=<private> --work-tree=<repo>``. Git then reads only the private config;
the worktree's ``.git`` is never looked at (git skips it by name), and worktree attributes can
name filter or diff drivers only the private config could define (it defines none). The step's
own ``.git`` keeps working for steps that use git in their container, but it no longer sees
the engine's ``git add`` in its index (a difference from src-cli that no diff shows).
* ``ChangesInDiff`` (go-diff): ``NewName == /dev/null`` → deleted (orig name);
  ``OrigName == /dev/null`` → added; equal names → modified; else renamed (new name only).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from executor.batch.execution import Changes
from executor.workspace.hostgit import HOST_GIT_ENV, host_git_env

__all__ = [
    "BASELINE_COMMIT_MESSAGE",
    "GIT_ISOLATION_ENV",
    "GitError",
    "apply_diff",
    "changes_in_diff",
    "commit_baseline",
    "git_env",
    "run_git",
    "snapshot_git_dir",
    "staged_diff",
]

BASELINE_COMMIT_MESSAGE = "src-action-exec"
GIT_ISOLATION_ENV: Mapping[str, str] = {
    **HOST_GIT_ENV,
    "GIT_CONFIG": "/dev/null",
    "GIT_AUTHOR_NAME": "Sourcegraph",
    "GIT_AUTHOR_EMAIL": "batch-changes@sourcegraph.com",
    "GIT_COMMITTER_NAME": "Sourcegraph",
    "GIT_COMMITTER_EMAIL": "batch-changes@sourcegraph.com",
}


class GitError(RuntimeError):
    """A git command failed; ``stderr`` is kept for the step's error message."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: bytes) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        text = stderr.decode("utf-8", "replace").strip()
        super().__init__(f"git {' '.join(argv)} failed with exit code {returncode}: {text}")


def git_env(base: Mapping[str, str]) -> dict[str, str]:
    """The child env: ``host_git_env(base)`` (PATH, HOME, locale and the host's git
    isolation, ``executor.workspace.hostgit``) plus src-cli's variables."""
    return host_git_env(base, **GIT_ISOLATION_ENV)


async def run_git(
    repo: Path,
    *args: str,
    env: Mapping[str, str],
    stdin: bytes | None = None,
    git_dir: Path | None = None,
) -> bytes:
    """Run ``git -C repo args`` with exactly ``git_env(env)``; return stdout bytes.

    With ``git_dir`` (the private copy of :func:`snapshot_git_dir`), git uses it instead of the
    repository's own ``.git``, which a step may have written.
    """
    argv = ["-c", f"safe.directory={repo}", *args]
    if git_dir is not None:
        argv = [
            f"--git-dir={git_dir}",
            f"--work-tree={repo}",
            "-c",
            f"safe.directory={git_dir}",
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.fsmonitor=false",
            *argv,
        ]
    proc = await asyncio.create_subprocess_exec(
        "git",
        *argv,
        cwd=repo,
        env=git_env(env),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # communicate() collects chunks and joins once: linear in the output size.
    out, err = await proc.communicate(stdin)
    if proc.returncode != 0:
        raise GitError(list(args), proc.returncode or -1, err)
    return out


async def commit_baseline(repo: Path, *, env: Mapping[str, str]) -> None:
    """Snapshot the workspace as it is (ignored files included) as the diff base."""
    await run_git(repo, "init", "--quiet", env=env)
    await run_git(repo, "add", "--force", "--all", env=env)
    await run_git(
        repo,
        "commit",
        "--quiet",
        "--all",
        "--allow-empty",
        "-m",
        BASELINE_COMMIT_MESSAGE,
        env=env,
    )


async def snapshot_git_dir(repo: Path, private: Path) -> Path:
    """Copy ``repo/.git`` to ``private`` (outside every mount) before any step runs; no hooks.

    Symlinks are copied as links, never followed; ``.git`` must be a real directory.
    """
    source = repo / ".git"
    if source.is_symlink() or not source.is_dir():
        raise GitError(["snapshot"], -1, f"{source} is not a git directory".encode())
    if private.exists():
        await asyncio.to_thread(shutil.rmtree, private)
    await asyncio.to_thread(
        shutil.copytree, source, private, symlinks=True, ignore=shutil.ignore_patterns("hooks")
    )
    return private


async def staged_diff(repo: Path, *, env: Mapping[str, str], git_dir: Path | None = None) -> bytes:
    """``git add --all`` + ``git diff --cached --no-prefix --binary``: the cumulative diff."""
    await run_git(repo, "add", "--all", env=env, git_dir=git_dir)
    return await run_git(
        repo, "diff", "--cached", "--no-prefix", "--binary", "--no-ext-diff", "--no-textconv",
        env=env, git_dir=git_dir,
    )  # fmt: skip


async def apply_diff(
    repo: Path, diff: bytes, *, env: Mapping[str, str], git_dir: Path | None = None
) -> None:
    """Replay a cached cumulative diff (``git apply -p0``) and stage it (``git add --all``).

    The patch goes through stdin so no temporary file can end up inside the workspace.
    """
    if diff:
        await run_git(repo, "apply", "-p0", "-", env=env, stdin=diff, git_dir=git_dir)
    await run_git(repo, "add", "--all", env=env, git_dir=git_dir)


# --- ChangesInDiff ---------------------------------------------------------------------

_HUNK = re.compile(rb"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_C_ESCAPES = {
    ord("a"): 7,
    ord("b"): 8,
    ord("t"): 9,
    ord("n"): 10,
    ord("v"): 11,
    ord("f"): 12,
    ord("r"): 13,
    ord('"'): 34,
    ord("\\"): 92,
}


def _unquote(raw: bytes) -> bytes:
    """Undo git's C-style quoting (``"a\\303\\251b"``); unquoted names pass through."""
    if len(raw) < 2 or raw[:1] != b'"' or raw[-1:] != b'"':
        return raw
    body, out, i = raw[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c == 0x5C and i + 1 < len(body):
            nxt = body[i + 1]
            if 0x30 <= nxt <= 0x37:
                out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
            out.append(_C_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


def _name(raw: bytes) -> str:
    return _unquote(raw).decode("utf-8", "surrogateescape")


def _header_name(rest: bytes) -> bytes:
    # `--- name` / `+++ name`; git appends a TAB when the name contains a space.
    return rest[:-1] if rest.endswith(b"\t") else rest


def _split_git_line(rest: bytes) -> tuple[bytes, bytes]:
    """Split the two names of ``diff --git A B`` (quoted, or equal halves when unquoted)."""
    if rest.startswith(b'"'):
        i = 1
        while i < len(rest) and rest[i] != 0x22:
            i += 2 if rest[i] == 0x5C else 1
        return rest[: i + 1], rest[i + 2 :]
    mid = len(rest) // 2
    if len(rest) % 2 == 1 and rest[mid : mid + 1] == b" " and rest[:mid] == rest[mid + 1 :]:
        return rest[:mid], rest[mid + 1 :]
    first, _, second = rest.partition(b" ")
    return first, second


@dataclass
class _FileDiff:
    git_a: bytes = b""
    git_b: bytes = b""
    minus: bytes | None = None
    plus: bytes | None = None
    rename_from: bytes | None = None
    rename_to: bytes | None = None
    new_file: bool = False
    deleted_file: bool = False
    extra: list[bytes] = field(default_factory=list)

    def names(self) -> tuple[str, str]:
        orig = self.minus
        if orig is None:
            orig = b"/dev/null" if self.new_file else (self.rename_from or self.git_a)
        new = self.plus
        if new is None:
            new = b"/dev/null" if self.deleted_file else (self.rename_to or self.git_b)
        return _name(orig), _name(new)


def _parse(diff: bytes) -> list[_FileDiff]:
    files: list[_FileDiff] = []
    current: _FileDiff | None = None
    old_left = new_left = 0
    for line in diff.split(b"\n"):
        if old_left > 0 or new_left > 0:
            # Inside a hunk: count lines so content such as "--- x" is never a header.
            tag = line[:1]
            if tag in (b" ", b""):
                old_left, new_left = old_left - 1, new_left - 1
            elif tag == b"-":
                old_left -= 1
            elif tag == b"+":
                new_left -= 1
            continue
        if line.startswith(b"diff --git "):
            current = _FileDiff()
            files.append(current)
            current.git_a, current.git_b = _split_git_line(line[len(b"diff --git ") :])
        elif current is None:
            continue
        elif line.startswith(b"@@ "):
            match = _HUNK.match(line)
            if match:
                old_left = int(match.group(1) or b"1")
                new_left = int(match.group(2) or b"1")
        elif line.startswith(b"--- "):
            current.minus = _unquote(_header_name(line[4:]))
        elif line.startswith(b"+++ "):
            current.plus = _unquote(_header_name(line[4:]))
        elif line.startswith(b"rename from "):
            current.rename_from = _unquote(line[len(b"rename from ") :])
        elif line.startswith(b"rename to "):
            current.rename_to = _unquote(line[len(b"rename to ") :])
        elif line.startswith(b"new file mode "):
            current.new_file = True
        elif line.startswith(b"deleted file mode "):
            current.deleted_file = True
    return files


def changes_in_diff(diff: bytes) -> Changes:
    """``git.ChangesInDiff``: classify each file of a multi-file git diff, in diff order."""
    modified: list[str] = []
    added: list[str] = []
    deleted: list[str] = []
    renamed: list[str] = []
    for file_diff in _parse(diff):
        orig, new = file_diff.names()
        if new == "/dev/null":
            deleted.append(orig)
        elif orig == "/dev/null":
            added.append(new)
        elif orig == new:
            modified.append(orig)
        else:
            renamed.append(new)
    # Go's nil slices marshal as null: keep None for "nothing of this kind".
    return Changes(
        modified=modified or None,
        added=added or None,
        deleted=deleted or None,
        renamed=renamed or None,
    )
