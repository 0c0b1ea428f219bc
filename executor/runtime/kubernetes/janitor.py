"""The Kubernetes janitor: delete Jobs, Secrets and PVCs that no running job owns.

Sourcegraph deletes a job's objects in its teardown only; an executor killed mid-job leaves
them (and a pod that may run on) for good (spec §2.5). This janitor runs at start-up and every
`EXECUTOR_CLEANUP_TASK_INTERVAL`, over the objects labelled
`app.kubernetes.io/managed-by=sourcegraph-executor` in the namespace. An object is an orphan when

* its annotation names this executor and its job (label) is not running here, or
* it names another executor on this host (annotation `…/host`) whose liveness lock can be
  taken (`executor.runtime.janitor.executor_alive`: that daemon is dead, however it died).

Objects of executors on other hosts are never touched (their own janitor sweeps them). Jobs are
deleted with foreground propagation, so their pods go too. `KUBERNETES_KEEP_JOBS=true` turns the
janitor off (kept objects are for debugging). Listing comes before reading the live set, so a
job that is live when its objects were listed is still in it (as `executor.runtime.janitor`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from executor.runtime.janitor import JanitorCounters, executor_alive
from executor.runtime.kubernetes.client import KubeClient, api_reason
from executor.runtime.kubernetes.spec import (
    ANNOTATION_EXECUTOR,
    ANNOTATION_HOST,
    ANNOTATION_LOCK,
    LABEL_JOB,
    LABEL_MANAGED_BY,
    MANAGED_BY,
)

__all__ = ["KINDS", "KubernetesJanitor", "is_orphan", "janitor_kinds"]

KINDS = ("Job", "Secret", "PersistentVolumeClaim")


def janitor_kinds(volume_type: str) -> tuple[str, ...]:
    """What the janitor lists: PVCs only with `KUBERNETES_JOB_VOLUME_TYPE=pvc` (RBAC §1)."""
    return KINDS if volume_type == "pvc" else ("Job", "Secret")


_log = structlog.get_logger(__name__)


def is_orphan(
    annotations: Mapping[str, str],
    labels: Mapping[str, str],
    *,
    executor_name: str,
    host: str,
    live: set[str],
    alive: Callable[[str], bool] = executor_alive,
) -> bool:
    """Whether an object with these annotations and labels belongs to no running job."""
    owner = annotations.get(ANNOTATION_EXECUTOR, "")
    if owner == executor_name:
        return labels.get(LABEL_JOB, "") not in live
    if not owner or annotations.get(ANNOTATION_HOST) != host:
        return False
    lock = annotations.get(ANNOTATION_LOCK, "")
    return bool(lock) and not alive(lock)


class KubernetesJanitor:
    """Sweeps the namespace; `counters.containers_removed` counts deleted objects."""

    def __init__(
        self,
        kube: KubeClient,
        *,
        executor_name: str,
        host: str,
        live_jobs: Callable[[], Iterable[int | str]],
        interval: float = 60.0,
        keep_jobs: bool = False,
        counters: JanitorCounters | None = None,
        kinds: tuple[str, ...] = KINDS,
    ) -> None:
        self.kube = kube
        self.executor_name = executor_name
        self.host = host
        self.live_jobs = live_jobs
        self.interval = interval
        self.keep_jobs = keep_jobs
        # PVCs only with the pvc volume type: the Role then has no PVC rule, and listing them
        # would fail every sweep (leaving the Jobs and Secrets unswept too).
        self.kinds = kinds
        self.counters = counters if counters is not None else JanitorCounters()

    async def run_forever(self) -> None:
        """Sweep now and then every `interval` seconds until cancelled; errors never stop it."""
        while True:
            try:
                await self.run_once()
            except Exception as err:  # noqa: BLE001 - counted and logged; the next sweep retries
                self.counters.errors += 1
                _log.warning("kubernetes janitor sweep failed", error=api_reason(err))
            await asyncio.sleep(self.interval)

    async def run_once(self) -> list[tuple[str, str]]:
        """One sweep; the `(kind, name)` of every object deleted."""
        if self.keep_jobs:
            return []
        selector = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
        found: list[tuple[str, Any]] = []
        for kind in self.kinds:
            found += [(kind, meta) for meta in await self.kube.list_metadata(kind, selector)]
        live = {str(job) for job in self.live_jobs()}
        deleted: list[tuple[str, str]] = []
        for kind, meta in found:
            if meta.deletion_timestamp is not None and kind != "Job":
                continue
            orphan = is_orphan(
                dict(meta.annotations or {}),
                dict(meta.labels or {}),
                executor_name=self.executor_name,
                host=self.host,
                live=live,
            )
            if not orphan:
                continue
            try:
                if await self.kube.delete(kind, str(meta.name)):
                    deleted.append((kind, str(meta.name)))
                    self.counters.containers_removed += 1
            except Exception as err:  # noqa: BLE001 - counted; the next sweep retries
                self.counters.errors += 1
                _log.warning("cannot delete", kind=kind, name=meta.name, error=api_reason(err))
        if deleted:
            _log.info("kubernetes janitor deleted orphans", objects=[n for _, n in deleted])
        return deleted
