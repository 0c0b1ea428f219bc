"""The composition root: `executor run | validate | batch exec | sandbox …`.

Loads settings once, configures logging, builds every object and wires them together; installs
the signal handlers (first SIGTERM/SIGINT drains, a second cancels running jobs); runs the
worker, the janitor and the metrics server side by side; exits when the worker returns.
No logic of its own beyond wiring. Exit codes: 0 after a clean stop or drain, 1 on a runtime
failure (or a signal while still connecting, as Sourcegraph does), 2 on bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import structlog

from executor import __version__
from executor.config import Settings, help_text, load_settings
from executor.errors import ApiError, ConfigError
from executor.handler import CliStepRunner
from executor.runtime import DockerOptions, Runtime

__all__ = ["WIRE_VERSION", "main"]

log = structlog.get_logger("executor.cli")

# The version we announce on the wire. The frontend sends v2 job payloads (base64 files,
# docker auth) and `-binaryDiffs` only to executors >= 4.3.0, so we speak as 5.3.0 and carry
# our own version as semver build metadata, which version comparisons ignore.
WIRE_VERSION = f"5.3.0+executor-py.{__version__}"

FORWARDED_ENV = ("HOME", "PATH", "USER", "DOCKER_HOST")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `executor` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["sandbox"]:
        from executor.sandbox.cli import main as sandbox_main

        sys.exit(sandbox_main(args[1:]))
    if args[:2] == ["batch", "exec"]:
        from executor.batch.cli import (  # type: ignore[import-not-found,unused-ignore]
            main as batch_main,
        )

        sys.exit(batch_main(args[2:], os.environ))
    parser = _parser()
    ns = parser.parse_args(args or ["run"])
    if ns.version:
        print(f"executor {__version__} (wire version {WIRE_VERSION})")
        return
    if ns.command == "validate":
        sys.exit(_validate(os.environ, config_only=ns.config_only))
    sys.exit(_run(os.environ))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="executor",
        description="Runs Sourcegraph executor jobs (batch changes, code intel) in Docker.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser(
        "run",
        help="run the daemon (default)",
        description="Poll the frontend for jobs and run them. Configured by the environment.",
        epilog=help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate = sub.add_parser("validate", help="check config, git, Docker and the frontend")
    validate.add_argument(
        "--config-only", action="store_true", help="only validate the environment variables"
    )
    sub.add_parser("sandbox", help="the reference frontend (see `executor sandbox --help`)")
    sub.add_parser("batch", help="`executor batch exec …`: the batch spec engine")
    parser.set_defaults(command="run")
    return parser


def _load(environ: Mapping[str, str]) -> Settings | None:
    try:
        return load_settings(environ)
    except ConfigError as err:
        print(f"executor: invalid configuration: {err}", file=sys.stderr)
        return None


# --- validate -------------------------------------------------------------------------------


def _validate(environ: Mapping[str, str], *, config_only: bool) -> int:
    settings = _load(environ)
    if settings is None:
        return 2
    if config_only:
        print("Configuration is valid.")
        return 0
    failures: list[str] = []
    git = _tool_version(["git", "version"], environ)
    match = re.search(r"(\d+)\.(\d+)", git or "")
    if not match:
        failures.append("git is not installed or not on PATH")
    elif (int(match.group(1)), int(match.group(2))) < (2, 26):
        failures.append(f"git >= 2.26 is required, found {match.group(0)}")
    if not _tool_version(["docker", "version", "-f", "{{.Server.Version}}"], environ):
        failures.append(
            "the Docker engine is not reachable (is dockerd running and is this "
            "user allowed to use its socket?)"
        )
    failures += asyncio.run(_check_frontend(settings))
    if failures:
        for failure in failures:
            print(f"✗ {failure}")
        return 1
    print("All checks passed!")
    return 0


async def _check_frontend(settings: Settings) -> list[str]:
    from executor.apiclient import QueueClient
    from executor.baseclient import RetryPolicy

    client = QueueClient(
        frontend_url=settings.frontend_url,
        token=settings.token,
        executor_name=settings.executor_name,
        queues=settings.queues,
        version=WIRE_VERSION,
        retry=RetryPolicy(attempts=1),
        timeout=10.0,
    )
    try:
        await client.check_auth()
    except ApiError as err:
        return [f"frontend {settings.frontend_url}: {err}"]
    finally:
        await client.aclose()
    return []


def _tool_version(argv: list[str], environ: Mapping[str, str]) -> str:
    env = {k: environ[k] for k in FORWARDED_ENV if k in environ}
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


# --- run ------------------------------------------------------------------------------------


def _run(environ: Mapping[str, str]) -> int:
    settings = _load(environ)
    if settings is None:
        return 2
    from executor.logsetup import add_secret, configure_logging

    configure_logging(settings.log_format)
    add_secret(settings.token)
    try:
        return asyncio.run(_serve(settings, environ))
    except ApiError as err:
        log.error("executor stopped", error=str(err))
        return 1


async def _serve(settings: Settings, environ: Mapping[str, str]) -> int:
    from executor.apiclient import QueueClient
    from executor.handler import HandlerOptions, JobHandler
    from executor.janitor import Janitor, hold_liveness_lock
    from executor.metrics import Metrics
    from executor.rootclean import RootCleaner
    from executor.runtime import DockerRuntime
    from executor.runtime_argv import DockerOptions
    from executor.worker import Worker, WorkerOptions

    forwarded = {k: environ[k] for k in FORWARDED_ENV if k in environ}
    workspace_root = Path(tempfile.gettempdir())
    name, host = settings.executor_name, socket.gethostname()
    metrics = Metrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_host, settings.metrics_port)
    telemetry = _telemetry(metrics, forwarded)
    client = QueueClient(
        frontend_url=settings.frontend_url,
        token=settings.token,
        executor_name=name,
        queues=settings.queues,
        version=WIRE_VERSION,
        resources={
            "num_cpus": settings.job_num_cpus,
            "memory": settings.job_memory,
            "disk_space": settings.firecracker_disk_space,
        },
        observe=metrics.observe_api,
        telemetry=telemetry,
    )
    runtime = DockerRuntime(
        executor_name=name,
        stop_timeout=settings.docker_stop_timeout,
        env=forwarded,
        on_cancel_latency=metrics.cancel_latency.observe,
    )
    docker = DockerOptions(
        cpus=settings.job_num_cpus,
        memory=settings.job_memory,
        pids_limit=settings.job_pids_limit,
        add_host_gateway=settings.docker_add_host_gateway,
        additional_mounts=[m for m in settings.docker_additional_mounts.split(";") if m],
        host_mount_path=settings.docker_host_mount_path,
    )
    lock = hold_liveness_lock(workspace_root, name)
    root_cleaner = RootCleaner(
        runtime=runtime,
        docker=docker,
        executor_name=name,
        host_label=host,
        lock_path=str(lock.path),
        image=settings.cleanup_image,
    )
    options = HandlerOptions(
        workspace_root=workspace_root,
        executor_name=name,
        host_label=host,
        frontend_url=settings.frontend_url,
        executor_token=settings.token,
        docker=docker,
        forwarded_env=forwarded,
        keep_workspaces=settings.keep_workspaces,
        log_max_bytes=settings.log_entry_max,
        lock_path=str(lock.path),
        docker_auth_config=_auth_config(settings),
    )
    handler = JobHandler(
        runtime=runtime,
        sink=client,
        files=client,
        options=options,
        cli_steps=_batch_runner(runtime, docker, name, host, str(lock.path)),
        observe_command=metrics.observe_command,
        root_remover=root_cleaner,
    )
    worker = Worker(
        client,
        handler,
        WorkerOptions(
            max_jobs=settings.maximum_num_jobs,
            poll_interval=settings.queue_poll_interval,
            heartbeat_interval=settings.heartbeat_interval,
            max_runtime=settings.maximum_runtime_per_job,
            num_total_jobs=settings.num_total_jobs,
            max_active_time=settings.max_active_time,
            queue_label="_".join(sorted(settings.queues)),
        ),
        metrics,
    )
    janitor = Janitor(
        runtime=runtime,
        executor_name=name,
        host=host,
        workspace_root=workspace_root,
        live_jobs=lambda: worker.running_ids,
        interval=settings.cleanup_task_interval,
        lock_path=lock.path,
        clean_workspaces=not settings.keep_workspaces,
        # A step may delete the owner marker; never call such a workspace stale mid-job.
        # Runtime 0 means no deadline: then wait a day before calling it abandoned.
        unowned_grace=max(3600.0, settings.maximum_runtime_per_job + 600.0)
        if settings.maximum_runtime_per_job > 0
        else 86400.0,
        remove_tree=lambda path, job: root_cleaner.remove_tree(path, job_id=job),
    )
    totals = janitor.counters
    metrics.watch_janitor(
        lambda: (totals.containers_removed, totals.workspaces_removed, totals.errors)
    )
    log.info(
        "executor starting",
        executorName=name,
        queues=settings.queues,
        version=__version__,
        maxJobs=settings.maximum_num_jobs,
    )
    loop = asyncio.get_running_loop()
    connecting = asyncio.current_task()
    phase = {"connected": False, "signals": 0}

    def on_signal(signum: int) -> None:
        phase["signals"] += 1
        if not phase["connected"]:
            log.warning("signal while connecting; exiting", signal=signum)
            if connecting is not None:
                connecting.cancel()
            return
        if phase["signals"] == 1:
            log.info("signal received: draining (send again to cancel running jobs)", signal=signum)
            worker.drain()
        else:
            log.warning("second signal: cancelling running jobs", signal=signum)
            worker.interrupt()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        try:
            await worker.connect()
        except asyncio.CancelledError:
            return 1
        phase["connected"] = True
        janitor_task = asyncio.create_task(janitor.run_forever(), name="janitor")
        try:
            await worker.run()
        finally:
            janitor_task.cancel()
            await asyncio.gather(janitor_task, return_exceptions=True)
    finally:
        await client.aclose()
        lock.release()
    log.info("executor stopped", **worker.counts)
    return 0


def _batch_runner(
    runtime: Runtime, docker: DockerOptions, name: str, host: str, lock_path: str
) -> CliStepRunner | None:
    try:
        from executor.batch.hostrunner import (  # type: ignore[import-not-found,unused-ignore]
            BatchExecRunner,
        )
    except ImportError:  # the engine is optional at this layer: jobs then fail clearly
        return None
    runner: CliStepRunner = BatchExecRunner(
        runtime=runtime,
        docker=docker,
        executor_name=name,
        host_label=host,
        lock_path=lock_path,
    )
    return runner


def _auth_config(settings: Settings) -> dict[str, object]:
    import json

    if not settings.docker_auth_config:
        return {}
    parsed = json.loads(settings.docker_auth_config)
    return parsed if isinstance(parsed, dict) else {}


def _telemetry(metrics: object, forwarded: Mapping[str, str]):  # type: ignore[no-untyped-def]
    from executor.metrics import Metrics

    assert isinstance(metrics, Metrics)
    git = _tool_version(["git", "version"], forwarded).removeprefix("git version ")
    docker = _tool_version(["docker", "version", "-f", "{{.Server.Version}}"], forwarded)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    fixed = {
        "os": sys.platform if sys.platform != "linux" else "linux",
        "architecture": arch,
        "docker_version": docker,
        "executor_version": WIRE_VERSION,
        "git_version": git,
    }

    def collect() -> dict[str, str]:
        return {**fixed, "prometheus_metrics": metrics.exposition()}

    return collect
