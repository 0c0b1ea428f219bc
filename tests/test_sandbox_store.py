"""The sandbox store against a real SQLite file: FIFO, racing dequeuers, heartbeats, resets,
marks, cancel and job tokens (Sourcegraph's `dbworker/store` and `executor_job_tokens`)."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest

from executor.sandbox.store import MAX_RESETS_MESSAGE, SandboxStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> SandboxStore:
    return SandboxStore(tmp_path / "db.sqlite", stalled_max_age=25.0, clock=clock)


def _enqueue(store: SandboxStore, clock: Clock, n: int, queue: str = "batches") -> list[int]:
    ids = []
    for _ in range(n):
        ids.append(store.enqueue(queue, {"commit": "abc"}, "repo"))
        clock.now += 1
    return ids


def test_dequeue_is_fifo_and_sets_processing(store: SandboxStore, clock: Clock) -> None:
    ids = _enqueue(store, clock, 3)
    got = [store.dequeue("batches", "e1") for _ in range(4)]
    assert [g.id for g in got if g] == ids
    assert got[3] is None
    job = store.get_job(ids[0])
    assert job is not None
    assert (job.state, job.worker_hostname) == ("processing", "e1")
    assert job.started_at == job.last_heartbeat_at is not None


def test_dequeue_is_per_queue(store: SandboxStore, clock: Clock) -> None:
    (codeintel,) = _enqueue(store, clock, 1, queue="codeintel")
    assert store.dequeue("batches", "e1") is None
    got = store.dequeue("codeintel", "e1")
    assert got is not None and got.id == codeintel


def test_racing_dequeuers_get_disjoint_sets(tmp_path: Path) -> None:
    path = tmp_path / "race.sqlite"
    setup = SandboxStore(path)
    expected = {setup.enqueue("batches", {}, "") for _ in range(100)}
    results: dict[str, list[int]] = {f"e{i}": [] for i in range(4)}
    barrier = threading.Barrier(len(results))

    def run(name: str) -> None:
        own = SandboxStore(path)  # own connection, as separate processes would have
        barrier.wait()
        while (job := own.dequeue("batches", name)) is not None:
            results[name].append(job.id)

    threads = [threading.Thread(target=run, args=(n,)) for n in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for ids in results.values() for i in ids]
    assert len(everything) == len(set(everything)) == 100
    assert set(everything) == expected


def test_tokens_store_only_sha256_and_regenerate(store: SandboxStore, clock: Clock) -> None:
    (job_id,) = _enqueue(store, clock, 1)
    first = store.dequeue("batches", "e1")
    assert first is not None and len(first.token) == 40
    int(first.token, 16)
    raw = sqlite3.connect(store.path).execute("SELECT value_sha256 FROM job_tokens").fetchall()
    assert raw == [(hashlib.sha256(bytes.fromhex(first.token)).digest(),)]
    token = store.get_token(first.token)
    assert token is not None and (token.job_id, token.queue, token.repo) == (
        job_id,
        "batches",
        "repo",
    )
    assert store.get_token("not-hex") is None
    # A re-dequeue (after a reset) regenerates: the old token stops working.
    clock.now += 100
    store.reset_stalled()
    second = store.dequeue("batches", "e2")
    assert second is not None and second.token != first.token
    assert store.get_token(first.token) is None
    assert store.get_token(second.token) is not None
    assert store.mark_complete("batches", job_id, "e2")
    assert store.get_token(second.token) is None


def test_heartbeat_known_and_cancel(store: SandboxStore, clock: Clock) -> None:
    a, b, c = _enqueue(store, clock, 3)
    for _ in range(2):
        store.dequeue("batches", "e1")
    store.dequeue("batches", "e2")
    assert store.heartbeat("batches", "e1", []) == ([], [])
    assert store.heartbeat("batches", "e1", [str(a), str(b), str(c), "999"]) == (
        [str(a), str(b)],
        None,
    )
    assert store.cancel(b) == "processing"
    assert store.heartbeat("batches", "e1", [str(a), str(b)]) == ([str(a), str(b)], [str(b)])
    assert store.heartbeat("codeintel", "e1", [str(a)]) == (None, None)


def test_stalled_jobs_reset_three_times_then_fail(store: SandboxStore, clock: Clock) -> None:
    (job_id,) = _enqueue(store, clock, 1)
    for attempt in range(4):
        assert store.dequeue("batches", "e1") is not None
        clock.now += 10
        store.heartbeat("batches", "e1", [str(job_id)])
        clock.now += 20  # 20 s since the heartbeat: not stalled yet
        assert store.reset_stalled() == ([], [])
        clock.now += 6
        reset, failed = store.reset_stalled()
        if attempt < 3:
            assert (reset, failed) == ([job_id], [])
        else:
            assert (reset, failed) == ([], [job_id])
    job = store.get_job(job_id)
    assert job is not None
    assert (job.state, job.num_resets, job.failure_message) == ("failed", 3, MAX_RESETS_MESSAGE)


def test_reset_requeues_at_the_back(store: SandboxStore, clock: Clock) -> None:
    a, b = _enqueue(store, clock, 2)
    store.dequeue("batches", "e1")
    clock.now += 30
    assert store.reset_stalled() == ([a], [])
    first = store.dequeue("batches", "e2")
    assert first is not None and first.id == b


def test_mark_rules(store: SandboxStore, clock: Clock) -> None:
    a, b, c, d = _enqueue(store, clock, 4)
    for _ in range(4):
        store.dequeue("batches", "e1")
    assert not store.mark_complete("batches", a, "other")
    assert not store.mark_complete("codeintel", a, "e1")
    assert store.mark_complete("batches", a, "e1")
    assert not store.mark_complete("batches", a, "e1")  # no longer processing
    assert store.mark_errored("batches", b, "e1", "OH NO")
    store.cancel(c)
    assert store.mark_failed("batches", c, "e1", "killed")
    store.cancel(d)
    assert store.mark_errored("batches", d, "e1", "killed")
    states = {j.id: (j.state, j.failure_message, j.num_failures) for j in store.list_jobs()}
    assert states == {
        a: ("completed", None, 0),
        b: ("failed", "OH NO", 1),  # MaxNumRetries = 0, as in both Sourcegraph queues
        c: ("canceled", "killed", 0),
        d: ("canceled", "killed", 0),
    }


def test_errored_is_reachable_with_retries(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "db.sqlite", max_num_retries=2)
    job_id = store.enqueue("batches", {}, "")
    store.dequeue("batches", "e1")
    assert store.mark_errored("batches", job_id, "e1", "first")
    job = store.get_job(job_id)
    assert job is not None and job.state == "errored"
    again = store.dequeue("batches", "e1")
    assert again is not None and again.id == job_id
    assert store.mark_errored("batches", job_id, "e1", "second")
    job = store.get_job(job_id)
    assert job is not None and (job.state, job.num_failures) == ("failed", 2)


def test_cancel_queued_job_ends_it(store: SandboxStore, clock: Clock) -> None:
    (job_id,) = _enqueue(store, clock, 1)
    assert store.cancel(job_id) == "canceled"
    assert store.dequeue("batches", "e1") is None
    assert store.cancel(12345) is None


def test_log_entries_need_ownership(store: SandboxStore, clock: Clock) -> None:
    (job_id,) = _enqueue(store, clock, 1)
    assert store.add_log_entry("batches", job_id, "e1", {"key": "a"}) is None  # still queued
    store.dequeue("batches", "e1")
    assert store.add_log_entry("batches", job_id, "e2", {"key": "a"}) is None
    assert store.add_log_entry("batches", job_id, "e1", {"key": "a"}) == 1
    assert store.add_log_entry("batches", job_id, "e1", {"key": "b"}) == 2
    assert store.update_log_entry("batches", job_id, "e1", 2, {"key": "b", "out": "x"})
    assert not store.update_log_entry("batches", job_id, "e1", 3, {"key": "c"})
    assert not store.update_log_entry("batches", job_id, "e1", 0, {"key": "c"})
    assert not store.update_log_entry("batches", job_id, "e2", 1, {"key": "c"})
    job = store.get_job(job_id)
    assert job is not None
    assert job.execution_logs == [{"key": "a"}, {"key": "b", "out": "x"}]
    # A new dequeue clears the logs.
    clock.now += 100
    store.reset_stalled()
    store.dequeue("batches", "e1")
    job = store.get_job(job_id)
    assert job is not None and job.execution_logs == []


def test_registry(store: SandboxStore) -> None:
    from executor.sandbox.registry import ExecutorInfo

    assert not store.executor_exists("e1")
    store.upsert_executor(ExecutorInfo(hostname="e1", queue_names=["batches"], os="linux"))
    store.upsert_executor(ExecutorInfo(hostname="e1", queue_names=["codeintel"], os="linux"))
    assert store.executor_exists("e1")
    assert [e.queue_names for e in store.list_executors()] == [["codeintel"]]
    store.add_repo("github.com/a/b", "/tmp/x")
    assert store.repo_path("github.com/a/b") == "/tmp/x"
    assert store.repo_path("../../etc") is None
    store.put_file("batch-changes", "abc/xyz", b"\x00bytes")
    assert store.get_file("batch-changes", "abc/xyz") == b"\x00bytes"
    assert store.get_file("batch-changes", "abc/none") is None
