"""The poll loop: dequeue, run up to N handlers, heartbeat, cancel, drain, mark.

Modelled on Sourcegraph's generic `internal/workerutil/worker.go`: blind to Docker, git, HTTP
and what a job means. It drives a `Store` (the queue API client) and a `Handler` (one job).

- Dequeue every `poll_interval` (with ±20 % jitter so a fleet does not poll in lockstep), at
  once again after a job was dequeued, only while a slot is free.
- A failed dequeue (any `ApiError`) is backed off (`backoff.Backoff`: capped at
  `error_backoff_cap`, jittered, exponential; a `Retry-After` is a floor up to
  `retry_after_cap`), reset by the next answer. The first failure of a streak is one warning,
  the rest are debug lines, the recovery one info line with the streak's length. An answered
  heartbeat ends a streak's wait at once (the frontend is back), not a `Retry-After`.
- Before a dequeue `admission()` may name a reason not to take work (disk pressure, a wedged
  engine; each keeps its own gauge; a clear verdict holds `admission_interval` or until a job
  starts): the loop then waits that long and asks again; the reason is logged once each way.
- Heartbeat every `heartbeat_interval` for the whole life of the loop, even when idle. A failed
  heartbeat is retried sooner, backed off up to `heartbeat_backoff_cap` (Retry-After honoured
  up to the same bound), so that a frontend that answers again is heartbeated within the cap
  plus one request's timeout: well inside its 25 s stalled-job window. IDs the server no
  longer knows leave the heartbeat set (the job keeps running, as in Sourcegraph);
  `cancelIds` cancel their job, which is then marked *failed* (the server stores `canceled`).
- Each job has a deadline (`max_runtime`; 0 means none, as in Sourcegraph): past it the job is
  cancelled and marked *errored* with `job exceeded maximum execution time of 30m0s`.
- A dequeued payload that does not decode but names its job (`wire.MalformedJob`) is marked
  *failed* at once (`malformed job payload: <field>: <problem>`): retrying cannot fix it.
  Sourcegraph's executor only logs it; the job sits in `processing` until the resetter acts.
- Outcome: success → markComplete; a heartbeat cancel → markFailed; else (deadline, stop) errored.
- `health()` fails when the last answered heartbeat, or dequeue while one was wanted (not while
  every slot is busy, the disk refuses work or the loop drains), is older than `health_bound`.
- `drain()` stops dequeuing and lets running jobs finish (first signal); `interrupt()` cancels
  them too (second signal). `num_total_jobs` / `max_active_time` drain by themselves, then
  `run()` returns and the process exits 0. `wait_draining()` returns when a drain begins.

A job's cancel cancels the handler's task; its cleanup (`finally` blocks) runs before the mark.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from executor.config.goparse import format_go_duration
from executor.errors import ApiError, ApiRejected, ApiUnavailable
from executor.metrics import Metrics
from executor.redaction import Redactor, job_redactor
from executor.wire import Job, MalformedJob
from executor.worker.backoff import Backoff

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
    error_backoff_cap: float = 15.0
    retry_after_cap: float = 300.0
    heartbeat_backoff_cap: float = 10.0
    admission_interval: float = 5.0
    health_bound: float = 120.0
    #: Values no failure message or log line may carry (the executor token).
    secrets: tuple[str, ...] = ()


@dataclass
class _Run:
    job: Job
    started: float
    outer: asyncio.Task[None] | None = None  # runs the handler, then marks the job
    inner: asyncio.Task[None] | None = None  # the handler itself: what a cancel cancels
    reason: str = ""  # why it was cancelled: "", "heartbeat", "deadline", "interrupt"
    heartbeated: bool = True

    def cancel(self, reason: str) -> None:
        if not self.reason:
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
        admission: Callable[[], str | None] | None = None,
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
        self._admission = admission
        self.refused = ""  # why dequeuing is paused (disk pressure), "" when it is not
        # A clear admission verdict holds until then or a job starts (a check per poll: idle CPU).
        self._admitted_until = float("-inf")
        poll = max(options.poll_interval, 0.1)
        self._dequeue_backoff = Backoff(
            base=poll, cap=max(options.error_backoff_cap, poll), hint_cap=options.retry_after_cap
        )
        beat_cap = max(0.1, min(options.heartbeat_backoff_cap, options.heartbeat_interval * 2))
        self._heartbeat_backoff = Backoff(base=min(1.0, beat_cap), cap=beat_cap, hint_cap=beat_cap)
        now = clock()
        self._dequeue_ok = now  # last answered dequeue, or last moment none was wanted
        self._heartbeat_ok = now
        self._answering = asyncio.Event()  # a heartbeat was answered during a dequeue streak

    @property
    def running_ids(self) -> list[str]:
        """Record UIDs of the jobs this loop is running (the janitor's live set)."""
        return list(self._runs)

    def health(self) -> tuple[bool, dict[str, object]]:
        """(healthy, facts): the ages of the last answered heartbeat and dequeue, in seconds."""
        now = self._clock()
        if self._stopping.is_set() or self.refused or self._slots.locked():
            self._dequeue_ok = now  # no dequeue is wanted now: none can be late
        heartbeat_age = now - self._heartbeat_ok
        dequeue_age = now - self._dequeue_ok
        bound = self._opts.health_bound
        facts: dict[str, object] = {
            "heartbeatAgeSeconds": round(heartbeat_age, 1),
            "dequeueAgeSeconds": round(dequeue_age, 1),
            "boundSeconds": bound,
            "running": len(self._runs),
            "refusing": self.refused or None,
            "draining": self._stopping.is_set(),
        }
        return heartbeat_age <= bound and dequeue_age <= bound, facts

    def drain(self) -> None:
        """Stop dequeuing; running jobs finish; heartbeats go on until they have."""
        if not self._stopping.is_set():
            log.info("draining: no new jobs will be dequeued", running=len(self._runs))
        self._stopping.set()

    async def wait_draining(self) -> None:
        await self._stopping.wait()

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
            while pending := [t for r in self._runs.values() if (t := r.outer) and not t.done()]:
                await asyncio.wait(pending)  # never a finished task: that would spin
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
            if await self._refusing():
                self._slots.release()
                self._dequeue_ok = self._clock()
                await self._sleep(self._opts.admission_interval)
                continue
            got_job, wake = False, None
            delay = self._opts.poll_interval * random.uniform(0.8, 1.2)
            try:
                job = await self._store.dequeue()
                self._dequeue_answered()
            except MalformedJob as err:
                self._dequeue_answered()
                await self._refuse(err)
                job = None
            except ApiError as err:
                delay = self._dequeue_failed(err)
                # An answered heartbeat ends the wait early, but not a server's Retry-After.
                hinted = isinstance(err, ApiUnavailable) and err.retry_after is not None
                wake, job = (None if hinted else self._answering), None
            if job is not None:
                got_job = self._start(job)
                self._admitted_until = float("-inf")
            if not got_job:
                self._slots.release()
                await self._sleep(delay, wake=wake)

    def _dequeue_answered(self) -> None:
        self._dequeue_ok = self._clock()
        streak = self._dequeue_backoff.succeeded()
        if streak:
            log.info("dequeue answered again", failedAttempts=streak)

    def _dequeue_failed(self, err: ApiError) -> float:
        return _backed_off(self._dequeue_backoff, err, "dequeue failed")

    async def _refusing(self) -> bool:
        """Whether admission refuses work now; logs each change once."""
        if self._admission is None or self._clock() < self._admitted_until:
            return False
        reason = await asyncio.to_thread(self._admission) or ""
        self._admitted_until = self._clock() + (0.0 if reason else self._opts.admission_interval)
        if reason and not self.refused:
            log.warning("not dequeuing: " + reason)
        elif self.refused and not reason:
            log.info("dequeuing again: the condition cleared", was=self.refused)
        self.refused = reason
        return bool(reason)

    async def _acquire_slot(self) -> bool:
        waited = self._slots.locked()
        acquire = asyncio.ensure_future(self._slots.acquire())
        stop = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait([acquire, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if waited:
            self._dequeue_ok = self._clock()  # every slot was busy: no dequeue was wanted
        if self._stopping.is_set():
            if acquire.done() and not acquire.cancelled():
                self._slots.release()
            else:
                acquire.cancel()
            return False
        return True

    async def _sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        """Sleep `seconds`, or less when the loop stops or `wake` is set (then cleared)."""
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if wake is not None:
            waits.append(asyncio.ensure_future(wake.wait()))
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiting in waits:
            waiting.cancel()
        if wake is not None:
            wake.clear()

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
        # 🚨 SECURITY: this task (and what it starts) logs, and marks, through the job's redactor.
        redactor = Redactor.for_values(job.redacted_values, (*self._opts.secrets, job.token))
        job_redactor.set(redactor)
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
        try:
            await self._mark(job, outcome, redactor.redact(message))
        finally:  # even if marking raised: a run left in `_runs` is never freed
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
        except Exception as err:  # noqa: BLE001 - an ApiError, or anything else: logged
            log.error("failed to mark job", outcome=outcome, error=str(err) or repr(err))

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
            delay = await self._heartbeat_once()
            await asyncio.sleep(delay)

    async def _heartbeat_once(self) -> float:
        """One heartbeat; the seconds until the next one."""
        sent = [uid for uid, run in self._runs.items() if run.heartbeated]
        try:
            known, cancel = await self._store.heartbeat(sent)
        except ApiError as err:
            return _backed_off(self._heartbeat_backoff, err, "Failed to refresh heartbeats")
        self._heartbeat_ok = self._clock()
        if self._dequeue_backoff.failures:
            self._answering.set()  # the frontend answers again: dequeue now, not at the cap
        streak = self._heartbeat_backoff.succeeded()
        if streak:
            log.info("heartbeats answered again", failedAttempts=streak)
        self._apply_heartbeat(sent, known, cancel)
        return self._opts.heartbeat_interval

    def _apply_heartbeat(self, sent: list[str], known: list[str], cancel: list[str]) -> None:
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


def _backed_off(backoff: Backoff, err: ApiError, what: str) -> float:
    """Count a failure; warn on the first of a streak only (the rest are debug lines)."""
    hint = err.retry_after if isinstance(err, ApiUnavailable) else None
    delay = backoff.failed(hint)
    report = log.warning if backoff.failures == 1 else log.debug
    report(what, error=str(err), failedAttempts=backoff.failures, retryIn=round(delay, 2))
    return delay
