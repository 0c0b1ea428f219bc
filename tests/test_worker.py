"""The loop's outcome mapping, heartbeat handling and limits, over an in-memory Store.

`MemoryStore` is a real implementation of the worker's `Store` Protocol (a queue in a list),
not a mock of HTTP: the loop knows no HTTP by design.
"""

from __future__ import annotations

import asyncio

import pytest

from executor.errors import JobError, StepFailed
from executor.wire import Job
from executor.worker.loop import Worker, WorkerOptions


class MemoryStore:
    def __init__(self, jobs: list[Job]) -> None:
        self.queue = list(jobs)
        self.marks: list[tuple[int, str, str]] = []
        self.cancel: set[str] = set()
        self.unknown: set[str] = set()
        self.heartbeats: list[list[str]] = []

    async def ping(self) -> None:
        return None

    async def dequeue(self) -> Job | None:
        return self.queue.pop(0) if self.queue else None

    async def heartbeat(self, job_uids: list[str]) -> tuple[list[str], list[str]]:
        self.heartbeats.append(list(job_uids))
        known = [u for u in job_uids if u not in self.unknown]
        return known, [u for u in job_uids if u in self.cancel]

    async def mark_complete(self, job: Job) -> None:
        self.marks.append((job.id, "completed", ""))

    async def mark_errored(self, job: Job, message: str) -> None:
        self.marks.append((job.id, "errored", message))

    async def mark_failed(self, job: Job, message: str) -> None:
        self.marks.append((job.id, "failed", message))


class ScriptedHandler:
    """Each job's behaviour comes from its ID: raise, sleep, or succeed."""

    def __init__(self, behaviours: dict[int, object]) -> None:
        self.behaviours = behaviours
        self.running = 0
        self.peak = 0

    async def handle(self, job: Job) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            behaviour = self.behaviours.get(job.id)
            if isinstance(behaviour, BaseException):
                raise behaviour
            if isinstance(behaviour, float):
                await asyncio.sleep(behaviour)
        finally:
            self.running -= 1


OPTS = WorkerOptions(poll_interval=0.01, heartbeat_interval=0.05, max_runtime=5.0)


def _run(store: MemoryStore, handler: ScriptedHandler, **opts: object) -> Worker:
    options = WorkerOptions(**{**OPTS.__dict__, **opts})  # type: ignore[arg-type]
    worker = Worker(store, handler, options)

    async def scenario() -> None:
        await worker.connect()
        await asyncio.wait_for(worker.run(), timeout=20)

    asyncio.run(scenario())
    return worker


@pytest.mark.parametrize(
    ("behaviour", "outcome", "message"),
    [
        (None, "completed", ""),
        (
            StepFailed('running command "x": command failed with exit code 1', exit_code=1),
            "errored",
            "command failed with exit code 1",
        ),
        (JobError("workspace broke"), "errored", "workspace broke"),
        (RuntimeError("boom"), "errored", "boom"),
    ],
)
def test_outcome_mapping(behaviour: object, outcome: str, message: str) -> None:
    store = MemoryStore([Job(id=1)])
    _run(store, ScriptedHandler({1: behaviour}), num_total_jobs=1)
    assert store.marks == [(1, outcome, message)] or (
        store.marks[0][:2] == (1, outcome) and message in store.marks[0][2]
    )


def test_deadline_marks_errored_with_sourcegraphs_message() -> None:
    store = MemoryStore([Job(id=1)])
    _run(store, ScriptedHandler({1: 10.0}), num_total_jobs=1, max_runtime=0.2)
    assert store.marks == [(1, "errored", "job exceeded maximum execution time of 200ms")]


def test_heartbeat_cancel_marks_failed() -> None:
    store = MemoryStore([Job(id=7)])
    store.cancel.add("7")
    _run(store, ScriptedHandler({7: 10.0}), num_total_jobs=1)
    assert store.marks == [(7, "failed", "job was canceled")]


def test_unknown_job_leaves_the_heartbeat_set_but_keeps_running() -> None:
    store = MemoryStore([Job(id=3)])
    store.unknown.add("3")
    _run(store, ScriptedHandler({3: 0.3}), num_total_jobs=1)
    assert store.marks == [(3, "completed", "")]
    # Sent once, reported unknown, never sent again (Sourcegraph drops it from the set).
    assert sum("3" in h for h in store.heartbeats) == 1
    assert len(store.heartbeats) >= 3


def test_slots_bound_concurrency_and_total_jobs_stop_the_loop() -> None:
    store = MemoryStore([Job(id=i) for i in range(1, 9)])
    handler = ScriptedHandler(dict.fromkeys(range(1, 9), 0.1))
    worker = _run(store, handler, max_jobs=3, num_total_jobs=6)
    assert handler.peak == 3
    assert len(store.marks) == 6 and worker.counts["completed"] == 6
    assert [j.id for j in store.queue] == [7, 8]


def test_drain_lets_running_jobs_finish() -> None:
    store = MemoryStore([Job(id=1), Job(id=2)])
    handler = ScriptedHandler({1: 0.3, 2: 0.3})
    worker = Worker(store, handler, OPTS)

    async def scenario() -> None:
        run = asyncio.create_task(worker.run())
        await asyncio.sleep(0.1)
        worker.drain()
        await asyncio.wait_for(run, timeout=5)

    asyncio.run(scenario())
    assert store.marks == [(1, "completed", "")]
    assert [j.id for j in store.queue] == [2]


def test_interrupt_cancels_and_marks_errored() -> None:
    store = MemoryStore([Job(id=1)])
    worker = Worker(store, ScriptedHandler({1: 10.0}), OPTS)

    async def scenario() -> None:
        run = asyncio.create_task(worker.run())
        await asyncio.sleep(0.1)
        worker.interrupt()
        await asyncio.wait_for(run, timeout=5)

    asyncio.run(scenario())
    assert store.marks[0][:2] == (1, "errored")
    assert "interrupted" in store.marks[0][2]


def test_heartbeats_flow_while_idle() -> None:
    store = MemoryStore([])
    worker = Worker(store, ScriptedHandler({}), OPTS)

    async def scenario() -> None:
        run = asyncio.create_task(worker.run())
        await asyncio.sleep(0.3)
        worker.drain()
        await asyncio.wait_for(run, timeout=5)

    asyncio.run(scenario())
    assert len(store.heartbeats) >= 3 and all(h == [] for h in store.heartbeats)


def test_next_dequeue_follows_a_finished_job_at_once() -> None:
    """Spec §7.1: after a job the loop polls again at once; it sleeps only after an empty poll."""
    events: list[str] = []

    class Recording(MemoryStore):
        async def dequeue(self) -> Job | None:
            job = await super().dequeue()
            events.append(f"dequeue:{job.id if job else None}")
            return job

        async def mark_complete(self, job: Job) -> None:
            await super().mark_complete(job)
            events.append(f"mark:{job.id}")

    class NoSleep(Worker):
        async def _sleep(self, seconds: float) -> None:
            events.append("sleep")
            await super()._sleep(seconds)

    store = Recording([Job(id=1), Job(id=2)])
    # A poll interval of a minute: any sleep between the jobs would time the test out.
    options = WorkerOptions(**{**OPTS.__dict__, "poll_interval": 60.0, "num_total_jobs": 2})
    worker = NoSleep(store, ScriptedHandler({1: 0.05, 2: 0.05}), options)

    async def scenario() -> None:
        await asyncio.wait_for(worker.run(), timeout=10)

    asyncio.run(scenario())
    assert events == ["dequeue:1", "mark:1", "dequeue:2", "mark:2"]


def test_a_mark_that_raises_unexpectedly_still_frees_the_run() -> None:
    """A mark that raised something other than an `ApiError` (once: "import of trio halted")
    left its run in the table: the drained loop then waited on a finished task forever, at
    80 % of a core. The run is freed and the loop returns."""

    class Broken(MemoryStore):
        async def mark_complete(self, job: Job) -> None:
            raise RuntimeError("not an ApiError")

    store = Broken([Job(id=1)])
    worker = _run(store, ScriptedHandler({1: None}), num_total_jobs=1)
    assert worker.counts.get("completed") == 1


def test_a_clear_admission_verdict_holds_until_its_interval_or_a_job() -> None:
    """Idle polls within `admission_interval` reuse the last clear verdict (no thread hop per
    poll); the interval passing, or a job starting, makes the next dequeue ask again."""
    now = [0.0]
    asked: list[float] = []

    class Counting(MemoryStore):
        dequeues = 0

        async def dequeue(self) -> Job | None:
            self.dequeues += 1
            return await super().dequeue()

    def admission() -> str | None:
        asked.append(now[0])
        return None

    store = Counting([])
    options = WorkerOptions(**{**OPTS.__dict__, "admission_interval": 5.0})
    worker = Worker(store, ScriptedHandler({}), options, clock=lambda: now[0], admission=admission)

    async def polls(n: int) -> None:
        target = store.dequeues + n
        for _ in range(2000):
            if store.dequeues >= target:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the loop stopped polling")

    async def scenario() -> None:
        run = asyncio.create_task(worker.run())
        await polls(5)
        assert asked == [0.0]  # five polls, one check
        now[0] = 6.0
        await polls(5)
        assert asked == [0.0, 6.0]  # the interval passed: asked once more
        store.queue.append(Job(id=1))
        await polls(5)
        assert store.marks == [(1, "completed", "")]
        assert asked == [0.0, 6.0, 6.0]  # a job started: the next dequeue asked again
        worker.drain()
        await asyncio.wait_for(run, timeout=10)

    asyncio.run(scenario())
