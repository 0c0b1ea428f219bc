"""Hostile corpus: git configuration the executor does not control never runs on the host.

The daemon's HOME holds a global git config and a global attributes file (the kind an image, an
admin's dotfiles or anything else writing `~` may leave) that define a filter driver for every
path, a hook directory and an fsmonitor command, each touching a canary; the environment also
names a "system" config (`GIT_CONFIG_SYSTEM`) with the same. A plain `git` with that HOME runs
them (the control: the attack is real); the workspace fetch (with and without the repository
cache) and the batch engine's diff do not (`executor.workspace.hostgit`), and still give the
right tree and diff.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from executor.batch.diff import commit_baseline, snapshot_git_dir, staged_diff
from executor.wire import Job
from executor.workspace.hostgit import host_git_env
from executor.workspace.repocache import RepoCache
from tests.integration.test_workspace_git import (
    JOB_TOKEN,
    REPO,
    Upstream,
    fetch,
    upstream,
)

__all__ = ["upstream"]  # the fixture, used by name


def _arm(home: Path, canary: Path) -> dict[str, str]:
    """Write the hostile global config into `home`; the env a plain git would pick it up with."""
    hooks = home / "hooks"
    hooks.mkdir(parents=True)
    for hook in ("post-checkout", "reference-transaction", "pre-commit", "post-index-change"):
        (hooks / hook).write_text(f"#!/bin/sh\necho {hook} >> {canary}\n")
        (hooks / hook).chmod(0o755)
    config = (
        f'[filter "evil"]\n\tclean = "echo clean >> {canary}; cat"\n'
        f'\tsmudge = "echo smudge >> {canary}; cat"\n\trequired = true\n'
        f'[core]\n\thooksPath = {hooks}\n\tfsmonitor = "echo fsmonitor >> {canary}"\n'
    )
    (home / ".gitconfig").write_text(config)
    (home / "system-gitconfig").write_text(config)
    attributes = home / ".config" / "git" / "attributes"
    attributes.parent.mkdir(parents=True)
    attributes.write_text("* filter=evil\n")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_SYSTEM": str(home / "system-gitconfig"),
    }


def test_the_control_a_plain_git_runs_the_hostile_global_config(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    env = _arm(tmp_path / "home", canary)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "f.txt").write_text("x\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "add", "f.txt"], cwd=repo, env=env, check=True, capture_output=True)
    assert "clean" in canary.read_text()


@pytest.mark.parametrize("cached", [False, True], ids=["fetch", "repo-cache"])
def test_workspace_fetch_reads_no_global_or_system_git_config(
    upstream: Upstream, tmp_path: Path, cached: bool
) -> None:
    canary = tmp_path / "canary"
    env = _arm(tmp_path / "home", canary)  # `fetch` gives git HOME=tmp_path/home
    head = upstream.commits[1]
    job = Job(id=8, token=JOB_TOKEN, repositoryName=REPO, commit=head)
    extra = {"repo_cache": RepoCache(tmp_path / "cache", 1 << 30, env)} if cached else {}
    ws, sink = asyncio.run(fetch(job, tmp_path, upstream.url + "/", **extra))
    assert all(e.exit_code == 0 for e in sink.entries.values()), sink.entries
    assert not canary.exists(), canary.read_text()
    assert (ws.path / "README.md").read_text() == "two\n"
    assert (ws.path / "src" / "a.txt").read_text() == "a\n"


def test_batch_diff_reads_no_global_or_system_git_config(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    env = _arm(tmp_path / "home", canary)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("one\n")

    async def scenario() -> bytes:
        await commit_baseline(repo, env=env)
        private = await snapshot_git_dir(repo, tmp_path / "private-git")
        (repo / "README.md").write_text("two\n")
        return await staged_diff(repo, env=env, git_dir=private)

    diff = asyncio.run(scenario())
    assert not canary.exists(), canary.read_text()
    assert b"-one\n+two\n" in diff, diff


def test_host_git_starts_no_auto_maintenance_after_a_fetch(tmp_path: Path) -> None:
    """`maintenance.auto=false` (`executor.workspace.hostgit`): a fetch starts no `git
    maintenance run --auto` (a process per fetch that did nothing: gc.auto is 0 in every
    repository the host fetches into); a plain git does start it (the control)."""
    source = tmp_path / "source"
    subprocess.run(["git", "init", "--quiet", str(source)], check=True)
    (source / "a.txt").write_text("a\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    subprocess.run(["git", "-C", str(source), "add", "a.txt"], check=True, env=env)
    subprocess.run(["git", "-C", str(source), "commit", "-qm", "a"], check=True, env=env)

    def traced_fetch(name: str, fetch_env: dict[str, str]) -> str:
        target, trace = tmp_path / name, tmp_path / f"{name}.trace"
        subprocess.run(["git", "init", "--quiet", str(target)], check=True)
        subprocess.run(
            ["git", "-C", str(target), "fetch", "--quiet", source.as_uri(), "HEAD"],
            check=True,
            env={**fetch_env, "GIT_TRACE": str(trace)},
        )
        return trace.read_text()

    plain = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    assert "maintenance run --auto" in traced_fetch("control", plain)
    assert "maintenance" not in traced_fetch("host", host_git_env(plain))
