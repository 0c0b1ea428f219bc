"""One job from start to end: workspace, docker steps, cliSteps, teardown, final log flush.

The only place where workspace, runtime, logstream and the batch engine meet
(Sourcegraph's `cmd/executor/internal/worker/handler.go`). Order of the end-of-job actions is
Sourcegraph's: runtime cleanup, then the `teardown.fs` entry, then the logger's flush; the
worker sends the mark afterwards. Cleanup runs even when the job is cancelled (deadline,
heartbeat cancel, second signal), shielded from further cancellation, and its errors are added
to the job's error as notes, never replacing it. A failed final log flush fails the job.

A job that fails while the workspace filesystem is full (an `ENOSPC` in the error's chain, or
the filesystem found without space or inodes right after the failure, before teardown frees
anything) fails with `DiskFull` instead, whose message names the phase (`workspace`: creating
the directory; `clone`: a `setup.git.*` command; `files`: `setup.fs.extras`; `step`: a docker
or src step writing into the workspace), the command's log key and the path, and keeps the
original error. Any entry still open then is closed with exit code -1, so every entry of
the job has one. (Log uploads never touch the disk: entries are kept in memory and sent over
HTTP, so "no space" cannot happen while uploading logs.)

Must not know HTTP or the poll loop.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from executor.errors import DiskFull, JobError, LogFlushFailed, StepFailed, WorkspaceError
from executor.logstream.logger import ExecutionLogger, LogEntryHandle, LogSink, Redactor
from executor.runtime import JobRuntime, Runtime, finish_shielded
from executor.runtime.argv import (
    ContainerSpec,
    DockerOptions,
    container_labels,
    container_name,
    docker_argv,
    script_content,
    script_name,
)
from executor.runtime.auth import write_docker_auth_config
from executor.wire import CliStep, Job
from executor.workspace.clone import (
    SCRIPTS_DIR,
    FilesClient,
    Workspace,
    prepare_workspace,
    teardown_workspace,
)
from executor.workspace.confined import UnsafePath, check_relative, take_confined
from executor.workspace.disk import filesystem_full, is_enospc
from executor.workspace.marker import remove_owner_marker, write_owner_marker
from executor.workspace.repocache import RepoCache

__all__ = ["CliStepRunner", "HandlerOptions", "JobHandler"]

log = structlog.get_logger("executor.worker.handler")

_NO_CLI_STEPS = (
    "cliSteps (src batch exec) need Docker on the executor's host, which the Kubernetes "
    "runtime has not; run batch changes as native (V2) jobs"
)


class CliStepRunner(Protocol):
    """Answers a cliStep (`src …` arguments) on the host; returns the exit code."""

    async def run_cli_step(
        self,
        job: Job,
        workspace: Workspace,
        step: CliStep,
        handle: LogEntryHandle,
        *,
        env: Mapping[str, str],
        docker_config_dir: str | None,
    ) -> int: ...


@dataclass(frozen=True)
class HandlerOptions:
    """What the handler needs from the configuration, as plain values."""

    workspace_root: Path
    executor_name: str
    host_label: str
    frontend_url: str
    executor_token: str
    docker: DockerOptions
    forwarded_env: Mapping[str, str]
    keep_workspaces: bool = False
    log_max_bytes: int = 16 * 1024 * 1024
    log_interval: float = 1.0
    docker_auth_config: Mapping[str, Any] = field(default_factory=dict)
    lock_path: str = ""
    #: The host's repository cache (`executor.workspace.repocache`); None when it is off.
    repo_cache: RepoCache | None = None


class RootCleaner(Protocol):
    """Removes a workspace holding files the daemon's user cannot delete.

    `executor.runtime.rootclean.RootCleaner` is the implementation; declared here, by the
    consumer, so the handler does not depend on it."""

    def remover(
        self, *, job_id: str = "", images: Sequence[str] = ()
    ) -> Callable[[Path], Awaitable[str | None]]: ...


class JobHandler:
    """Runs jobs; satisfies `worker.Handler`."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        sink: LogSink,
        files: FilesClient,
        options: HandlerOptions,
        cli_steps: CliStepRunner | None = None,
        observe_command: Callable[[str, float, bool], None] | None = None,
        root_cleaner: RootCleaner | None = None,
        job_runtime: JobRuntime | None = None,
    ) -> None:
        self._runtime = runtime
        self._job_runtime = job_runtime
        self._sink = sink
        self._files = files
        self._opts = options
        self._cli = cli_steps
        self._observe = observe_command
        self._root_cleaner = root_cleaner

    async def handle(self, job: Job) -> None:
        opts = self._opts
        # SECURITY: every byte of command and output passes this redactor before upload.
        redactor = Redactor.for_job(job, opts.executor_token)
        logger = ExecutionLogger(
            self._sink, job, redactor, max_bytes=opts.log_max_bytes, interval=opts.log_interval
        )
        state: dict[str, Any] = {}
        try:
            await self._run(job, logger, state)
        except Exception as err:
            full = self._disk_full(err, state)
            logger.close_open(-1)
            await finish_shielded(self._cleanup(job, logger, state, full or err))
            if full is not None:
                raise full from err
            raise
        except BaseException as err:
            await finish_shielded(self._cleanup(job, logger, state, err))
            raise
        await finish_shielded(self._cleanup(job, logger, state, None))

    def _disk_full(self, err: Exception, state: dict[str, Any]) -> DiskFull | None:
        """`err` restated as `DiskFull` when the workspace filesystem is what failed it."""
        root = self._opts.workspace_root
        workspace = state.get("workspace")
        path = str(workspace.path) if workspace is not None else str(root)
        oserror = is_enospc(err)
        how = filesystem_full(Path(path))
        if oserror is None and how is None:
            return None
        if oserror is not None and oserror.filename:
            path = str(oserror.filename)
        key = err.step_key if isinstance(err, JobError) else None
        phase = _phase(key)
        detail = f"{how}; " if how else ""
        where = f"{phase} ({key})" if key else phase
        message = f"no space left on device during {where} at {path}: {detail}{err}"
        log.warning("job ran out of disk", phase=phase, stepKey=key, path=path)
        return DiskFull(message, phase=phase, path=path, step_key=key)

    async def _run(self, job: Job, logger: ExecutionLogger, state: dict[str, Any]) -> None:
        opts = self._opts
        scripts = [
            (script_name(job.id, i, job.repository_name, job.commit), script_content(s.commands))
            for i, s in enumerate(job.docker_steps)
        ]
        _check_step_dirs(job)
        if self._job_runtime is not None:  # the whole job runs there, repository fetch included
            if job.cli_steps:
                raise JobError(_NO_CLI_STEPS, step_key=f"step.src.{job.cli_steps[0].key or 0}")
            await self._job_runtime.run_job(job, self._files, scripts, logger)
            return
        opts.workspace_root.mkdir(parents=True, exist_ok=True)
        workspace = await prepare_workspace(
            job,
            root=opts.workspace_root,
            executor_name=opts.executor_name,
            frontend_url=opts.frontend_url,
            executor_token=opts.executor_token,
            logger=logger,
            files=self._files,
            env=opts.forwarded_env,
            scripts=scripts,
            repo_cache=opts.repo_cache,
        )
        state["workspace"] = workspace
        auth = job.docker_auth_config.to_wire() if job.docker_auth_config.auths else None
        if auth is None and opts.docker_auth_config:
            auth = dict(opts.docker_auth_config)
        if auth:
            state["auth_dir"] = write_docker_auth_config(auth, opts.workspace_root)
            # Owned like a workspace: if this daemon dies before `_cleanup`, a janitor removes
            # the directory, and the registry secrets in it, once the lock says we are gone.
            write_owner_marker(
                state["auth_dir"],
                executor_name=opts.executor_name,
                job_id=job.record_uid,
                lock_path=opts.lock_path,
            )
        config_dir = str(state["auth_dir"]) if "auth_dir" in state else None
        await self._docker_steps(job, workspace, logger, [n for n, _ in scripts], config_dir)
        for index, step in enumerate(job.cli_steps):
            await self._cli_step(job, workspace, logger, index, step, config_dir)

    async def _docker_steps(
        self,
        job: Job,
        workspace: Workspace,
        logger: ExecutionLogger,
        script_names: list[str],
        config_dir: str | None,
    ) -> None:
        opts = self._opts
        skip_until = ""
        for index, step in enumerate(job.docker_steps):
            if skip_until and step.key != skip_until:
                continue
            skip_until = ""
            key = f"step.docker.{step.key or index}"
            spec = ContainerSpec(
                image=step.image,
                script_path=f"{SCRIPTS_DIR}/{script_names[index]}",
                workspace_dir=str(workspace.path),
                dir=step.dir,
                env=list(step.env),
                name=container_name(opts.executor_name, job.id, index),
                labels=container_labels(
                    executor_name=opts.executor_name,
                    job_id=job.record_uid,
                    host=opts.host_label,
                    lock_path=opts.lock_path,
                ),
                docker_config_dir=config_dir,
            )
            try:
                argv = docker_argv(spec, opts.docker)
            except ValueError as err:
                raise JobError(f'running command "{key}": {err}', step_key=key) from None
            handle = logger.open(key, argv)
            with structlog.contextvars.bound_contextvars(stepKey=key):
                exit_code = await self._timed("exec", self._runtime.run(spec, opts.docker, handle))
            handle.finalize(exit_code)
            if exit_code != 0:
                raise StepFailed(
                    f'running command "{key}": command failed with exit code {exit_code}',
                    exit_code=exit_code,
                    step_key=key,
                )
            if step.key.endswith(".pre"):
                skip_until = _read_skip_file(workspace.path, step.dir)

    async def _cli_step(
        self,
        job: Job,
        workspace: Workspace,
        logger: ExecutionLogger,
        index: int,
        step: CliStep,
        config_dir: str | None,
    ) -> None:
        key = f"step.src.{step.key or index}"
        handle = logger.open(key, ["src", *step.command])
        if self._cli is None or step.command[:2] != ["batch", "exec"]:
            handle.write(
                "stderr",
                f"src {' '.join(step.command[:2])}: not supported by this "
                "executor (only `batch exec` cliSteps are)",
            )
            handle.finalize(1)
            raise StepFailed(
                f"failed to perform src-cli step: src {' '.join(step.command[:2])} is not "
                "supported by this executor",
                exit_code=1,
                step_key=key,
            )
        env = dict(self._opts.forwarded_env)
        for pair in step.env:
            name, _, value = pair.partition("=")
            env[name] = value
        with structlog.contextvars.bound_contextvars(stepKey=key):
            exit_code = await self._timed(
                "exec",
                self._cli.run_cli_step(
                    job,
                    workspace,
                    step,
                    handle,
                    env=env,
                    docker_config_dir=config_dir,
                ),
            )
        handle.finalize(exit_code)
        if exit_code != 0:
            raise StepFailed(
                f"failed to perform src-cli step: command failed with exit code {exit_code}",
                exit_code=exit_code,
                step_key=key,
            )

    async def _timed(self, op: str, work: Awaitable[int]) -> int:
        loop = asyncio.get_running_loop()
        started = loop.time()
        failed = True
        try:
            code = await work
            failed = code != 0
            return code
        finally:
            if self._observe is not None:
                self._observe(op, loop.time() - started, failed)

    async def _cleanup(
        self,
        job: Job,
        logger: ExecutionLogger,
        state: dict[str, Any],
        error: BaseException | None,
    ) -> None:
        problems: list[str] = []
        auth_dir = state.get("auth_dir")
        if auth_dir is not None:
            shutil.rmtree(auth_dir, ignore_errors=True)
            remove_owner_marker(auth_dir)
        workspace = state.get("workspace")
        if workspace is not None:
            try:
                remove_as_root = None
                if self._root_cleaner is not None:
                    remove_as_root = self._root_cleaner.remover(
                        job_id=job.record_uid, images=[s.image for s in job.docker_steps]
                    )
                await teardown_workspace(
                    workspace,
                    logger,
                    keep=self._opts.keep_workspaces,
                    remove_as_root=remove_as_root,
                )
            except OSError as err:
                problems.append(f"removing workspace: {err.strerror}")
        try:
            await logger.flush()
        except LogFlushFailed as err:
            if error is None:
                raise
            problems.append(str(err))
        for problem in problems:
            log.warning("teardown problem", problem=problem)
            if error is not None:
                error.add_note(problem)


def _phase(step_key: str | None) -> str:
    """The phase a log key belongs to: clone, files, step, or workspace (no command yet)."""
    if not step_key:
        return "workspace"
    if step_key.startswith("setup.git."):
        return "clone"
    if step_key.startswith("setup.fs."):
        return "files"
    return "step"


def _check_step_dirs(job: Job) -> None:
    """Refuse, before anything runs, a step `dir` that is absolute or climbs out.

    Docker would run such a step inside `/data` anyway (`filepath.Join`), but the host reads
    `<workspace>/<dir>/skip.json` after a `.pre` step, and `batch exec` works in `<dir>`: an
    absolute or `..` dir would point the host at files outside the workspace.
    """
    keyed = [(f"step.docker.{s.key or i}", s.dir) for i, s in enumerate(job.docker_steps)]
    keyed += [(f"step.src.{s.key or i}", s.dir) for i, s in enumerate(job.cli_steps)]
    for key, step_dir in keyed:
        try:
            check_relative(step_dir, what="step dir")
        except UnsafePath as err:
            raise JobError(f'running command "{key}": {err}', step_key=key) from None


#: `skip.json` is `{"nextStep": "step.N.pre"}`; anything much larger is not batcheshelper's.
_MAX_SKIP_FILE = 64 * 1024


def _read_skip_file(workspace: Path, step_dir: str) -> str:
    """The batches `.pre` protocol (§4.8): `skip.json` names the next step to run, if any.

    SECURITY: the `.pre` step just wrote the workspace, so `skip.json` (and every directory on
    the way) is read confined to it (`executor.workspace.confined`): no link followed, a FIFO
    never blocks, at most 64 KiB; it is removed also when refused.
    """
    try:
        rel = "/".join([*check_relative(step_dir, what="step dir"), "skip.json"])
        raw = take_confined(workspace, rel, max_bytes=_MAX_SKIP_FILE)
        if raw is None:
            return ""
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as err:  # UnsafePath included
        raise WorkspaceError(f"reading skip.json: {err}") from None
    next_step = data.get("nextStep", "") if isinstance(data, dict) else ""
    return str(next_step)
