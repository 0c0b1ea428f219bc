"""The loop and a dequeued job that does not decode, and the loop with no per-job deadline.

`ListStore` is a real implementation of the worker's `Store` Protocol over a list whose entries
are jobs, or `MalformedJob` errors as `apiclient.QueueClient.dequeue` raises them; nothing is
mocked. The end-to-end version against the sandbox is `tests/e2e/test_malformed_job_e2e.py`.
"""

from __future__ import annotations

import asyncio

import pytest

from executor.errors import ApiRejected
from executor.metrics import Metrics
from executor.wire import Job, MalformedJob, decode_job
from executor.worker.loop import Worker, WorkerOptions

TOKEN = "ab" * 20


class ListStore:
    def __init__(self, answers: list[Job | MalformedJob], *, refuse_marks: bool = False) -> None:
        self.answers = list(answers)
        self.marks: list[tuple[int, str, str, str]] = []
        self.refuse_marks = refuse_marks

    async def ping(self) -> None:
        return None

    async def dequeue(self) -> Job | None:
        if not self.answers:
            return None
        answer = self.answers.pop(0)
        if isinstance(answer, MalformedJob):
            raise answer
        return answer

    async def heartbeat(self, job_uids: list[str]) -> tuple[list[str], list[str]]:
        return list(job_uids), []

    async def _record(self, job: Job, outcome: str, message: str) -> None:
        if self.refuse_marks:
            raise ApiRejected("MarkFailed", 403, "invalid token")
        self.marks.append((job.id, job.token, outcome, message))

    async def mark_complete(self, job: Job) -> None:
        await self._record(job, "completed", "")

    async def mark_errored(self, job: Job, message: str) -> None:
        await self._record(job, "errored", message)

    async def mark_failed(self, job: Job, message: str) -> None:
        await self._record(job, "failed", message)


class SleepyHandler:
    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.handled: list[int] = []

    async def handle(self, job: Job) -> None:
        self.handled.append(job.id)
        await asyncio.sleep(self.seconds)


def _malformed(body: dict[str, object]) -> MalformedJob:
    with pytest.raises(MalformedJob) as caught:
        decode_job(body)
    return caught.value


def _run(
    store: ListStore, handler: SleepyHandler, metrics: Metrics | None = None, **opts: float
) -> Worker:
    options = WorkerOptions(**{"poll_interval": 0.01, "heartbeat_interval": 0.05, **opts})  # type: ignore[arg-type]
    worker = Worker(store, handler, options, metrics)

    async def scenario() -> None:
        await worker.connect()
        await asyncio.wait_for(worker.run(), timeout=20)

    asyncio.run(scenario())
    return worker


def test_malformed_job_is_marked_failed_without_running_and_the_loop_goes_on() -> None:
    bad = _malformed({"id": 5, "token": TOKEN, "dockerSteps": "rm -rf /"})
    store = ListStore([bad, Job(id=6)])
    handler = SleepyHandler()
    metrics = Metrics()
    worker = _run(store, handler, metrics, num_total_jobs=1)
    assert store.marks == [
        (5, TOKEN, "failed", "malformed job payload: dockerSteps: Input should be a valid list"),
        (6, "", "completed", ""),
    ]
    assert handler.handled == [6]  # the malformed job never reached the handler
    # It is not a dequeue that counts towards EXECUTOR_NUM_TOTAL_JOBS (Go counts successes).
    assert worker.counts == {"completed": 1, "errored": 0, "failed": 1}
    assert 'outcome="failed"' in metrics.exposition()


def test_a_refused_mark_is_logged_and_the_loop_goes_on() -> None:
    store = ListStore([_malformed({"id": 5, "commit": 1})], refuse_marks=True)
    worker = _run(store, SleepyHandler(), max_active_time=0.3)
    assert store.marks == [] and not store.answers
    assert worker.counts["failed"] == 1


def test_zero_max_runtime_means_no_deadline() -> None:
    store = ListStore([Job(id=1)])
    _run(store, SleepyHandler(0.3), num_total_jobs=1, max_runtime=0)
    assert store.marks == [(1, "", "completed", "")]


def test_a_deadline_still_applies_when_set() -> None:
    store = ListStore([Job(id=1)])
    _run(store, SleepyHandler(5.0), num_total_jobs=1, max_runtime=0.1)
    assert store.marks == [(1, "", "errored", "job exceeded maximum execution time of 100ms")]
