"""The host's repository cache (`executor.workspace.repocache`) against a real smart-HTTP
upstream (`git http-backend`, the fixture of `test_workspace_git`): a warm workspace is the
same as a cold one, the network is not used for a cached commit, concurrent jobs on one
repository, a torn entry is rebuilt (never used), eviction under the size bound.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from executor.errors import WorkspaceError
from executor.wire import Job
from executor.workspace import repocache
from executor.workspace.clone import Workspace
from executor.workspace.repocache import RepoCache
from tests.integration.test_workspace_git import (
    JOB_TOKEN,
    REPO,
    Upstream,
    _git,
    commands,
    fetch,
    upstream,
)

__all__ = ["upstream"]  # the fixture, used by name


def tree_digest(path: Path) -> dict[str, str]:
    """sha256 of every file under `path` outside `.git`, by relative path."""
    found = {}
    for dirpath, dirnames, files in os.walk(path):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in files:
            full = Path(dirpath) / name
            found[str(full.relative_to(path))] = hashlib.sha256(full.read_bytes()).hexdigest()
    return found


def snapshot(ws: Workspace) -> dict[str, object]:
    """What a step can observe of the repository: files, HEAD, index, remotes, status."""
    rp = ws.repo_path
    fetch_head = (rp / ".git" / "FETCH_HEAD").read_text()
    return {
        "files": tree_digest(rp),
        "head": _git(rp, "rev-parse", "HEAD"),
        "index": _git(rp, "ls-files", "-s"),
        "remotes": _git(rp, "remote", "-v"),
        "status": _git(rp, "status", "--porcelain", "--ignored"),
        "shallow": (rp / ".git" / "shallow").exists(),
        "alternates": (rp / ".git" / "objects" / "info" / "alternates").exists(),
        "config": (rp / ".git" / "config").read_text(),
        "fetch_head": fetch_head.split(" of ")[0],
        "fetch_head_url": fetch_head.rsplit(" of ", 1)[1].split(":")[0],
        "log": _git(rp, "log", "--format=%H %s"),
    }


def upload_packs(up: Upstream) -> int:
    return sum(1 for r in up.requests if r["method"] == "POST")


def job(commit: str, **kw: object) -> Job:
    return Job(id=9, token=JOB_TOKEN, repositoryName=REPO, commit=commit, **kw)  # type: ignore[arg-type]


def host_copy(upstream: Upstream, name: str) -> None:
    """Host a bare copy of the test repository under another repository name."""
    (upstream.root / name).parent.mkdir(parents=True, exist_ok=True)
    source, copy = upstream.root / REPO, upstream.root / name
    subprocess.run(["git", "clone", "--quiet", "--bare", str(source), str(copy)], check=True)


def cache_for(tmp_path: Path, max_bytes: int = 1 << 30) -> RepoCache:
    return RepoCache(tmp_path / "cache", max_bytes, {"PATH": os.environ["PATH"]})


@pytest.mark.parametrize("shallow", [True, False])
def test_warm_workspace_is_the_cold_one_and_uses_no_network(
    upstream: Upstream, tmp_path: Path, shallow: bool
) -> None:
    head = upstream.commits[1]
    cold, cold_sink = asyncio.run(fetch(job(head, shallowClone=shallow), tmp_path, upstream.url))
    cache = cache_for(tmp_path)
    filled, _ = asyncio.run(
        fetch(job(head, shallowClone=shallow), tmp_path, upstream.url, repo_cache=cache)
    )
    posts = upload_packs(upstream)
    warm, warm_sink = asyncio.run(
        fetch(job(head, shallowClone=shallow), tmp_path, upstream.url, repo_cache=cache)
    )
    assert upload_packs(upstream) == posts  # nothing over the network for a cached commit
    assert cache.stats["filled"] == 1 and cache.stats["hits"] == 1
    assert snapshot(cold) == snapshot(filled) == snapshot(warm)
    assert _git(warm.repo_path, "status", "--porcelain") == ""
    assert [k for k, _ in commands(cold_sink)] == [k for k, _ in commands(warm_sink)]
    fetch_argv = dict(commands(warm_sink))["setup.git.fetch"]
    assert fetch_argv is not None and fetch_argv[-2].startswith("file://")
    # The workspace's objects are its own: no alternates, no file shared with the cache.
    cache_inodes = {os.stat(p).st_ino for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    ws_inodes = {os.stat(p).st_ino for p in (warm.repo_path / ".git").rglob("*") if p.is_file()}
    assert not cache_inodes & ws_inodes


def test_newer_commit_fetches_only_the_delta(upstream: Upstream, tmp_path: Path) -> None:
    first, head = upstream.commits
    cache = cache_for(tmp_path)
    asyncio.run(fetch(job(first, shallowClone=True), tmp_path, upstream.url, repo_cache=cache))
    posts = upload_packs(upstream)
    ws, _ = asyncio.run(
        fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=cache)
    )
    assert cache.stats == {**cache.stats, "filled": 1, "updated": 1}
    assert upload_packs(upstream) > posts
    haves = b"".join(r["body"] for r in upstream.requests[-2:] if r["method"] == "POST")
    assert first.encode() in haves  # the cached commit was offered to the server
    assert (ws.repo_path / "README.md").read_text() == "two\n"
    assert _git(ws.repo_path, "rev-parse", "HEAD") == head


def test_concurrent_jobs_on_one_repository(upstream: Upstream, tmp_path: Path) -> None:
    head = upstream.commits[1]
    cache = cache_for(tmp_path)

    async def many() -> list[Workspace]:
        done = await asyncio.gather(
            *(
                fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=cache)
                for _ in range(4)
            )
        )
        return [ws for ws, _ in done]

    spaces = asyncio.run(many())
    assert cache.stats["filled"] == 1 and cache.stats["hits"] == 3
    assert len({ws.path for ws in spaces}) == 4
    for ws in spaces:
        assert _git(ws.repo_path, "rev-parse", "HEAD") == head
        assert _git(ws.repo_path, "status", "--porcelain") == ""


def _pack(cache: RepoCache) -> Path:
    packs = list((cache.entry(REPO).git_dir / "objects" / "pack").glob("*.pack"))
    assert packs
    return packs[0]


@pytest.mark.parametrize("damage", ["truncate-pack", "update-killed", "fill-killed"])
def test_torn_entry_is_rebuilt_never_used(upstream: Upstream, tmp_path: Path, damage: str) -> None:
    head = upstream.commits[1]
    cache = cache_for(tmp_path)
    asyncio.run(fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=cache))
    entry = cache.entry(REPO)
    if damage == "truncate-pack":
        pack = _pack(cache)
        os.truncate(pack, pack.stat().st_size // 2)
    elif damage == "update-killed":
        (entry.path / "ready.json").unlink()  # an update removes it first
    else:  # a fill killed before its rename: the temp dir is all there is
        entry.path.rename(tmp_path / "cache" / f".tmp-{entry.key}")
    posts = upload_packs(upstream)
    ws, _ = asyncio.run(
        fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=cache)
    )
    assert upload_packs(upstream) > posts  # refetched, not served from the damaged entry
    assert cache.stats["rebuilt"] == (0 if damage == "fill-killed" else 1)
    assert cache.stats["filled"] == 2
    assert not list((tmp_path / "cache").glob(".tmp-*"))
    assert _git(ws.repo_path, "status", "--porcelain") == ""
    assert (ws.repo_path / "README.md").read_text() == "two\n"
    fsck = subprocess.run(
        ["git", "-C", str(entry.git_dir), "fsck", "--connectivity-only"], capture_output=True
    )
    assert fsck.returncode == 0


def test_a_fill_killed_by_sigkill_leaves_nothing_used(upstream: Upstream, tmp_path: Path) -> None:
    """A real kill -9 of a process in the middle of a fill (its git fetch in flight)."""
    head = upstream.commits[1]
    script = f"""
import asyncio, os, sys
sys.path[:0] = {[str(Path(__file__).resolve().parents[2]), str(Path(__file__).parent.parent)]}
from tests.integration.test_workspace_git import fetch
from tests.integration.test_repocache import job, cache_for
from pathlib import Path
asyncio.run(fetch(job({head!r}, shallowClone=True), Path({str(tmp_path)!r}), {upstream.url!r},
                  repo_cache=cache_for(Path({str(tmp_path)!r}))))
"""
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    # A `git` that stops forever once it is fetching into the cache: the kill lands mid-fill.
    (tmp_path / "bin").mkdir()
    real = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    stall = tmp_path / "stalled"
    (tmp_path / "bin" / "git").write_text(
        f'#!/bin/sh\ncase "$*" in *" fetch --quiet "*) touch {stall}; sleep 600;; esac\n'
        f'exec {real} "$@"\n'
    )
    (tmp_path / "bin" / "git").chmod(0o755)
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        for _ in range(600):
            if stall.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert stall.exists(), "the fill never started"
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list((tmp_path / "cache").glob(".tmp-*"))  # what the killed fill left
    cache = cache_for(tmp_path)
    ws, _ = asyncio.run(
        fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=cache)
    )
    assert cache.stats["filled"] == 1 and cache.stats["hits"] == 0
    assert not list((tmp_path / "cache").glob(".tmp-*"))
    assert _git(ws.repo_path, "rev-parse", "HEAD") == head


def test_eviction_keeps_the_cache_under_its_bound(upstream: Upstream, tmp_path: Path) -> None:
    other = "github.com/test/other"
    host_copy(upstream, other)
    head = upstream.commits[1]
    probe = cache_for(tmp_path / "probe")
    asyncio.run(fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=probe))
    one = sum(p.stat().st_size for p in probe.entry(REPO).path.rglob("*") if p.is_file())
    # Room for one entry, not two: using a second repository evicts the least recently used.
    cache = cache_for(tmp_path, max_bytes=int(one * 1.5))
    asyncio.run(fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=cache))
    assert cache.entry(REPO).path.exists()
    other_job = Job(id=10, token=JOB_TOKEN, repositoryName=other, commit=head, shallowClone=True)
    ws, _ = asyncio.run(fetch(other_job, tmp_path, upstream.url, repo_cache=cache))
    assert _git(ws.repo_path, "rev-parse", "HEAD") == head
    assert not cache.entry(REPO).path.exists() and cache.entry(other).path.exists()
    assert cache.stats["evicted"] == 1
    # An entry alone over the bound serves its job and is dropped afterwards.
    tiny = cache_for(tmp_path / "tiny", max_bytes=1)
    ws, _ = asyncio.run(
        fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=tiny)
    )
    assert _git(ws.repo_path, "rev-parse", "HEAD") == head
    assert not tiny.entry(REPO).path.exists() and tiny.stats["evicted"] == 1


def test_sparse_checkout_bypasses_the_cache(upstream: Upstream, tmp_path: Path) -> None:
    head = upstream.commits[1]
    cache = cache_for(tmp_path)
    sparse = job(head, shallowClone=True, sparseCheckout=["src/*"])
    ws, sink = asyncio.run(fetch(sparse, tmp_path, upstream.url, repo_cache=cache))
    assert sum(cache.stats.values()) == 0 and not (tmp_path / "cache").exists()
    assert dict(commands(sink))["setup.git.fetch"][-2] == "origin"  # type: ignore[index]
    assert (ws.repo_path / "src" / "a.txt").exists()


def test_a_commit_the_server_lacks_keeps_the_entry(upstream: Upstream, tmp_path: Path) -> None:
    head = upstream.commits[1]
    cache = cache_for(tmp_path)
    asyncio.run(fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=cache))
    with pytest.raises(WorkspaceError, match=r"setup\.git\.fetch"):
        asyncio.run(
            fetch(job("0" * 40, shallowClone=True), tmp_path, upstream.url, repo_cache=cache)
        )
    posts = upload_packs(upstream)
    ws, _ = asyncio.run(
        fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=cache)
    )
    assert upload_packs(upstream) == posts and cache.stats["filled"] == 1  # still served
    assert _git(ws.repo_path, "rev-parse", "HEAD") == head


def test_a_hit_spawns_no_git_in_the_cache_and_a_lowered_bound_still_applies(
    upstream: Upstream, tmp_path: Path
) -> None:
    """The commit's ref tells a hit without `git cat-file` (one process less per job); a
    hit walks no entries for eviction, except the first lease of a process (a bound lowered
    since the cache was filled is enforced then)."""
    calls = tmp_path / "git-calls"
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    real_git = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    (wrapper / "git").write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real_git} "$@"\n')
    (wrapper / "git").chmod(0o755)
    env = {"PATH": f"{wrapper}:{os.environ['PATH']}"}
    head = upstream.commits[1]
    cache = RepoCache(tmp_path / "cache", 1 << 30, env)
    asyncio.run(fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=cache))
    # A fill is two processes: `git init --bare` and the fetch straight into the commit's ref
    # (no `git config` per setting, no `update-ref`, no `for-each-ref` on a fresh entry).
    filled = [line.split()[0] if line.startswith("init") else line.split()[4]
              for line in calls.read_text().splitlines()]  # fmt: skip
    assert filled == ["init", "fetch"], calls.read_text()
    calls.unlink()
    ws, _ = asyncio.run(
        fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=cache)
    )
    assert cache.stats["hits"] == 1
    assert not calls.exists()  # no git process in the cache for a hit
    assert _git(ws.repo_path, "rev-parse", "HEAD") == head
    # A commit the cache has no ref for is still looked up (and then fetched).
    first = upstream.commits[0]
    asyncio.run(fetch(job(first, shallowClone=True), tmp_path, upstream.url, repo_cache=cache))
    assert "cat-file" in calls.read_text() and cache.stats["updated"] == 1
    # A new process with a bound below the entry's size evicts on its first lease, a hit.
    small = RepoCache(tmp_path / "cache", 1, env)
    ws, _ = asyncio.run(
        fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=small)
    )
    assert small.stats["hits"] == 1 and small.stats["evicted"] == 1
    assert _git(ws.repo_path, "rev-parse", "HEAD") == head
    assert not small.entry(REPO).path.exists()


def test_a_fill_under_the_bound_measures_only_its_own_entry(
    upstream: Upstream, tmp_path: Path
) -> None:
    """After the first lease, a fill that keeps the cache under its bound walks no other
    entry (a walk of every entry per fill grew with the cache: 20,000 entries in a batch
    change); one that takes it over the bound walks them all and evicts."""
    names = [f"github.com/test/walk{i}" for i in range(3)]
    for name in names:
        host_copy(upstream, name)
    head = upstream.commits[1]
    cache = cache_for(tmp_path)

    def use(name: str, c: RepoCache) -> None:
        one = Job(id=11, token=JOB_TOKEN, repositoryName=name, commit=head, shallowClone=True)
        ws, _ = asyncio.run(fetch(one, tmp_path, upstream.url, repo_cache=c))
        assert _git(ws.repo_path, "rev-parse", "HEAD") == head

    for name in names:
        use(name, cache)
    assert cache.stats["filled"] == 3 and cache.walks == 1
    entry = cache.entry(names[0]).path
    size = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
    # The same cache, its bound now below two entries: the next fill walks and evicts.
    cache.max_bytes = int(size * 1.5)
    use(REPO, cache)
    assert cache.walks == 2 and cache.stats["evicted"] == 3
    assert cache.entry(REPO).path.exists()
    assert not any(cache.entry(n).path.exists() for n in names)


def test_first_lease_sweeps_killed_fills_but_not_one_in_progress(
    upstream: Upstream, tmp_path: Path
) -> None:
    """Later leases look only at their own entry's `.tmp-<key>` (no listing of a cache of
    20,000 entries per job); a process's first lease removes any fill killed half-way, in
    today's and the earlier `.tmp-<key>-<random>` naming, but not one whose lock is held."""
    head = upstream.commits[1]
    cache = cache_for(tmp_path)
    root = tmp_path / "cache"
    root.mkdir()
    legacy = root / f".tmp-{cache.entry('github.com/x/legacy').key}-k1ll3d_x"
    killed = root / f".tmp-{cache.entry('github.com/x/killed').key}"
    busy_entry = cache.entry("github.com/x/busy")
    busy = root / f".tmp-{busy_entry.key}"
    for path in (legacy, killed, busy):
        (path / "git").mkdir(parents=True)
    fd = os.open(busy_entry.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process filling `busy`
        asyncio.run(fetch(job(head, shallowClone=True), tmp_path, upstream.url, repo_cache=cache))
    finally:
        os.close(fd)
    assert not legacy.exists() and not killed.exists()
    assert busy.exists()
    assert cache.stats["filled"] == 1 and cache.entry(REPO).path.exists()


def test_an_update_past_the_ref_limit_prunes_the_oldest_refs(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`for-each-ref` is skipped for a fresh entry and while the refs are within the limit,
    but an update that takes the entry over `_KEEP_REFS` still prunes it back."""
    monkeypatch.setattr(repocache, "_KEEP_REFS", 1)
    cache = cache_for(tmp_path)
    for commit in (upstream.commits[1], upstream.commits[0]):
        ws, _ = asyncio.run(
            fetch(job(commit, shallowClone=True), tmp_path, upstream.url, repo_cache=cache)
        )
        assert _git(ws.repo_path, "rev-parse", "HEAD") == commit
    assert cache.stats["filled"] == 1 and cache.stats["updated"] == 1
    refs = _git(cache.entry(REPO).git_dir, "for-each-ref", "--format=%(refname)")
    assert len(refs.split()) == 1, refs
