"""A per-host cache of repository objects fetched through the instance's git endpoint (ours).

Sourcegraph's executor fetches every job's repository afresh (`worker/workspace/clone.go`); a
batch change over a large repository fetches it once per workspace. With the cache, the host
keeps one bare repository per repository name, filled through the job's own authenticating
proxy (`executor.workspace.gitproxy`) with the job's own fetch flags; a job then fetches only
what the cache lacks (the same commit: nothing; a newer commit: the delta, the cached commits
being advertised as haves), and the workspace's `setup.git.fetch` copies the objects it needs
out of the cache over git's own transport (`git fetch file://…`: `upload-pack` writes a new
pack, so no file is shared with the workspace: no alternates, no hard links).

Layout under the cache root (mode 0700, outside every workspace and never mounted into a step):

    <key>.lock          flock: exclusive while an entry is filled, updated, read or evicted
    <key>/git/          the bare repository (gc off, hooks off, every fetch kept as a pack)
    <key>/ready.json    written (atomically) after every successful fill or update: the
                        repository name and each pack file with its size; its mtime is the
                        entry's last use (LRU)
    .tmp-<key>          a fill in progress (under the entry's lock, so one at a time);
                        renamed to `<key>` when complete

An entry is used only if `ready.json` exists, every pack it lists has the recorded size, no
other pack exists, and the commit resolves: a fill killed half-way (no rename), an update
killed half-way (the marker is removed before an update starts) or a truncated pack is
detected and the entry rebuilt, never used. The total size is bounded by
`EXECUTOR_REPO_CACHE_SIZE` (least recently used entries go first; an entry alone over the
bound is dropped after use; after a fill or update the process adds up the sizes it knows,
re-measuring every entry only when that is over the bound or 5 minutes old, so entries another
daemon filled in the meantime count from its next walk); `0` turns the cache off. Jobs with a
sparse checkout bypass it (their fetch is a partial clone, `--filter=blob:none`).

Every git command on the cache runs with `executor.workspace.hostgit.host_git_env`: no system
or global config or attributes, no hooks, no fsmonitor; nothing a step could have written is read.
Any failure of the cache falls back to today's fetch; the cache never fails a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from executor.wire import Job
from executor.workspace.hostgit import host_git_env

__all__ = ["DEFAULT_DIR_NAME", "RepoCache", "cache_applies", "fetch_flags"]

#: The cache's directory under the workspace root unless `EXECUTOR_REPO_CACHE_DIR` says otherwise.
DEFAULT_DIR_NAME = "executor-repo-cache"

_log = structlog.get_logger(__name__)

_READY = "ready.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Commits kept as refs in an entry (the haves offered to the server on the next fetch).
_KEEP_REFS = 32
_REF_PREFIX = "refs/executor-cache/"
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
#: Seconds after which a fill walks every entry again (see `RepoCache._evict`).
_RESCAN_S = 300.0


def fetch_flags(job: Job) -> list[str]:
    """The tag and depth flags of Sourcegraph's `setup.git.fetch` for `job`."""
    flags = ["--tags"] if job.fetch_tags else []
    if job.shallow_clone:
        flags += [] if job.fetch_tags else ["--no-tags"]
        flags.append("--depth=1")
    return flags


def cache_applies(job: Job) -> bool:
    """Whether `job`'s fetch can go through the cache (a repository, no sparse checkout)."""
    return bool(job.repository_name) and not job.sparse_checkout


@dataclass(frozen=True)
class _Entry:
    root: Path
    key: str

    @property
    def path(self) -> Path:
        return self.root / self.key

    @property
    def git_dir(self) -> Path:
        return self.path / "git"

    @property
    def ready(self) -> Path:
        return self.path / _READY

    @property
    def lock(self) -> Path:
        return self.root / f"{self.key}.lock"

    @property
    def temp(self) -> Path:
        """Where a fill builds the entry (the entry's lock is held meanwhile)."""
        return self.root / f".tmp-{self.key}"


class RepoCache:
    """The cache under `root`, at most `max_bytes` in total."""

    def __init__(self, root: Path, max_bytes: int, env: Mapping[str, str]) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._env = host_git_env(env, GIT_LFS_SKIP_SMUDGE="1")
        #: Counters for tests and metrics: entries filled, updated, used as they were, rebuilt
        #: after failing the check, and evicted.
        self.stats = {"filled": 0, "updated": 0, "hits": 0, "rebuilt": 0, "evicted": 0}
        self._bound_checked = False
        self._swept = False
        #: Bytes of each entry as this process last measured them (`_evict`), and when every
        #: entry was last walked: a fill measures its own entry only, and the whole cache is
        #: walked again when the known total goes over the bound or `_RESCAN_S` have passed
        #: (entries other processes filled meanwhile are counted then).
        self._sizes: dict[str, int] = {}
        self._walked_at = 0.0
        #: Full walks of the cache (tests: a fill under the bound walks no other entry).
        self.walks = 0

    def entry(self, repository_name: str) -> _Entry:
        digest = hashlib.sha256(repository_name.encode()).hexdigest()[:16]
        readable = _SAFE.sub("_", repository_name)[-48:].strip("._-") or "repo"
        return _Entry(self.root, f"{readable}-{digest}")

    @contextlib.asynccontextmanager
    async def lease(self, job: Job, upstream_url: str) -> AsyncIterator[str | None]:
        """Make sure the cache holds `job.commit` (fetching what it lacks from `upstream_url`)
        and yield the `file://` URL to fetch it from, or None if the cache cannot serve it.

        The entry stays locked while the block runs (the workspace's fetch reads it), so an
        eviction or a concurrent update cannot change it underneath.
        """
        entry = self.entry(job.repository_name)
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(entry.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            _log.warning("repository cache unavailable", error=str(err))
            yield None
            return
        try:
            try:  # uncontended, as it mostly is: no thread hop on the job's critical path
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            ready = grew = False
            try:
                ready, grew = await self._ensure(entry, job, upstream_url)
            except (OSError, _GitFailed) as err:
                _log.warning("repository cache fill failed", repo=entry.key, error=str(err))
                await asyncio.to_thread(_remove, entry.path)
            if ready:
                os.utime(entry.ready)
            yield entry.git_dir.as_uri() if ready else None
            # Only a fill or an update can take the cache over its bound: a hit, which adds
            # nothing, does not walk every entry's files again (but this process's first
            # lease does, in case the bound was lowered since the cache was filled).
            if ready and (grew or not self._bound_checked):
                self._bound_checked = True
                await asyncio.to_thread(self._evict, entry)
        finally:
            os.close(fd)

    async def _ensure(self, entry: _Entry, job: Job, upstream_url: str) -> tuple[bool, bool]:
        """Whether the entry can serve `job` now, and whether it grew on the way."""
        if not self._swept:  # once per process: any fill killed half-way, of any entry
            self._swept = True
            await asyncio.to_thread(_sweep_temps, self.root, entry)
        stale = entry.temp  # a fill of this entry killed half-way: one stat, not a listing
        if stale.exists():
            await asyncio.to_thread(_remove, stale)
        if entry.path.exists() and not await asyncio.to_thread(_intact, entry):
            _log.warning("repository cache entry torn; rebuilding", repo=entry.key)
            self.stats["rebuilt"] += 1
            await asyncio.to_thread(_remove, entry.path)
        if entry.path.exists():
            if await self._has(entry.git_dir, job):
                self.stats["hits"] += 1
                return True, False
            entry.ready.unlink()  # an update in progress is a torn entry until it completes
            try:
                await self._fetch(entry.git_dir, job, upstream_url)
            except _GitFailed as err:
                # A commit the server refuses (or a failed fetch) must not cost the entry: git
                # keeps a pack only once it is complete and indexed, so what is there is sound.
                _log.info("repository cache update failed", repo=entry.key, error=str(err))
                await asyncio.to_thread(_write_ready, entry, job.repository_name)
                return False, True
            self.stats["updated"] += 1
            await asyncio.to_thread(_write_ready, entry, job.repository_name)
            return await self._has(entry.git_dir, job), True
        temp = entry.temp
        temp.mkdir(mode=0o700)
        try:
            git_dir = temp / "git"
            await self._git("init", "--quiet", "--bare", str(git_dir))
            # The entry's settings in one write, not one `git config` process each: the file
            # is the executor's own (just made by `git init`, never mounted into a step).
            with open(git_dir / "config", "a", encoding="utf-8") as config:
                config.write(_ENTRY_CONFIG)
            await self._fetch(git_dir, job, upstream_url, fresh=True)
            final = _Entry(temp.parent, temp.name)
            await asyncio.to_thread(_write_ready, final, job.repository_name)
            temp.rename(entry.path)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(_remove, temp))
            raise
        self.stats["filled"] += 1
        return await self._has(entry.git_dir, job), True

    async def _has(self, git_dir: Path, job: Job) -> bool:
        """Whether the entry can serve `job`: the commit and its tree resolve, and a job that
        wants full history does not get a shallow one."""
        if not job.shallow_clone and (git_dir / "shallow").exists():
            return False
        # A commit the cache fetched for a job has its ref (written by git once the fetch,
        # objects and all, succeeded; packs checked by `_intact`): known without a process.
        if _FULL_SHA.fullmatch(job.commit) and (git_dir / _REF_PREFIX / job.commit).is_file():
            return True
        try:
            await self._git("-C", str(git_dir), "cat-file", "-e", f"{job.commit}^{{tree}}")
        except _GitFailed:
            return False
        return True

    async def _fetch(
        self, git_dir: Path, job: Job, upstream_url: str, *, fresh: bool = False
    ) -> None:
        """Fetch `job.commit` and keep it as a ref (at most `_KEEP_REFS` of them): a full
        commit ID is fetched straight into its ref (`<sha>:refs/executor-cache/<sha>`:
        git writes the ref only once the objects are in), not by a second `update-ref`; a
        fresh entry has no older refs to prune, so `for-each-ref` runs only when there may be
        more than `_KEEP_REFS`."""
        argv = ["-C", str(git_dir), "-c", "protocol.version=2", "fetch", "--quiet"]
        argv += ["--no-recurse-submodules", *fetch_flags(job)]
        if not job.shallow_clone and (git_dir / "shallow").exists():
            argv.append("--unshallow")
        ref = _REF_PREFIX + job.commit
        if _FULL_SHA.fullmatch(job.commit):
            await self._git(*argv, upstream_url, f"+{job.commit}:{ref}")
        else:
            await self._git(*argv, upstream_url, job.commit)
            await self._git("-C", str(git_dir), "update-ref", ref, job.commit)
        if fresh or _ref_count(git_dir) <= _KEEP_REFS:
            return
        refs = await self._git(
            "-C",
            str(git_dir),
            "for-each-ref",
            "--sort=-creatordate",
            "--format=%(refname)",
            _REF_PREFIX,
        )
        for old in refs.split()[_KEEP_REFS:]:
            await self._git("-C", str(git_dir), "update-ref", "-d", old)

    async def _git(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            # The upstream URL is a loopback proxy URL without credentials; safe to show.
            raise _GitFailed(f"git {args[-2:]} exited {proc.returncode}: {err.decode()[-300:]}")
        return out.decode()

    def _evict(self, current: _Entry) -> None:
        """Remove least recently used entries until the total fits `max_bytes`.

        With 20,000 entries a walk of every entry's files after each fill cost more than the
        job: only the current entry is measured, unless the known total is over the bound or
        the last full walk is older than `_RESCAN_S`."""
        if self._walked_at and time.monotonic() - self._walked_at < _RESCAN_S:
            self._sizes[current.key] = _size(current.path)
            if sum(self._sizes.values()) <= self.max_bytes:
                return
        self._evict_walk(current)

    def _evict_walk(self, current: _Entry) -> None:
        self.walks += 1
        self._walked_at = time.monotonic()
        self._sizes = {}
        entries: list[tuple[float, int, _Entry]] = []
        total = 0
        for path in self.root.iterdir():
            if not path.is_dir() or path.name.startswith(".tmp-"):
                continue
            entry = _Entry(self.root, path.name)
            size = _size(path)
            total += size
            try:
                used = entry.ready.stat().st_mtime
            except FileNotFoundError:
                used = 0.0
            entries.append((used, size, entry))
            self._sizes[entry.key] = size
        if total <= self.max_bytes:
            return
        for _, size, entry in sorted(entries, key=lambda t: t[0]):
            if total <= self.max_bytes:
                return
            if entry == current:
                continue
            if _remove_locked(entry):
                total -= size
                self._sizes.pop(entry.key, None)
                self.stats["evicted"] += 1
        if total > self.max_bytes:  # the current entry alone is over the bound
            _remove(current.path)
            self._sizes.pop(current.key, None)
            self.stats["evicted"] += 1


class _GitFailed(Exception):
    pass


#: Appended to a new entry's `config` (git accepts a section more than once).
_ENTRY_CONFIG = (
    "[gc]\n\tauto = 0\n"
    f"[core]\n\thooksPath = {os.devnull}\n"
    "[fetch]\n\tunpackLimit = 1\n"
    "[transfer]\n\tunpackLimit = 1\n"
    "[uploadpack]\n\tallowAnySHA1InWant = true\n"
)


def _ref_count(git_dir: Path) -> int:
    """An upper bound of the entry's cache refs: loose ones plus any line of `packed-refs`
    naming one (gc is off, so refs stay loose; counted without a process)."""
    loose = git_dir / _REF_PREFIX
    count = len(os.listdir(loose)) if loose.is_dir() else 0
    with contextlib.suppress(FileNotFoundError), open(git_dir / "packed-refs", "rb") as packed:
        count += sum(1 for line in packed if _REF_PREFIX.encode() in line)
    return count


def _packs(git_dir: Path) -> dict[str, int]:
    pack_dir = git_dir / "objects" / "pack"
    return {
        p.name: p.stat().st_size
        for p in pack_dir.iterdir()
        if p.suffix in (".pack", ".idx") and not p.name.startswith("tmp_")
    }


def _write_ready(entry: _Entry, repository_name: str) -> None:
    body = {"repository": repository_name, "packs": _packs(entry.git_dir), "at": time.time()}
    temp = entry.path / f".{_READY}.tmp"
    with open(temp, "w") as fh:
        json.dump(body, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, entry.ready)


def _intact(entry: _Entry) -> bool:
    try:
        recorded = json.loads(entry.ready.read_text())["packs"]
        return isinstance(recorded, dict) and recorded == _packs(entry.git_dir)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _sweep_temps(root: Path, current: _Entry) -> None:
    """Remove every fill left half-way (`.tmp-<key>`, or `.tmp-<key>-<random>` as earlier
    versions named them) whose entry no other process holds (on a process's first lease)."""
    for path in root.iterdir():
        if not path.name.startswith(".tmp-"):
            continue
        key = path.name[len(".tmp-") :]
        match = _TEMP_KEY.fullmatch(key)
        if match is None:
            continue
        entry = _Entry(root, match.group(1))
        if entry == current:
            _remove(path)  # its lock is ours
        else:
            _remove_locked(entry, path)


#: `<key>` or `<key>-<random>` after `.tmp-`; a key ends in 16 hex digits (`RepoCache.entry`).
_TEMP_KEY = re.compile(r"(.*-[0-9a-f]{16})(?:-[^/]*)?")


def _remove_locked(entry: _Entry, path: Path | None = None) -> bool:
    """Remove `path` (the entry itself by default, or its fill's temp dir) unless another
    process holds `entry`'s lock; whether it was removed."""
    try:
        fd = os.open(entry.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        _remove(entry.path if path is None else path)
        return True
    finally:
        os.close(fd)
