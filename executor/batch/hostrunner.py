"""The daemon's answer to a ``batch exec`` cliStep: the engine in-process, steps in Docker.

Owns: :class:`BatchExecRunner` (satisfies ``executor.handler.CliStepRunner``) and
:class:`DockerStepRunner`, which maps an engine :class:`StepContainer` onto the daemon's
Docker runtime: same limits and hardening (``DockerOptions``), container names and janitor
labels, cancellation (the runtime stops the container when the job task is cancelled).

Must not know: the queue API or log uploads (events go to ``handle.write("stdout", …)``,
where the logger redacts and uploads them as the ``step.src.batch-exec`` entry).

Container layout. The runtime mounts one host directory at ``/data`` and runs
``/bin/sh /data/<script>`` in ``/data/<dir>``; we mount the job workspace (which holds
``repository/`` and ``.src-tmp/``), so the step's working directory is
``/data/repository[/<path>]`` (src-cli: ``/work[/<path>]``). ``files:`` and ``mount:``
entries are extra read-only ``--mount type=bind`` flags, as in src-cli. Divergence: src-cli
forces ``--user 0:0`` unless ``-run-as-image-user``; the runtime's argv has no ``--user``,
so steps run as the image's default user.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

from executor.batch.engine import BatchEngine
from executor.batch.execflags import ExecFlags, FlagError, parse_exec_flags, run_batch_exec
from executor.batch.step_prepare import ContainerRunner, StepContainer, StepFailure
from executor.logstream import LogEntryHandle
from executor.runtime import Runtime
from executor.runtime_argv import ContainerSpec, DockerOptions, container_labels, container_name
from executor.runtime_stream import OutputSink
from executor.wire import CliStep, Job
from executor.workspace import Workspace

__all__ = ["BatchExecRunner", "DockerStepRunner", "bind_mount"]

log = structlog.get_logger("executor.batch")


def bind_mount(source: str, target: str) -> str:
    """A read-only ``--mount`` value; fields with ``,`` or ``"`` are CSV-quoted for docker."""
    fields = ["type=bind", f"source={source}", f"target={target}", "readonly"]
    return ",".join(
        '"' + f.replace('"', '""') + '"' if ("," in f or '"' in f) else f for f in fields
    )


class DockerStepRunner:
    """Runs engine steps through a :class:`Runtime`, with everything under ``root``."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        docker: DockerOptions,
        root: Path,
        name_for: Callable[[int], str],
        labels: Mapping[str, str],
        docker_config_dir: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.docker = docker
        self.root = root.resolve()
        self.name_for = name_for
        self.labels = dict(labels)
        self.docker_config_dir = docker_config_dir

    def _relative(self, path: Path) -> str:
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise StepFailure(f"{path} is not inside the job workspace {self.root}")
        return resolved.relative_to(self.root).as_posix()

    def _host_path(self, path: str) -> str:
        """Docker-in-Docker: where the engine's daemon sees ``path`` (cf. ``_host_dir``)."""
        base = self.docker.host_mount_path
        resolved = Path(path).resolve()
        if not base or not resolved.is_relative_to(self.root):
            return path
        rel = resolved.relative_to(self.root).as_posix()
        mapped = posixpath.join(base, self.root.name, rel)
        return mapped + "/" if path.endswith("/") else mapped

    def spec_for(self, container: StepContainer) -> tuple[ContainerSpec, DockerOptions]:
        """The runtime's ``ContainerSpec`` and per-step ``DockerOptions`` for a step."""
        workdir = posixpath.join(self._relative(container.repo_dir), container.workdir)
        binds = [bind_mount(self._host_path(src), dst) for src, dst in container.mounts]
        options = dataclasses.replace(
            self.docker, additional_mounts=[*self.docker.additional_mounts, *binds]
        )
        spec = ContainerSpec(
            image=container.image,
            script_path=self._relative(container.script),
            workspace_dir=str(self.root),
            dir=workdir.rstrip("/"),
            env=[f"{k}={v}" for k, v in container.env.items()],
            name=self.name_for(container.index),
            labels=self.labels,
            docker_config_dir=self.docker_config_dir,
        )
        return spec, options

    async def run_container(self, container: StepContainer, sink: OutputSink) -> int:
        spec, options = self.spec_for(container)
        try:
            return await self.runtime.run(spec, options, sink)
        except ValueError as err:
            # An image the docker CLI would misparse (empty, leading "-"): report like docker.
            sink.write("stderr", f"docker: {err}")
            return 125


class BatchExecRunner:
    """Runs ``src batch exec …`` cliSteps in-process; satisfies ``handler.CliStepRunner``."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        docker: DockerOptions,
        executor_name: str,
        host_label: str,
        lock_path: str = "",
    ) -> None:
        self.runtime = runtime
        self.docker = docker
        self.executor_name = executor_name
        self.host_label = host_label
        self.lock_path = lock_path
        #: The engine of the last run (tests read ``containers_started`` from it).
        self.last_engine: BatchEngine | None = None

    async def run_cli_step(
        self,
        job: Job,
        workspace: Workspace,
        step: CliStep,
        handle: LogEntryHandle,
        *,
        env: Mapping[str, str],
        docker_config_dir: str | None,
    ) -> int:
        """Parse ``step.command`` (``batch exec …``), run the engine, return src's exit code."""
        self.last_engine = None
        try:
            flags = parse_exec_flags(step.command[2:])
        except FlagError as err:
            handle.write("stderr", f"error: {err}")
            return 2
        cwd = workspace.path / step.dir if step.dir else workspace.path
        labels = container_labels(
            executor_name=self.executor_name,
            job_id=job.record_uid,
            host=self.host_label,
            lock_path=self.lock_path,
        )

        def runner_for(_flags: ExecFlags, _cwd: Path) -> ContainerRunner:
            return DockerStepRunner(
                runtime=self.runtime,
                docker=self.docker,
                root=workspace.path,
                name_for=lambda i: container_name(self.executor_name, job.id, f"batch-{i}"),
                labels=labels,
                docker_config_dir=docker_config_dir,
            )

        def emit(line: str) -> None:
            handle.write("stdout", line)

        try:
            code, engine = await run_batch_exec(
                flags, cwd=cwd, runner_for=runner_for, emit=emit, environ=env
            )
        except (StepFailure, OSError) as err:
            handle.write("stderr", f"error: {err}")
            return 1
        self.last_engine = engine
        log.info(
            "batch exec finished",
            exit_code=code,
            containers_started=engine.containers_started if engine else 0,
        )
        return code
