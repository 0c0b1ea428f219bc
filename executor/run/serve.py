"""`executor run`: build every part from the settings, run them side by side, stop on signals.

Sourcegraph's `cmd/executor/internal/run/run.go`. One function per part (`_client`, `_runtime`,
`_handler`, `_worker`, `_janitor`); `serve` only composes them. Signals follow the drain contract
(README, "Stopping"), as a small state machine with named states (`executor.run.signals`):

    CONNECTING --connected--> RUNNING --1st signal--> DRAINING --2nd signal--> CANCELLING
        |
        +--any signal--> exit 1 (as Sourcegraph: the frontend never answered)

Under systemd (`Type=notify`) it sends READY=1 once set up, STATUS= per phase, STOPPING=1 when
it starts draining, and WATCHDOG=1 from the loop while healthy (`executor.run.sdnotify`).

Exit codes: 0 after a clean stop or drain, 2 when the Kubernetes runtime cannot start (no API
server, a kubeconfig that does not load, a namespace that does not exist: the message names the
setting), 128 + the signal (143 for SIGTERM) when a signal came before the frontend first
answered.

With Docker on a local engine, the engine is asked `GET /info` before the first dequeue and
every 30 s after (`executor.runtime.engine`): while it does not answer, nothing is dequeued.

The runtime is `settings.runtime` (`executor.config.kubernetes.select_runtime`): Docker, or
Kubernetes (`executor.run.kube`, which imports the runtime and its client library only then).
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from executor import __version__
from executor.apiclient.queue import QueueClient
from executor.config.settings import Settings, no_effect
from executor.errors import ConfigError
from executor.logstream.logger import LogEntryHandle
from executor.metrics import Metrics
from executor.run.health import HealthServer, parse_addr
from executor.run.host import (
    WIRE_VERSION,
    JobLimits,
    fit_limits,
    host_resources,
    step_network_warnings,
    telemetry,
    watch_children_with_pidfd,
)
from executor.run.kube import KubernetesParts, start_kubernetes
from executor.run.mirror import mirror_warnings
from executor.run.scrape import ExporterScraper, sources_from_env
from executor.run.sdnotify import Notifier
from executor.run.signals import Phase, Signals
from executor.runtime import JobRuntime, Runtime, forwarded_env
from executor.runtime.argv import DockerOptions
from executor.runtime.docker import DockerRuntime
from executor.runtime.engine import EngineProbe, engine_socket
from executor.runtime.janitor import Janitor, hold_liveness_lock
from executor.runtime.rootclean import RootCleaner
from executor.wire import CliStep, Job
from executor.worker.handler import CliStepRunner, HandlerOptions, JobHandler
from executor.worker.loop import Worker, WorkerOptions
from executor.workspace.clone import Workspace
from executor.workspace.disk import DiskAdmission
from executor.workspace.repocache import DEFAULT_DIR_NAME, RepoCache

__all__ = ["Phase", "serve", "unowned_grace"]

log = structlog.get_logger("executor.run")


@dataclass(frozen=True)
class _Host:
    """Who and where this daemon is: the same for every part it builds."""

    name: str
    label: str
    workspace_root: Path
    env: Mapping[str, str]
    lock_path: str


def unowned_grace(max_runtime: float) -> float:
    """Seconds before the janitor calls a workspace without an owner marker abandoned.

    A step may delete the marker, so such a workspace must never be called stale while its job
    can still be running: the per-job deadline plus ten minutes, at least an hour; with no
    deadline (0), a day.
    """
    if max_runtime <= 0:
        return 86400.0
    return max(3600.0, max_runtime + 600.0)


async def serve(settings: Settings, environ: Mapping[str, str]) -> int:
    """Run the daemon until it drains or is stopped; the process exit code."""
    watch_children_with_pidfd(asyncio.get_running_loop())
    workspace_root = Path(tempfile.gettempdir())
    lock = hold_liveness_lock(workspace_root, settings.executor_name)
    host = _Host(
        name=settings.executor_name,
        label=socket.gethostname(),
        workspace_root=workspace_root,
        env=forwarded_env(environ),
        lock_path=str(lock.path),
    )
    if settings.health_server_addr:
        try:
            parse_addr(settings.health_server_addr)
        except ValueError as err:
            log.error("invalid configuration", error=f"EXECUTOR_HEALTH_SERVER_ADDR: {err}")
            lock.release()
            return 2
    for warning in no_effect(environ):
        log.warning(warning)
    limits = fit_limits(settings.job_num_cpus, settings.job_memory, host_resources(host.env))
    for warning in limits.warnings:
        log.warning(warning)
    for warning in mirror_warnings(settings.docker_registry_mirror_url, host.env):
        log.warning(warning)
    for warning in step_network_warnings(settings.step_network, host.env):
        log.warning(warning)
    metrics = Metrics()
    kubernetes: KubernetesParts | None = None
    if settings.runtime == "kubernetes":
        try:
            kubernetes = await start_kubernetes(
                settings,
                environ,
                executor_name=host.name,
                host_label=host.label,
                lock_path=host.lock_path,
                on_cancel_latency=metrics.cancel_latency.observe,
            )
        except ConfigError as err:
            log.error("invalid configuration", error=str(err))
            lock.release()
            return 2
    if settings.metrics_port:
        metrics.serve(settings.metrics_host, settings.metrics_port)
    exporters = ExporterScraper(sources_from_env(environ))
    client = _client(settings, host, metrics, limits, exporters)
    runtime = DockerRuntime(
        executor_name=host.name,
        stop_timeout=settings.docker_stop_timeout,
        env=host.env,
        on_cancel_latency=metrics.cancel_latency.observe,
    )
    docker = _docker_options(settings, limits)
    root_cleaner = RootCleaner(
        runtime=runtime,
        docker=docker,
        executor_name=host.name,
        host_label=host.label,
        lock_path=host.lock_path,
        image=settings.cleanup_image,
    )
    job_runtime = kubernetes.runtime if kubernetes else None
    handler = _handler(settings, host, client, runtime, docker, root_cleaner, metrics, job_runtime)
    worker, engine = _worker(settings, client, handler, metrics, host, bool(kubernetes))
    janitor = (
        kubernetes.janitor
        if kubernetes
        else _janitor(settings, host, runtime, worker, root_cleaner)
    )
    totals = janitor.counters
    metrics.watch_janitor(
        lambda: (totals.containers_removed, totals.workspaces_removed, totals.errors)
    )
    log.info(
        "executor starting",
        executorName=host.name,
        queues=settings.queues,
        version=__version__,
        maxJobs=settings.maximum_num_jobs,
        runtime=settings.runtime,
    )
    health = HealthServer(worker.health)
    signals = Signals(worker, asyncio.current_task())
    signals.install(asyncio.get_running_loop())
    # A watchdog kill (SIGABRT) then shows in the journal where every thread was stuck.
    faulthandler.enable()
    notifier = Notifier(environ)
    notifier.notify("READY=1", "STATUS=connecting to the frontend")
    systemd = [
        asyncio.create_task(
            notifier.watchdog(lambda: signals.phase is Phase.CONNECTING or worker.health()[0]),
            name="watchdog",
        ),
        asyncio.create_task(_notify_draining(worker, notifier), name="notify-draining"),
    ]
    try:
        try:
            await worker.connect()
        except asyncio.CancelledError:
            # 128 + signal, the shell's convention for "ended by a signal" (143 for SIGTERM):
            # told apart from a failure (1), so systemd's `SuccessExitStatus=143` makes a stop
            # before the frontend ever answered a clean stop. Sourcegraph's executor exits 1.
            return 128 + signals.stopped_by if signals.stopped_by else 1
        signals.phase = Phase.RUNNING
        notifier.notify(f"STATUS=running: dequeuing from {', '.join(settings.queues)}")
        if settings.health_server_addr:
            port = await health.start(settings.health_server_addr)
            log.info("health server listening", addr=settings.health_server_addr, port=port)
        background = [asyncio.create_task(janitor.run_forever(), name="janitor")]
        if engine is not None:
            await engine.check()  # no job is dequeued before the engine has answered once
            background.append(asyncio.create_task(engine.run_forever(), name="engine-probe"))
        try:
            await worker.run()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
    finally:
        for task in systemd:
            task.cancel()
        await asyncio.gather(*systemd, return_exceptions=True)
        notifier.close()
        await health.close()
        await client.aclose()
        if kubernetes is not None:
            await kubernetes.close()
        lock.release()
    log.info("executor stopped", **worker.counts)
    return 0


async def _notify_draining(worker: Worker, notifier: Notifier) -> None:
    await worker.wait_draining()
    notifier.notify("STOPPING=1", "STATUS=draining: waiting for running jobs")


def _client(
    settings: Settings,
    host: _Host,
    metrics: Metrics,
    limits: JobLimits,
    exporters: ExporterScraper,
) -> QueueClient:
    return QueueClient(
        frontend_url=settings.frontend_url,
        token=settings.token,
        executor_name=host.name,
        queues=settings.queues,
        version=WIRE_VERSION,
        resources={
            "num_cpus": limits.cpus,
            "memory": limits.memory,
            "disk_space": settings.firecracker_disk_space,
        },
        observe=metrics.observe_api,
        telemetry=telemetry(metrics, host.env, exporters.exposition),
    )


def _docker_options(settings: Settings, limits: JobLimits) -> DockerOptions:
    return DockerOptions(
        cpus=limits.cpus,
        memory=limits.memory,
        pids_limit=settings.job_pids_limit,
        add_host_gateway=settings.docker_add_host_gateway,
        additional_mounts=[m for m in settings.docker_additional_mounts.split(";") if m],
        host_mount_path=settings.docker_host_mount_path,
        network=settings.step_network,
    )


def _handler(
    settings: Settings,
    host: _Host,
    client: QueueClient,
    runtime: Runtime,
    docker: DockerOptions,
    root_cleaner: RootCleaner,
    metrics: Metrics,
    job_runtime: JobRuntime | None = None,
) -> JobHandler:
    options = HandlerOptions(
        workspace_root=host.workspace_root,
        executor_name=host.name,
        host_label=host.label,
        frontend_url=settings.frontend_url,
        executor_token=settings.token,
        docker=docker,
        forwarded_env=host.env,
        keep_workspaces=settings.keep_workspaces,
        log_max_bytes=settings.log_entry_max,
        lock_path=host.lock_path,
        docker_auth_config=_auth_config(settings),
        repo_cache=_repo_cache(settings, host),
    )
    return JobHandler(
        runtime=runtime,
        sink=client,
        files=client,
        options=options,
        cli_steps=_batch_runner(runtime, docker, host),
        observe_command=metrics.observe_command,
        root_cleaner=root_cleaner,
        job_runtime=job_runtime,
    )


def _worker(
    settings: Settings,
    client: QueueClient,
    handler: JobHandler,
    metrics: Metrics,
    host: _Host,
    on_kubernetes: bool,
) -> tuple[Worker, EngineProbe | None]:
    options = WorkerOptions(
        max_jobs=settings.maximum_num_jobs,
        poll_interval=settings.queue_poll_interval,
        heartbeat_interval=settings.heartbeat_interval,
        max_runtime=settings.maximum_runtime_per_job,
        num_total_jobs=settings.num_total_jobs,
        max_active_time=settings.max_active_time,
        queue_label="_".join(sorted(settings.queues)),
        secrets=(settings.token,),
    )
    fraction, min_bytes = settings.min_free
    disk = DiskAdmission(host.workspace_root, fraction, min_bytes, metrics.disk_pressure.set)
    # The engine the steps run on, probed unless they run on Kubernetes or a remote engine.
    socket_path = None if on_kubernetes else engine_socket(host.env.get("DOCKER_HOST", ""))
    if socket_path is None:
        return Worker(client, handler, options, metrics, admission=disk), None
    engine = EngineProbe(socket_path, on_change=metrics.docker_engine_up.set)
    admission = lambda: disk() or engine.reason  # noqa: E731
    return Worker(client, handler, options, metrics, admission=admission), engine


def _janitor(
    settings: Settings, host: _Host, runtime: Runtime, worker: Worker, root_cleaner: RootCleaner
) -> Janitor:
    return Janitor(
        runtime=runtime,
        executor_name=host.name,
        host=host.label,
        workspace_root=host.workspace_root,
        live_jobs=lambda: worker.running_ids,
        interval=settings.cleanup_task_interval,
        lock_path=Path(host.lock_path),
        clean_workspaces=not settings.keep_workspaces,
        unowned_grace=unowned_grace(settings.maximum_runtime_per_job),
        remove_workspace=lambda path, job: root_cleaner.remove_workspace(path, job_id=job),
    )


def _batch_runner(runtime: Runtime, docker: DockerOptions, host: _Host) -> CliStepRunner:
    """The batch engine's runner, imported on the first cliStep, not at start-up.

    The engine (spec parsing, templates, the step cache) is a tenth of an idle daemon's
    memory and most of its import time; a daemon that never sees a cliStep never loads it.
    """
    return _LazyBatchRunner(runtime, docker, host)


class _LazyBatchRunner:
    """A `CliStepRunner` that builds `executor.batch.hostrunner.BatchExecRunner` when first used."""

    def __init__(self, runtime: Runtime, docker: DockerOptions, host: _Host) -> None:
        self._args = (runtime, docker, host)
        self._runner: CliStepRunner | None = None

    def _load(self) -> CliStepRunner:
        if self._runner is None:
            from executor.batch.hostrunner import (  # type: ignore[import-not-found,unused-ignore]
                BatchExecRunner,
            )

            runtime, docker, host = self._args
            self._runner = BatchExecRunner(
                runtime=runtime,
                docker=docker,
                executor_name=host.name,
                host_label=host.label,
                lock_path=host.lock_path,
            )
        return self._runner

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
        return await self._load().run_cli_step(
            job, workspace, step, handle, env=env, docker_config_dir=docker_config_dir
        )


def _repo_cache(settings: Settings, host: _Host) -> RepoCache | None:
    size = settings.repo_cache_bytes
    if size <= 0:
        return None
    root = Path(settings.repo_cache_dir or host.workspace_root / DEFAULT_DIR_NAME)
    return RepoCache(root, size, host.env)


def _auth_config(settings: Settings) -> dict[str, object]:
    if not settings.docker_auth_config:
        return {}
    parsed = json.loads(settings.docker_auth_config)
    return parsed if isinstance(parsed, dict) else {}
