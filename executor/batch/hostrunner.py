"""The daemon's answer to a ``batch exec`` cliStep: the engine in-process, steps in Docker.

Owns: :class:`BatchExecRunner` (satisfies ``executor.worker.handler.CliStepRunner``) and
:class:`DockerStepRunner`, which maps an engine :class:`StepContainer` onto the daemon's
Docker runtime: same limits and hardening (``DockerOptions``), container names and janitor
labels, cancellation (the runtime stops the container when the job task is cancelled).

Must not know: the queue API or log uploads (events go to ``handle.write("stdout", …)``,
where the logger redacts and uploads them as the ``step.src.batch-exec`` entry).

Container layout: src-cli's (``internal/batches/executor/run_steps.go`` ``executeSingleStep``,
``workspace/bind_workspace.go`` ``DockerRunOpts``, ``cmd/src/batch_exec.go``; read at
``sourcegraph/src-cli`` ``main``). src-cli runs each step as::

    docker run --rm --init --cidfile F --workdir /work[/<path>]
      --mount type=bind,source=<script>,target=<mktemp path in the image>,ro
      --mount type=bind,source=<repo dir>,target=/work
      [--user 0:0]                      (ForceRoot = !-run-as-image-user in `batch exec`)
      --mount type=bind,source=<tmp>,target=<files key>,ro   (per `files:` entry)
      --mount type=bind,source=<path>,target=<mountpoint>,ro (per `mount:` entry)
      -e K=V ... --entrypoint <bash|sh> -- <image digest> <mktemp path>

Ours, through the runtime's argv builder (``runtime.argv.docker_argv`` with the optional
``mount_target``/``mount_subdir``/``user``/``args`` fields that Sourcegraph's docker steps leave
unset): the repository directory (``-repo``) is mounted at :data:`WORK_DIR` (``-v <repo>:/work``),
the working directory is ``/work[/<path>]``, ``--user 0:0`` unless ``-run-as-image-user``,
``files:`` and ``mount:`` entries are read-only ``--mount type=bind`` flags at their keys and
mountpoints, ``-e`` per env var; plus the daemon's name, labels, limits and hardening.

Divergences from src-cli, each on purpose:

* The step's directory (entry script, ``step.sh``, rendered ``files:``) is bind-mounted
  read-only at :data:`STEP_DIR` instead of one script file at a ``mktemp`` path probed with an
  extra container per step; the entry script picks ``/bin/bash`` or ``/bin/sh`` itself
  (``steps.wrapper_script``), so the entrypoint is ``/bin/sh``.
* Images are run by name, not by digest; the repository is mounted with ``-v`` (the runtime's
  form), not ``--mount``: the same bind, except that Docker would create a missing source.
* No ``--cidfile``: the container is found by its ``--name`` for cancellation and cleanup.
* The repository and the temp dir (step directories) must lie inside the job workspace, so
  Docker-in-Docker (``EXECUTOR_DOCKER_HOST_MOUNT_PATH``) can map them (``mount:`` sources are
  mapped when they lie inside it too).
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

from executor.batch.engine import BatchEngine
from executor.batch.execflags import ExecFlags, FlagError, parse_exec_flags, run_batch_exec
from executor.batch.step_prepare import ContainerRunner, StepContainer, StepFailure
from executor.logstream.logger import LogEntryHandle
from executor.runtime import Runtime
from executor.runtime.argv import ContainerSpec, DockerOptions, container_labels, container_name
from executor.runtime.stream import OutputSink
from executor.wire import CliStep, Job
from executor.workspace.clone import Workspace
from executor.workspace.confined import UnsafePath, check_relative

__all__ = [
    "ROOT_USER",
    "STEP_DIR",
    "WORK_DIR",
    "BatchExecRunner",
    "DockerStepRunner",
    "bind_mount",
]

log = structlog.get_logger("executor.batch")

#: src-cli's ``workDir``: where the repository is mounted and steps run.
WORK_DIR = "/work"
#: Where the step's own directory (entry script, ``step.sh``, ``files:`` sources) is mounted.
STEP_DIR = "/.src-batch-exec"
#: src-cli's ``ForceRoot``.
ROOT_USER = "0:0"


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
        run_as_image_user: bool = False,
    ) -> None:
        """``root`` is the job workspace (repository, temp dir and mounts must lie inside it);
        ``run_as_image_user`` is ``batch exec -run-as-image-user`` (else ``--user 0:0``)."""
        self.runtime = runtime
        self.docker = docker
        self.root = root.resolve()
        self.name_for = name_for
        self.labels = dict(labels)
        self.docker_config_dir = docker_config_dir
        self.run_as_image_user = run_as_image_user

    def _relative(self, path: Path, base: Path | None = None) -> str:
        """``path`` relative to ``base`` (default: the workspace), which must contain it."""
        root = self.root if base is None else base.resolve()
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            raise StepFailure(f"{path} is not inside the job workspace {root}")
        rel = resolved.relative_to(root).as_posix()
        return "" if rel == "." else rel

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
        step_dir = container.script.parent
        self._relative(step_dir)  # inside the workspace, or Docker-in-Docker could not map it
        binds = [bind_mount(self._host_path(str(step_dir)), STEP_DIR)]
        binds += [bind_mount(self._host_path(src), dst) for src, dst in container.mounts]
        options = dataclasses.replace(
            self.docker, additional_mounts=[*self.docker.additional_mounts, *binds]
        )
        script = posixpath.join(STEP_DIR, self._relative(container.script, step_dir))
        spec = ContainerSpec(
            image=container.image,
            script_path="",
            workspace_dir=str(self.root),
            dir=container.workdir.strip("/"),
            env=[f"{k}={v}" for k, v in container.env.items()],
            name=self.name_for(container.index),
            labels=self.labels,
            docker_config_dir=self.docker_config_dir,
            mount_target=WORK_DIR,
            mount_subdir=self._relative(container.repo_dir),
            user="" if self.run_as_image_user else ROOT_USER,
            args=(script,),
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
        try:
            cwd = _working_dir(workspace.path, step.dir)
        except UnsafePath as err:
            handle.write("stderr", f"error: {err}")
            return 1
        labels = container_labels(
            executor_name=self.executor_name,
            job_id=job.record_uid,
            host=self.host_label,
            lock_path=self.lock_path,
        )

        def runner_for(flags: ExecFlags, _cwd: Path) -> ContainerRunner:
            return DockerStepRunner(
                runtime=self.runtime,
                docker=self.docker,
                root=workspace.path,
                name_for=lambda i: container_name(self.executor_name, job.id, f"batch-{i}"),
                labels=labels,
                docker_config_dir=docker_config_dir,
                run_as_image_user=flags.run_as_image_user,
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


def _working_dir(root: Path, step_dir: str) -> Path:
    """`root/step_dir`, refused unless relative and (links resolved) still inside `root`."""
    cwd = root.joinpath(*check_relative(step_dir, what="step dir"))
    real, base = Path(os.path.realpath(cwd)), Path(os.path.realpath(root))
    if real != base and not real.is_relative_to(base):
        raise UnsafePath(f"step dir {step_dir!r} leads out of the workspace")
    return real
