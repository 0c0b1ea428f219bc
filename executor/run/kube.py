"""The Kubernetes runtime's parts, built for `executor run` when `settings.runtime` is
`kubernetes` (`executor.run.serve`): the client, the start checks, the runtime and its janitor.

The Kubernetes modules (and with them the kubernetes_asyncio client and its models) are imported
inside `start_kubernetes`, so a Docker daemon never loads them (`tests/test_layout.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from executor.config.settings import Settings
from executor.errors import ConfigError
from executor.runtime import JobRuntime
from executor.runtime.janitor import JanitorCounters

__all__ = ["KubernetesParts", "Sweeper", "start_kubernetes"]

log = structlog.get_logger("executor.run")


class Sweeper(Protocol):
    """A janitor: `counters` and a sweep loop (`runtime.janitor`, `runtime.kubernetes.janitor`)."""

    counters: JanitorCounters

    async def run_forever(self) -> None: ...


@dataclass(frozen=True)
class KubernetesParts:
    runtime: JobRuntime
    janitor: Sweeper
    close: Callable[[], Awaitable[None]]


async def start_kubernetes(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    executor_name: str,
    host_label: str,
    lock_path: str,
    on_cancel_latency: Callable[[float], None],
) -> KubernetesParts:
    """Connect and check the cluster (`ConfigError`, naming the setting, when it cannot be
    used), then build the runtime and its janitor."""
    from executor.runtime.kubernetes.access import start_problems
    from executor.runtime.kubernetes.client import KubeClient
    from executor.runtime.kubernetes.janitor import KubernetesJanitor, janitor_kinds
    from executor.runtime.kubernetes.runner import KubernetesRuntime

    kube = await KubeClient.connect(settings.kubernetes, environ)
    problems = await start_problems(kube)
    if problems:
        await kube.close()
        raise ConfigError(problems)
    runtime = KubernetesRuntime(
        kube,
        settings.kubernetes,
        executor_name=executor_name,
        host=host_label,
        lock_path=lock_path,
        frontend_url=settings.frontend_url,
        queue=settings.queues[0],
        on_cancel_latency=on_cancel_latency,
    )
    janitor = KubernetesJanitor(
        kube,
        executor_name=executor_name,
        host=host_label,
        live_jobs=lambda: set(runtime.live),
        interval=settings.cleanup_task_interval,
        keep_jobs=settings.kubernetes.keep_jobs,
        kinds=janitor_kinds(settings.kubernetes.job_volume_type),
    )
    log.info(
        "kubernetes runtime",
        apiServer=kube.api.configuration.host,
        source=kube.source,
        namespace=kube.namespace,
    )
    return KubernetesParts(runtime, janitor, kube.close)
