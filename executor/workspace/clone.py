"""A job's workspace: directory, repository fetch, job files, step scripts, and removal.

Owns the filesystem side of a job (spec §4.2, §4.3): `prepare_workspace` creates
`<root>/workspace-<jobID>-XXXX`, marks it for the janitor (`<root>/.workspace-…owner`, beside
it, out of every step's reach: `executor.workspace.marker`), fetches the
repository through the local authenticating proxy (`executor.workspace.gitproxy`) with exactly
Sourcegraph's git commands and log keys, writes the job's files and step scripts, and
`teardown_workspace` removes it (with a caller-supplied fallback for root-owned files, see
`executor.runtime.rootclean`). Knows git and the filesystem; knows nothing of Docker, and of log
uploading only the `ExecutionLogger` it writes entries to.

With the host's repository cache on (`executor.workspace.repocache`), the cache is brought up to
the job's commit through the same proxy first and `setup.git.fetch` fetches from it (a
`file://` URL, the same flags; on failure the same entry fetches from `origin`); every other
command, and the repository a step sees, are unchanged.

Job files and scripts are written by `executor.workspace.files`, which refuses any path that
would land outside the workspace. On a failed preparation the directory is removed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from executor.errors import WorkspaceError
from executor.runtime.stream import pump_lines
from executor.wire import Job
from executor.workspace.files import (
    FILE_MODE,
    EntryLogger,
    FilesClient,
    remove_tree,
    show_path,
    within,
    write_files,
)
from executor.workspace.gitproxy import git_proxy
from executor.workspace.hostgit import GIT_TEMPLATE_DIR, host_git_env
from executor.workspace.marker import remove_owner_marker, write_owner_marker
from executor.workspace.repocache import RepoCache, cache_applies, fetch_flags

__all__ = [
    "SCRIPTS_DIR",
    "EntryLogger",
    "FilesClient",
    "RemoveAsRoot",
    "Workspace",
    "git_commands",
    "prepare_workspace",
    "teardown_workspace",
]

#: Directory (relative to the workspace) that holds one script per docker step.
SCRIPTS_DIR = ".sourcegraph-executor"

_MAX_LINE = 1024 * 1024


@dataclass(frozen=True)
class Workspace:
    """A prepared workspace. `repo_path` is where the repository is (the working directory)."""

    path: Path
    repo_path: Path
    scripts_dir: Path


def git_commands(job: Job, repo_path: str, port: int) -> list[tuple[str, list[str]]]:
    """The `(log key, argv)` pairs that fetch and check out the job's repository (§4.2)."""
    git = ["git", "-C", repo_path]
    fetch = [*git, "-c", "protocol.version=2", "fetch", "--progress", "--no-recurse-submodules"]
    fetch += fetch_flags(job)
    if job.sparse_checkout:
        fetch.append("--filter=blob:none")
    fetch += ["origin", job.commit]
    url = f"http://127.0.0.1:{port}/{job.repository_name}"
    commands = [
        ("setup.git.init", [*git, "init"]),
        ("setup.git.add-remote", [*git, "remote", "add", "origin", url]),
        ("setup.git.disable-gc", [*git, "config", "--local", "gc.auto", "0"]),
        ("setup.git.fetch", fetch),
    ]
    checkout = [*git, "checkout", "--progress", "--force", job.commit]
    if job.sparse_checkout:
        commands += [
            (
                "setup.git.sparse-checkout-config",
                [*git, "config", "--local", "core.sparseCheckout", "1"],
            ),
            (
                "setup.git.sparse-checkout-set",
                [*git, "sparse-checkout", "set", "--no-cone", "--", *job.sparse_checkout],
            ),
        ]
        checkout = [*git, "-c", "protocol.version=2", *checkout[3:]]
    commands += [
        ("setup.git.checkout", checkout),
        ("setup.git.set-remote", [*git, "remote", "set-url", "origin", job.repository_name]),
    ]
    return commands


async def prepare_workspace(
    job: Job,
    *,
    root: Path,
    executor_name: str,
    frontend_url: str,
    executor_token: str,
    logger: EntryLogger,
    files: FilesClient,
    env: Mapping[str, str],
    scripts: Sequence[tuple[str, str]] = (),
    owner_lock: str | os.PathLike[str] = "",
    repo_cache: RepoCache | None = None,
) -> Workspace:
    """Create the workspace, fetch the repository, write job files and `scripts` (name, text).

    `env` is the forwarded host environment (HOME, PATH, USER, DOCKER_HOST) given to git;
    `owner_lock` the daemon's liveness lock path recorded in the owner marker; `repo_cache`
    the host's repository cache (`executor.workspace.repocache`), if on. On any
    failure the directory is removed again and the error raised (a `WorkspaceError` whose
    message is safe to send as the job's `errorMessage`).
    """
    path = Path(tempfile.mkdtemp(prefix=f"workspace-{job.id}-", dir=root)).resolve()
    try:
        # `job` is the record UID ("42", or "42-batches" from a multi-queue dequeue).
        write_owner_marker(
            path, executor_name=executor_name, job_id=job.record_uid, lock_path=owner_lock
        )
        repo_path = _repo_path(path, job.repository_directory)
        repo_path.mkdir(parents=True, exist_ok=True)
        if job.repository_name:
            # Only the executor's own git configuration: `executor.workspace.hostgit`.
            git_env = host_git_env(
                env, GIT_LFS_SKIP_SMUDGE="1", GIT_TEMPLATE_DIR=str(GIT_TEMPLATE_DIR)
            )
            async with (
                git_proxy(
                    job,
                    frontend_url=frontend_url,
                    executor_name=executor_name,
                    executor_token=executor_token,
                ) as port,
                contextlib.AsyncExitStack() as stack,
            ):
                url = f"http://127.0.0.1:{port}/{job.repository_name}"
                for key, argv in git_commands(job, str(repo_path), port):
                    if key == "setup.git.fetch" and repo_cache and cache_applies(job):
                        # Locked until the checkout is done: nothing changes the entry meanwhile.
                        cached = await stack.enter_async_context(repo_cache.lease(job, url))
                        if cached is not None:
                            await _fetch_from_cache(logger, argv, cached, url, repo_path, git_env)
                            continue
                    await _run_logged(logger, key, argv, git_env)
                    if key == "setup.git.init":
                        # The template has no `hooks/` (an rpm ships no empty directory without
                        # a placeholder file): the empty one stock git makes, for a step's hook.
                        (repo_path / ".git" / "hooks").mkdir(exist_ok=True)
        scripts_dir = path / SCRIPTS_DIR
        scripts_dir.mkdir(mode=FILE_MODE, exist_ok=True)
        await write_files(job, path, scripts_dir, logger, files, scripts)
        return Workspace(path=path, repo_path=repo_path, scripts_dir=scripts_dir)
    except BaseException:
        await asyncio.shield(asyncio.to_thread(remove_tree, path))
        remove_owner_marker(path)
        raise


def _repo_path(workspace: Path, directory: str) -> Path:
    if not directory:
        return workspace
    joined = os.path.normpath(os.path.join(workspace, directory))
    if "\0" in directory or not within(Path(joined), workspace):
        raise WorkspaceError(
            f"invalid repo path {show_path(directory)}: not a subdirectory of {str(workspace)!r}"
        )
    return Path(joined)


class _EntrySink:
    """Writes a command's lines into its log entry and remembers the last stderr line."""

    def __init__(self, write: Callable[[str, str], None]) -> None:
        self._write = write
        self.last_stderr = ""

    def write(self, stream: str, line: str) -> None:
        self._write(stream, line)
        if stream == "stderr" and line.strip():
            self.last_stderr = line


async def _fetch_from_cache(
    logger: EntryLogger,
    argv: list[str],
    cache_url: str,
    url: str,
    repo_path: Path,
    env: Mapping[str, str],
) -> None:
    """`setup.git.fetch` from the repository cache: the same command with the cache's
    `file://` URL for `origin` (git's transport: the objects are copied into a new pack);
    FETCH_HEAD then names the proxy URL, as after a fetch from `origin`. Should it fail, the
    same entry goes on with the fetch from `origin`."""
    local = [cache_url if arg == "origin" else arg for arg in argv]
    fallback = await _run_logged(logger, "setup.git.fetch", local, env, fallback=argv)
    if not fallback:
        fetch_head = repo_path / ".git" / "FETCH_HEAD"
        with contextlib.suppress(OSError):
            fetch_head.write_text(fetch_head.read_text().replace(cache_url, url))


async def _run_logged(
    logger: EntryLogger,
    key: str,
    argv: list[str],
    env: Mapping[str, str],
    *,
    fallback: list[str] | None = None,
) -> bool:
    """Run one command as one log entry; raise `WorkspaceError` unless it exits 0.

    With `fallback`, a failure of `argv` is written to the entry and `fallback` runs in the
    same entry; returns whether it did.
    """
    handle = logger.open(key, argv)
    sink = _EntrySink(handle.write)

    used_fallback = False
    try:
        exit_code = await _exec(argv, env, sink)
        if exit_code != 0 and fallback is not None:
            handle.write("stderr", f"exit code {exit_code}; fetching from origin instead")
            used_fallback, sink.last_stderr = True, ""
            exit_code = await _exec(fallback, env, sink)
    except OSError as err:
        handle.write("stderr", str(err))
        handle.finalize(-1)
        raise WorkspaceError(f"failed {key}: {err.strerror or err}", step_key=key) from err
    except BaseException:
        handle.finalize(-1)
        raise
    handle.finalize(exit_code)
    if exit_code != 0:
        message = f"failed {key}: command failed with exit code {exit_code}"
        if sink.last_stderr:
            # SECURITY: error messages are uploaded as errorMessage; redact like the log.
            message += f": {logger.redactor.redact(sink.last_stderr.strip())}"
        raise WorkspaceError(message, step_key=key)
    return used_fallback


async def _exec(argv: list[str], env: Mapping[str, str], sink: _EntrySink) -> int:
    """Run `argv`, every output line to `sink`; its exit code (killed if we are cancelled)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        await asyncio.gather(
            pump_lines(proc.stdout, "stdout", sink, max_line=_MAX_LINE),
            pump_lines(proc.stderr, "stderr", sink, max_line=_MAX_LINE),
        )
        return await proc.wait()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await asyncio.shield(proc.wait())
        raise


#: Removes what the daemon's user could not (bound to one job), returning the error text or None
#: once `path` is gone: `executor.runtime.rootclean.RootCleaner.remover(...)`. Declared here, by the
#: consumer, so this module stays ignorant of Docker.
RemoveAsRoot = Callable[[Path], Awaitable[str | None]]


async def teardown_workspace(
    ws: Workspace,
    logger: EntryLogger,
    keep: bool,
    *,
    remove_as_root: RemoveAsRoot | None = None,
) -> bool:
    """Write the `teardown.fs` entry (exit code 0 always) and remove the workspace unless `keep`.

    Returns whether the directory is gone (or kept on purpose). Containers running as root can
    leave root-owned directories that an unprivileged daemon cannot empty; when removal fails
    for lack of permission and `remove_as_root` is given, it is called (a short cleanup
    container, `executor.runtime.rootclean`). If the workspace is still there, the entry says
    `Operation failed: …`.
    """
    handle = logger.open("teardown.fs", None)
    try:
        if keep:
            handle.write_text(f"Preserving workspace ({ws.path}) as per config")
            return True
        handle.write_text(f"Removing {ws.path}\n")
        # In a thread: a large checkout takes seconds to delete and must not stall heartbeats.
        result = await asyncio.shield(asyncio.to_thread(remove_tree, ws.path))
        error = result.error
        if error is not None and result.permission_denied and remove_as_root is not None:
            handle.write_text(f"{error}; removing the rest with a cleanup container\n")
            error = await asyncio.shield(remove_as_root(ws.path))
        if error is not None:
            handle.write_text(f"Operation failed: {error}\n")
            return False  # the marker stays: a janitor retries, knowing the owner
        remove_owner_marker(ws.path)
        return True
    finally:
        handle.finalize(0)
