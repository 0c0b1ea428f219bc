"""Back-pressure against a real sandbox whose fault layer fails the queue routes.

The loop (`executor.worker.loop.Worker`) runs in-process with the real `QueueClient` over
loopback; the sandbox's fault audit says how many requests arrived and when. Bounds are all
one-sided in the direction a slow machine cannot break: a loaded host sends fewer requests and
leaves longer gaps, never more and shorter ones (the heartbeat check is the exception and its
bound is generous).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from executor.apiclient.base import RetryPolicy
from executor.apiclient.queue import QueueClient
from executor.sandbox.faults import AuditRow, parse_faults, read_audit
from executor.wire import Job
from executor.worker.backoff import Backoff
from executor.worker.loop import Worker, WorkerOptions


class _NoWork:
    async def handle(self, job: Job) -> None:
        return None


def _run(box: Any, options: WorkerOptions, seconds: float) -> list[AuditRow]:
    async def scenario() -> None:
        client = QueueClient(
            frontend_url=box.url,
            token=box.token,
            executor_name="backoff-test",
            queues=["batches"],
            version="5.3.0",
            retry=RetryPolicy(attempts=1),
        )
        worker = Worker(client, _NoWork(), options)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(seconds)
        worker.drain()
        await asyncio.wait_for(task, 30)
        await client.aclose()

    asyncio.run(scenario())
    return read_audit(box.settings.data_dir)


def test_backoff_grows_jitters_caps_and_resets() -> None:
    backoff = Backoff(base=1.0, cap=8.0, hint_cap=30.0, rand=lambda: 1.0)
    assert [backoff.failed() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff.succeeded() == 6
    assert backoff.failed() == 1.0
    low = Backoff(base=1.0, cap=8.0, hint_cap=30.0, rand=lambda: 0.0)
    assert [low.failed() for _ in range(3)] == [0.5, 1.0, 2.0]
    assert low.failed(retry_after=20.0) == 20.0  # a hint is a floor
    assert low.failed(retry_after=600.0) == 30.0  # bounded by hint_cap


def test_dequeue_errors_are_backed_off(sandbox_factory: Callable[..., Any]) -> None:
    box = sandbox_factory(faults=parse_faults("route=dequeue,error=1,status=500"))
    options = WorkerOptions(poll_interval=0.05, heartbeat_interval=5.0, error_backoff_cap=1.0)
    rows = _run(box, options, 4.0)
    dequeues = [r for r in rows if r.route == "dequeue"]
    # Without back-off: one per 50 ms poll, about 80. With it: 0.05, 0.1, ... then 1 s apart.
    assert 2 <= len(dequeues) <= 15, len(dequeues)
    gaps = [b.at - a.at for a, b in itertools.pairwise(dequeues)]
    assert max(gaps) >= 0.4


def test_retry_after_is_honoured_on_429(sandbox_factory: Callable[..., Any]) -> None:
    spec = "route=dequeue,error=1,status=429,retry_after=2"
    box = sandbox_factory(faults=parse_faults(spec))
    options = WorkerOptions(poll_interval=0.05, heartbeat_interval=5.0, error_backoff_cap=0.1)
    rows = _run(box, options, 5.0)
    dequeues = [r for r in rows if r.route == "dequeue"]
    # Ignoring Retry-After, the 0.1 s back-off cap would mean some forty dequeues in 5 s; with
    # it, about three. The bound allows for a slow drain on busy cores; the gaps are the point.
    assert 1 <= len(dequeues) <= 6, len(dequeues)
    gaps = [b.at - a.at for a, b in itertools.pairwise(dequeues)]
    assert all(gap >= 1.9 for gap in gaps), gaps


def test_a_failing_heartbeat_is_retried_within_its_bound_despite_retry_after(
    sandbox_factory: Callable[..., Any],
) -> None:
    spec = "route=heartbeat,error=1,status=503,retry_after=60"
    box = sandbox_factory(faults=parse_faults(spec))
    options = WorkerOptions(poll_interval=1.0, heartbeat_interval=0.3, heartbeat_backoff_cap=0.5)
    rows = _run(box, options, 4.0)
    beats = [r for r in rows if r.route == "heartbeat"]
    # Retry-After: 60 would mean one heartbeat; the bound (0.5 s) means about eight.
    assert len(beats) >= 3, len(beats)
    gaps = [b.at - a.at for a, b in itertools.pairwise(beats)]
    assert max(gaps) < 3.0, gaps
