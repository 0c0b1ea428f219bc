"""The poll loop: dequeue, run up to N handlers, heartbeat, cancel, drain, mark.

Modelled on Sourcegraph's generic `internal/workerutil/worker.go`: the loop is blind to Docker,
git, HTTP and what a job means.
It drives a `Store` (the queue API client satisfies it) and a `Handler` (one job's work).

- Dequeue every `poll_interval` (with ±20 % jitter so a fleet does not poll in lockstep), at
  once again after a job was dequeued, only while a slot is free.
- Heartbeat every `heartbeat_interval` for the whole life of the loop, even when idle. IDs the
  server no longer knows leave the heartbeat set (the job keeps running, as in Sourcegraph);
  `cancelIds` cancel their job, which is then marked *failed* (the server stores `canceled`).
- Each job has a deadline (`max_runtime`; 0 means none, as in Sourcegraph): past it the job is
  cancelled and marked *errored* with `job exceeded maximum execution time of 30m0s`.
- A dequeued payload that does not decode but names its job (`wire.MalformedJob`) is marked
  *failed* at once with `malformed job payload: <field>: <problem>`, without running anything:
  retrying cannot fix it. (Sourcegraph's executor only logs the dequeue error, and the job sits
  in `processing` until the frontend's resetter gives up on it.)
- Outcome: non-retryable errors and heartbeat cancels → markFailed; any other error (including
  the deadline and a hard stop) → markErrored; success → markComplete.
- `drain()` stops dequeuing and lets running jobs finish (first signal); `interrupt()` cancels
  them too (second signal). `num_total_jobs` / `max_active_time` drain by themselves, after
  which `run()` returns normally and the process exits 0.

Cancellation of a job cancels the handler's task; the handler's cleanup (container stop,
workspace removal, final log flush) runs in its own `finally` blocks before the mark is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from executor.config.settings import format_go_duration
from executor.errors import ApiError, ApiRejected
from executor.metrics import Metrics
from executor.wire import Job, MalformedJob

__all__ = ["Handler", "Store", "Worker", "WorkerOptions"]

log = structlog.get_logger("executor.worker.loop")


class Store(Protocol):
    """What the loop needs from the frontend (implemented by `apiclient.QueueClient`)."""

    async def ping(self) -> None: ...

    async def dequeue(self) -> Job | None:
        """The next job, or None; raises `MalformedJob` for a payload that does not decode but
        identifies its job, `ApiError` for anything else that went wrong."""
        ...

    async def heartbeat(self, job_uids: list[str]) -> tuple[list[str], list[str]]: ...
    async def mark_complete(self, job: Job) -> None: ...
    async def mark_errored(self, job: Job, message: str) -> None: ...
    async def mark_failed(self, job: Job, message: str) -> None: ...


class Handler(Protocol):
    """Runs one job to its end; raising means the job did not succeed."""

    async def handle(self, job: Job) -> None: ...


@dataclass(frozen=True)
class WorkerOptions:
    """Loop knobs; defaults are Sourcegraph's."""

    max_jobs: int = 1
    poll_interval: float = 1.0
    heartbeat_interval: float = 5.0
    max_runtime: float = 1800.0
    num_total_jobs: int = 0
    max_active_time: float = 0.0
    queue_label: str = "batches"
    ping_interval: float = 1.0


@dataclass
class _Run:
    job: Job
    started: float
    outer: asyncio.Task[None] | None = None  # runs the handler, then marks the job
    inner: asyncio.Task[None] | None = None  # the handler itself: what a cancel cancels
    reason: str = ""  # why it was cancelled: "", "heartbeat", "deadline", "interrupt"
    heartbeated: bool = True

    def cancel(self, reason: str) -> None:
        if self.reason:
            return
        self.reason = reason
        if self.inner is not None and not self.inner.done():
            self.inner.cancel()


class Worker:
    """One executor's loop over a Store and a Handler."""

    def __init__(
        self,
        store: Store,
        handler: Handler,
        options: WorkerOptions,
        metrics: Metrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._handler = handler
        self._opts = options
        self._metrics = metrics
        self._clock = clock
        self._runs: dict[str, _Run] = {}
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(max(1, options.max_jobs))
        self._dequeues = 0
        self.counts = {"completed": 0, "errored": 0, "failed": 0}

    @property
    def running_ids(self) -> list[str]:
        """Record UIDs of the jobs this loop is running (the janitor's live set)."""
        return list(self._runs)

    def drain(self) -> None:
        """Stop dequeuing; running jobs finish; heartbeats go on until they have."""
        if not self._stopping.is_set():
            log.info("draining: no new jobs will be dequeued", running=len(self._runs))
        self._stopping.set()

    def interrupt(self) -> None:
        """Drain, and cancel every running job (they are marked errored)."""
        self.drain()
        for run in list(self._runs.values()):
            run.cancel("interrupt")

    async def connect(self) -> None:
        """Ping the frontend until it answers (§2.7); quiet about refusals for a minute."""
        started = self._clock()
        while True:
            try:
                await self._store.ping()
                log.info("connected to the frontend")
                return
            except ApiError as err:
                if isinstance(err, ApiRejected):
                    raise
                if self._clock() - started > 60:
                    log.warning("frontend not reachable yet", error=str(err))
            await asyncio.sleep(self._opts.ping_interval)

    async def run(self) -> None:
        """Poll until drained or a limit is reached, then wait for running jobs."""
        heartbeats = asyncio.create_task(self._heartbeat_forever(), name="heartbeat")
        try:
            await self._dequeue_loop()
            while self._runs:
                await asyncio.wait([r.outer for r in self._runs.values() if r.outer])
        finally:
            heartbeats.cancel()
            await asyncio.gather(heartbeats, return_exceptions=True)
        log.info("worker stopped", **self.counts)

    # --- dequeue --------------------------------------------------------------------------

    def _limit_reached(self, started: float) -> bool:
        opts = self._opts
        if opts.num_total_jobs > 0 and self._dequeues >= opts.num_total_jobs:
            log.info("reached EXECUTOR_NUM_TOTAL_JOBS; draining", jobs=self._dequeues)
            return True
        if opts.max_active_time > 0 and self._clock() - started >= opts.max_active_time:
            log.info("reached EXECUTOR_MAX_ACTIVE_TIME; draining")
            return True
        return False

    async def _dequeue_loop(self) -> None:
        started = self._clock()
        while not self._stopping.is_set():
            if self._limit_reached(started):
                self._stopping.set()
                break
            if not await self._acquire_slot():
                break
            got_job = False
            try:
                job = await self._store.dequeue()
            except MalformedJob as err:
                await self._refuse(err)
                job = None
            except ApiError as err:
                log.warning("dequeue failed", error=str(err))
                job = None
            if job is not None:
                got_job = self._start(job)
            if not got_job:
                self._slots.release()
                await self._sleep(self._opts.poll_interval * random.uniform(0.8, 1.2))

    async def _acquire_slot(self) -> bool:
        acquire = asyncio.ensure_future(self._slots.acquire())
        stop = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait([acquire, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if self._stopping.is_set():
            if acquire.done() and not acquire.cancelled():
                self._slots.release()
            else:
                acquire.cancel()
            return False
        return True

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _refuse(self, err: MalformedJob) -> None:
        """Mark a job whose payload does not decode failed (non-retryable), naming the field."""
        job = err.job
        with structlog.contextvars.bound_contextvars(jobID=job.id, queue=job.queue or None):
            message = f"malformed job payload: {err.reason}"
            # Worded as the undecodable-answer warning ("dequeue failed") words its error.
            log.error("job payload is malformed; marking it failed", error=f"Dequeue: {message}")
            await self._mark(job, "failed", message)
        self.counts["failed"] += 1
        if self._metrics is not None:
            self._metrics.observe_job(self._opts.queue_label, 0.0, "failed")

    def _start(self, job: Job) -> bool:
        uid = job.record_uid
        if uid in self._runs:
            log.error("job already exists", jobID=job.id)
            return False
        self._dequeues += 1
        run = _Run(job=job, started=self._clock())
        self._runs[uid] = run
        with structlog.contextvars.bound_contextvars(jobID=job.id, queue=job.queue or None):
            run.outer = asyncio.create_task(self._run_job(run), name=f"job-{uid}")
        if self._metrics is not None:
            self._metrics.handlers.labels(self._opts.queue_label).set(len(self._runs))
        return True

    # --- one job --------------------------------------------------------------------------

    async def _run_job(self, run: _Run) -> None:
        job = run.job
        log.info("job dequeued", repositoryName=job.repository_name or None)
        deadline = (
            asyncio.get_running_loop().call_later(self._opts.max_runtime, run.cancel, "deadline")
            if self._opts.max_runtime > 0
            else None
        )
        inner = asyncio.create_task(self._handler.handle(job), name=f"handle-{job.id}")
        run.inner = inner
        if run.reason:  # cancelled before the handler started
            inner.cancel()
        outcome, message = "completed", ""
        try:
            await inner
        except asyncio.CancelledError:
            if not inner.cancelled():
                raise  # this wrapper itself was cancelled: let it go
            outcome, message = self._cancel_outcome(run)
        except Exception as err:  # noqa: BLE001 - every handler error becomes a mark
            message = str(err) or type(err).__name__
            outcome = "errored"
        finally:
            if deadline is not None:
                deadline.cancel()
        await self._mark(job, outcome, message)
        self._finish(run, outcome)

    def _cancel_outcome(self, run: _Run) -> tuple[str, str]:
        if run.reason == "heartbeat":
            return "failed", "job was canceled"
        if run.reason == "deadline":
            limit = format_go_duration(self._opts.max_runtime)
            return "errored", f"job exceeded maximum execution time of {limit}"
        return "errored", "job interrupted: the executor was stopped while the job ran"

    async def _mark(self, job: Job, outcome: str, message: str) -> None:
        try:
            if outcome == "completed":
                await self._store.mark_complete(job)
            elif outcome == "failed":
                await self._store.mark_failed(job, message)
            else:
                await self._store.mark_errored(job, message)
            log.info("job marked", outcome=outcome, errorMessage=message or None)
        except ApiError as err:
            log.error("failed to mark job", outcome=outcome, error=str(err))

    def _finish(self, run: _Run, outcome: str) -> None:
        self._runs.pop(run.job.record_uid, None)
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self._slots.release()
        if self._metrics is not None:
            elapsed = self._clock() - run.started
            self._metrics.observe_job(self._opts.queue_label, elapsed, outcome)
            self._metrics.handlers.labels(self._opts.queue_label).set(len(self._runs))

    # --- heartbeat ------------------------------------------------------------------------

    async def _heartbeat_forever(self) -> None:
        while True:
            await self._heartbeat_once()
            await asyncio.sleep(self._opts.heartbeat_interval)

    async def _heartbeat_once(self) -> None:
        sent = [uid for uid, run in self._runs.items() if run.heartbeated]
        try:
            known, cancel = await self._store.heartbeat(sent)
        except ApiError as err:
            log.warning("Failed to refresh heartbeats", error=str(err))
            return
        known_set = set(known)
        for uid in sent:
            run = self._runs.get(uid)
            if run is not None and uid not in known_set:
                run.heartbeated = False
                log.warning("Removed unknown job from running set", jobID=run.job.id)
        for uid in cancel:
            run = self._runs.get(uid)
            if run is not None:
                log.info("job canceled by the frontend", jobID=run.job.id)
                run.cancel("heartbeat")
