"""`KubernetesRuntime`: one job as one pod, from its Secret to the verified end of its pod.

Sourcegraph's `worker/runner/kubernetes.go` `Run`/`Teardown` and `worker/command/kubernetes.go`
`WaitForPodToSucceed`, with what its users missed (`docs/kubernetes.md`):

1. Create the Secret (`TOKEN`, the job files), the PVC for `KUBERNETES_JOB_VOLUME_TYPE=pvc`, and
   the Job (`spec.build_job`). An object of the same name left by an earlier attempt of the same
   job (an executor killed mid-job) is deleted and created again. A namespace that does not exist
   or a verb the service account lacks is a job error that says so.
2. Observe the Job's pod (list, then watch; re-listed whenever a watch ends). Each container
   (`setup-workspace`, then `step-kubernetes-<key>`) gets its log entry when it starts (keys
   `setup.workspace` and `step.kubernetes.<key>`, as Sourcegraph), followed live
   (`follow.follow_container`); the entry's exit code is the container status's.
3. The job ends with the pod: Succeeded, or Failed (the failed step's exit code and reason, e.g.
   `OOMKilled`; or the pod's reason, e.g. `DeadlineExceeded` from `KUBERNETES_JOB_DEADLINE`,
   `Evicted`), or a pod that cannot start (`failures.start_problem`: image errors at once,
   Unschedulable and other waits after `EXECUTOR_KUBERNETES_POD_START_TIMEOUT`).
4. Teardown (entry `teardown.kubernetes.job`), also on cancel (heartbeat cancel, the per-job
   deadline, a second signal), shielded: delete the Job with foreground propagation, wait until
   the Job and its pods are gone, then the Secret and the PVC. `KUBERNETES_KEEP_JOBS=true` keeps
   them, except after a cancel: a cancelled job's pod must stop.

`live` holds the record UIDs of the jobs running here, for the janitor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from executor.config.kubernetes import KubernetesSettings
from executor.errors import JobError, StepFailed
from executor.runtime import EntryOpener, FileFetcher, LogEntry, finish_shielded
from executor.runtime.kubernetes import spec
from executor.runtime.kubernetes.client import ApiException, KubeClient, api_reason
from executor.runtime.kubernetes.failures import (
    container_states,
    current_container,
    failure_of,
    start_problem,
    terminated,
)
from executor.runtime.kubernetes.follow import follow_container
from executor.wire import ZERO_TIME, Job
from executor.workspace.repocache import fetch_flags

__all__ = ["KubernetesRuntime", "PodView"]

_log = structlog.get_logger(__name__)

SETUP = "setup-workspace"
SETUP_KEY = "setup.workspace"
TEARDOWN_KEY = "teardown.kubernetes.job"


class PodView:
    """The latest state of one Job's pod, and a way to wait for the next."""

    def __init__(self) -> None:
        self.pod: dict[str, Any] | None = None
        self.deleted = False
        self._changed = asyncio.Event()

    def set(self, pod: dict[str, Any] | None, *, deleted: bool = False) -> None:
        self.pod, self.deleted = pod, deleted
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> None:
        """Until the next update or `timeout` seconds."""
        event = self._changed
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass

    def container_done(self, name: str) -> bool:
        states = dict(container_states(self.pod or {}))
        return terminated(states.get(name) or {}) is not None


@dataclass
class _Run:
    plan: spec.JobPlan
    created: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False


class KubernetesRuntime:
    """Runs jobs as single pods; satisfies `executor.runtime.JobRuntime`."""

    def __init__(
        self,
        kube: KubeClient,
        settings: KubernetesSettings,
        *,
        executor_name: str,
        host: str,
        lock_path: str,
        frontend_url: str,
        queue: str,
        on_cancel_latency: Callable[[float], None] | None = None,
        gone_timeout: float = 120.0,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.executor_name = executor_name
        self.host = host
        self.lock_path = lock_path
        self.frontend_url = frontend_url.rstrip("/")
        self.queue = queue
        self.on_cancel_latency = on_cancel_latency
        self.gone_timeout = gone_timeout
        #: Record UIDs of the jobs this runtime is running (their objects are not orphans).
        self.live: set[str] = set()
        #: Seconds the last cancel took from the Job's deletion until its pod was gone.
        self.last_cancel_latency: float | None = None

    def plan(
        self, job: Job, files: Sequence[spec.JobFile], scripts: Sequence[tuple[str, str]]
    ) -> spec.JobPlan:
        """The pure description of `job`'s objects (`spec.JobPlan`)."""
        taken: set[str] = set()
        steps = []
        skip_dir: str | None = None  # the directory of the last `.pre` step so far
        for index, step in enumerate(job.docker_steps):
            steps.append(
                spec.StepPlan(
                    key=spec.step_key(step.key, index),
                    raw_key=step.key,
                    container=spec.container_name(step.key, index, taken),
                    image=step.image,
                    script=scripts[index][0],
                    dir=step.dir,
                    env=list(step.env),
                    skip_dir=skip_dir,
                )
            )
            if step.key.endswith(".pre"):
                skip_dir = step.dir
        job_files = list(files)
        job_files += [
            spec.JobFile(f"{spec.SCRIPTS_DIR}/{name}", text.encode()) for name, text in scripts
        ]
        return spec.JobPlan(
            name=spec.job_name(job.queue or self.queue, job.id),
            job_id=job.id,
            record_uid=job.record_uid,
            token=job.token,
            executor_name=self.executor_name,
            host=self.host,
            lock_path=self.lock_path,
            clone_url=f"{self.frontend_url}/.executors/git/{job.repository_name}",
            commit=job.commit if job.repository_name else "",
            repository_directory=job.repository_directory,
            fetch_flags=fetch_flags(job),
            sparse_checkout=list(job.sparse_checkout),
            steps=steps,
            files=job_files,
        )

    async def run_job(
        self,
        job: Job,
        files: FileFetcher,
        scripts: Sequence[tuple[str, str]],
        logger: EntryOpener,
    ) -> None:
        if not job.token:
            raise JobError("the Kubernetes runtime needs a job token (the frontend sent none)")
        contents = []
        for path, item in job.files.items():
            content = item.content
            if item.bucket and item.key:
                content = await files.get_file(job, item.bucket, item.key)
            modified = None if item.modified_at == ZERO_TIME else item.modified_at.timestamp()
            contents.append(spec.JobFile(path, content, modified))
        try:
            plan = self.plan(job, contents, scripts)
            secret = spec.build_secret(plan)
            manifest = spec.build_job(plan, self.settings)
        except ValueError as err:
            raise JobError(str(err)) from None
        run = _Run(plan)
        self.live.add(job.record_uid)
        try:
            await self._create(run, "Secret", secret)
            if self.settings.job_volume_type == "pvc":
                await self._create(
                    run, "PersistentVolumeClaim", spec.build_pvc(plan, self.settings)
                )
            await self._create(run, "Job", manifest)
            await self._follow(plan, logger)
        except asyncio.CancelledError:
            run.cancelled = True
            raise
        finally:
            await finish_shielded(
                self._teardown(run, logger),
                on_error=lambda: _log.exception("kubernetes teardown failed"),
            )
            self.live.discard(job.record_uid)

    # --- creating ----------------------------------------------------------------------------

    async def _create(self, run: _Run, kind: str, body: dict[str, Any]) -> None:
        name = str(body["metadata"]["name"])
        for attempt in (1, 2):
            try:
                await self.kube.create(kind, body)
                run.created.append((kind, name))
                return
            except ApiException as err:
                if err.status == 409 and attempt == 1:
                    # Left by an earlier attempt of this job (its executor died): replace it.
                    _log.warning("replacing a leftover object", kind=kind, name=name)
                    await self.kube.delete(kind, name)
                    await self._wait_gone(kind, name, plan_name=run.plan.name)
                    continue
                raise JobError(self._create_error(kind, name, err)) from None

    def _create_error(self, kind: str, name: str, err: ApiException) -> str:
        ns = self.kube.namespace
        if err.status == 404:
            return (
                f"creating {kind} {name}: namespace {ns!r} does not exist "
                "(EXECUTOR_KUBERNETES_NAMESPACE)"
            )
        if err.status == 403:
            return f"creating {kind} {name} in namespace {ns!r}: forbidden: {api_reason(err)}"
        return f"creating {kind} {name}: {api_reason(err)}"

    # --- following the pod ------------------------------------------------------------------

    async def _follow(self, plan: spec.JobPlan, logger: EntryOpener) -> None:
        view = PodView()
        observer = asyncio.create_task(self._observe(plan.name, view))
        keys = {SETUP: SETUP_KEY, **{s.container: s.key for s in plan.steps}}
        commands = {
            s.container: ["/bin/sh", f"{spec.JOB_MOUNT_PATH}/{spec.SCRIPTS_DIR}/{s.script}"]
            for s in plan.steps
        }
        order = [SETUP, *(s.container for s in plan.steps), "main"]
        entries: dict[str, tuple[LogEntry, asyncio.Task[None]]] = {}
        finalized: set[str] = set()
        timeout = self.settings.pod_start_timeout
        first_seen = time.monotonic()
        current: str | None = None
        current_since = first_seen
        try:
            while True:
                await view.wait(1.0)
                pod, now = view.pod, time.monotonic()
                if pod is None:
                    if now - first_seen > timeout:
                        raise JobError(f"no pod was created for Job {plan.name} in {int(timeout)}s")
                    continue
                pod_name = str(pod["metadata"]["name"])
                for name, state in container_states(pod):
                    if name not in keys:
                        continue
                    if name not in entries and ("running" in state or "terminated" in state):
                        handle = logger.open(keys[name], commands.get(name))
                        task = asyncio.create_task(self._tail(pod_name, name, handle, view))
                        entries[name] = (handle, task)
                    end = terminated(state)
                    follower = entries.get(name)
                    if end and follower and follower[1].done() and name not in finalized:
                        follower[0].finalize(end.exit_code)
                        finalized.add(name)
                now_current = current_container(pod, order)
                if now_current != current:
                    current, current_since = now_current, now
                phase = (pod.get("status") or {}).get("phase")
                if phase in ("Succeeded", "Failed"):
                    await self._finish_entries(pod, entries, finalized)
                    if phase == "Succeeded":
                        return
                    self._raise_failure(plan, pod, order, keys)
                if view.deleted or (pod.get("metadata") or {}).get("deletionTimestamp"):
                    if not (pod.get("spec") or {}).get("nodeName"):
                        raise JobError("deleted by scheduler: pod could not be scheduled")
                    raise JobError(f"pod {pod_name} was deleted before the job ended")
                problem = start_problem(
                    pod,
                    current=current,
                    current_for=now - current_since,
                    pending_for=now - first_seen,
                    timeout=timeout,
                )
                if problem is not None:
                    raise JobError(problem)
        finally:
            observer.cancel()
            for _, task in entries.values():
                task.cancel()
            await asyncio.gather(
                observer, *(t for _, t in entries.values()), return_exceptions=True
            )

    async def _finish_entries(
        self,
        pod: dict[str, Any],
        entries: dict[str, tuple[LogEntry, asyncio.Task[None]]],
        finalized: set[str],
    ) -> None:
        """Let every follower read to the end (bounded), then record the exit codes."""
        tasks = [task for _, task in entries.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=30.0)
        states = dict(container_states(pod))
        for name, (handle, _) in entries.items():
            end = terminated(states.get(name) or {})
            if end is not None and name not in finalized:
                handle.finalize(end.exit_code)
                finalized.add(name)

    def _raise_failure(
        self, plan: spec.JobPlan, pod: dict[str, Any], order: list[str], keys: dict[str, str]
    ) -> None:
        failure = failure_of(pod, order)
        status = pod.get("status") or {}
        if status.get("reason"):  # the pod itself: DeadlineExceeded, Evicted, …
            detail = f"{status.get('reason')}: {status.get('message', '')}".rstrip(": ")
            if failure.container:
                detail += f" (while {keys.get(failure.container, failure.container)} ran)"
            raise JobError(f"job {plan.name} failed: {detail}")
        if failure.container:
            key = keys.get(failure.container, failure.container)
            why = f" ({failure.reason})" if failure.reason not in ("", "Error") else ""
            if failure.exit_code == 137 and failure.reason != "OOMKilled":
                # Some kernels and engines (cgroup v1 in a VM) never report OOMKilled.
                limit = self.settings.resource_limit_memory
                why = f" (SIGKILL: out of memory? the memory limit is {limit})"
            raise StepFailed(
                f'running command "{key}": command failed with exit code {failure.exit_code}{why}',
                exit_code=failure.exit_code,
                step_key=key,
            )
        raise JobError(f"job {plan.name} failed: {failure.reason}: {failure.message}")

    async def _tail(self, pod: str, container: str, sink: LogEntry, view: PodView) -> None:
        await follow_container(
            lambda since: self.kube.open_log(pod, container, since),
            sink,
            terminated=lambda: view.container_done(container),
            changed=view.wait,
        )

    async def _observe(self, job_name: str, view: PodView) -> None:
        """Keep `view` up to date: list the Job's pods, then watch them; again when it ends."""
        serialize = self.kube.api.sanitize_for_serialization
        while True:
            try:
                pods, version = await self.kube.job_pods(job_name)
                if pods:
                    view.set(serialize(pods[-1]))
                async for event in self.kube.watch_job_pods(job_name, version):
                    kind = event.get("type")
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        raw = event.get("raw_object")
                        pod = raw if isinstance(raw, dict) else serialize(event.get("object"))
                        view.set(pod, deleted=kind == "DELETED")
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - a watch may end in many ways: re-list
                _log.info("pod watch ended; listing again", job=job_name, error=api_reason(err))
                await asyncio.sleep(1.0)

    # --- teardown -----------------------------------------------------------------------------

    async def _teardown(self, run: _Run, logger: EntryOpener) -> None:
        if not run.created:
            return
        handle = logger.open(TEARDOWN_KEY, None)
        exit_code = 0
        if self.settings.keep_jobs and not run.cancelled:
            handle.write_text("Keeping the Job, Secret and PVC as per KUBERNETES_KEEP_JOBS\n")
            handle.finalize(0)
            return
        started = time.monotonic()
        # The Job first (its pod goes with it, foreground), then what the pod used.
        for kind, name in sorted(run.created, key=lambda item: item[0] != "Job"):
            try:
                await self.kube.delete(kind, name)
                if kind == "Job":
                    await self._wait_gone(kind, name, plan_name=run.plan.name)
                handle.write_text(f"Deleted {kind} {name}\n")
            except (ApiException, OSError, TimeoutError, JobError) as err:
                handle.write_text(f"Failed to delete {kind} {name}: {api_reason(err)}\n")
                exit_code = 1
        if run.cancelled:
            latency = time.monotonic() - started
            self.last_cancel_latency = latency
            if self.on_cancel_latency is not None:
                self.on_cancel_latency(latency)
        handle.finalize(exit_code)

    async def _wait_gone(self, kind: str, name: str, *, plan_name: str) -> None:
        """Until the object (and, for a Job, its pods) no longer exists; `JobError` if it stays."""
        deadline = time.monotonic() + self.gone_timeout
        while time.monotonic() < deadline:
            present = await self.kube.exists(kind, name)
            if kind == "Job" and not present:
                pods, _ = await self.kube.job_pods(plan_name)
                present = bool(pods)
            if not present:
                return
            await asyncio.sleep(0.25)
        raise JobError(f"{kind} {name} still exists {int(self.gone_timeout)}s after deletion")
