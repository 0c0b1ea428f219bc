"""The batch helper's private git dir: ``post`` diffs the repository without reading its config.

Owns: :func:`private_git_dir`, a git dir outside the job directory (the helper container's own
temp dir, which no step container shares) made from the repository's ``.git``: ``HEAD``, refs,
``index``, ``shallow`` and ``info/`` copied, ``objects`` linked, and a config holding only the
keys a clone made by the executor sets that matter to ``git add``/``git diff`` (format version,
file mode, sparse checkout, extensions, ...). Everything else a previous step may have written
into ``.git/config``, filter drivers above all, is never read.

Must not know: templates, events, the queue.

Why (ours; Sourcegraph's ``batcheshelper post`` runs git on the step-written ``.git`` itself):
the helper containers get every secret of the job, and the step before could write ``.git``. The
``batch exec`` engine has the same guard on the host (``executor.batch.diff.snapshot_git_dir``,
taken before any step ran); in a V2 job no place in the shared job directory is out of a step's
reach, so the copy is taken at each ``post`` and its config rebuilt from an allowlist. Objects
are shared (a step can only make git read different objects, not run anything); the index is a
private copy, so the repository's own index never sees the helper's ``git add`` (the diff is
the same: it is always taken against ``HEAD``).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from executor.batch.diff import GitError, run_git

__all__ = ["ALLOWED_CONFIG", "private_git_dir"]

#: Config keys (lower case, as ``git config --list`` prints them) kept in the private copy.
ALLOWED_CONFIG = frozenset(
    {
        "core.repositoryformatversion",
        "core.filemode",
        "core.bare",
        "core.symlinks",
        "core.ignorecase",
        "core.precomposeunicode",
        "core.sparsecheckout",
        "core.sparsecheckoutcone",
        "index.sparse",
    }
)
_SKIPPED = ("objects", "hooks", "config", "config.worktree", "modules", "worktrees", "logs")


async def private_git_dir(repo: Path, into: Path, *, env: Mapping[str, str]) -> Path:
    """Build the private git dir for ``repo`` at ``into`` (which must not exist yet)."""
    source = repo / ".git"
    if source.is_symlink() or not source.is_dir():
        raise GitError(["snapshot"], -1, f"{source} is not a git directory".encode())
    shutil.copytree(source, into, symlinks=True, ignore=shutil.ignore_patterns(*_SKIPPED))
    (into / "objects").symlink_to((source / "objects").resolve())
    config = into / "config"
    config.touch()
    # `--file` reads that one file, includes off; run outside both git dirs.
    raw = await run_git(
        into.parent, "config", "--file", str(source / "config"), "--null", "--list", env=env
    )
    for item in raw.split(b"\0"):
        key, _, value = item.decode("utf-8", "replace").partition("\n")
        if key.lower() in ALLOWED_CONFIG or key.lower().startswith("extensions."):
            await run_git(into.parent, "config", "--file", str(config), key, value, env=env)
    return into
