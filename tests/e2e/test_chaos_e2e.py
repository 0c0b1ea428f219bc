"""Chaos: the daemon against a sandbox whose queue routes fail, stall and lose answers.

Issue 6 item 2 asks for 200 jobs under 30 % 5xx plus 2 s latency. That takes many minutes, so
CI runs a smaller figure with the same shape; the full one is a documented command:

    CHAOS_FULL=1 .venv/bin/pytest tests/e2e/test_chaos_e2e.py      # 200 jobs, 2 s latency, 8 slots
    CHAOS_JOBS=50 CHAOS_LATENCY=1s .venv/bin/pytest tests/e2e/test_chaos_e2e.py

Default (CI): 20 jobs, 30 % 5xx and 0.3 s latency on every queue route, and on the mark routes
30 % 5xx plus 30 % lost answers (the handler ran, the answer never came: the retry must be
recognised as already done, never counted twice). Two slots (`EXECUTOR_MAXIMUM_NUM_JOBS=2`;
`CHAOS_SLOTS`, 8 in the full run).

Checks: every job `completed`; its logs complete (every docker step entry has exit code 0 and
its own output); exactly one accepted mark per job (`fault_audit`, `executor.sandbox.faults`)
and no job reset or run twice; the faults really fired; the daemon still running at the end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from typing import Any

import pytest
from fixtures_daemon import wait_for

from executor.apiclient.base import RetryPolicy
from executor.apiclient.queue import QueueClient
from executor.sandbox.compat import parse_duration
from executor.sandbox.faults import accepted_marks, parse_faults, read_audit
from executor.wire import ExecutionLogEntry, Job

IMAGE = "executor-busybox:latest"
FULL = os.environ.get("CHAOS_FULL") == "1"
JOBS = int(os.environ.get("CHAOS_JOBS", "200" if FULL else "20"))
LATENCY = parse_duration(os.environ.get("CHAOS_LATENCY", "2s" if FULL else "300ms"))
# Latency-bound: each job makes ~15 sequential calls, so at 2 s each a job takes ~40 s and
# 200 jobs need more than 2 slots to finish within the hour.
SLOTS = os.environ.get("CHAOS_SLOTS", "8" if FULL else "2")
ERROR = 0.3


def _job(repo: Any, n: int) -> dict[str, Any]:
    def step(key: str) -> dict[str, Any]:
        script = [f"echo chaos-{n}-{key}", "wc -l < README.md"]
        return {"key": key, "image": IMAGE, "commands": script, "dir": ".", "env": []}

    return {
        "repositoryName": repo.name,
        "commit": repo.head,
        "shallowClone": True,
        "dockerSteps": [step("a"), step("b")],
    }


def test_log_entries_survive_5xx_without_duplicates(sandbox_factory: Any) -> None:
    """A 5xx the frontend answers itself did not append: re-sending the add is safe and needed
    (before the fix, one 503 lost the entry and failed the job's log flush)."""
    box = sandbox_factory(faults=parse_faults("route=addExecutionLogEntry,error=0.5"))
    box.register_executor("chaos")
    body = box.dequeue("chaos")
    box.enqueue({"repositoryName": ""})
    assert body is None
    body = box.dequeue("chaos")
    assert body is not None
    job = Job.model_validate(body)

    async def add_all() -> list[int]:
        client = QueueClient(
            frontend_url=box.url,
            token=box.token,
            executor_name="chaos",
            queues=["batches"],
            version="5.3.0",
            retry=RetryPolicy(attempts=30, base=0.001, cap=0.005),
        )
        try:
            now = dt.datetime.now(dt.UTC)
            return [
                await client.add_execution_log_entry(
                    job, ExecutionLogEntry(key=f"k{i}", start_time=now, out=f"{i}\n")
                )
                for i in range(16)
            ]
        finally:
            await client.aclose()

    assert asyncio.run(add_all()) == list(range(1, 17))
    assert [e["key"] for e in box.job(job.id)["execution_logs"]] == [f"k{i}" for i in range(16)]
    assert any(row.fault == "error" for row in read_audit(box.settings.data_dir))


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(3600 if FULL else 300)
def test_jobs_complete_once_under_faults(
    sandbox_factory: Any, sample_repo: Any, daemon_factory: Any
) -> None:
    spec = (
        f"route=marks,error={ERROR},lost=0.3,latency={LATENCY};"
        f"route=queue,error={ERROR},latency={LATENCY}"
    )
    box = sandbox_factory(faults=parse_faults(spec), stalled_max_age=60.0)
    box.add_repo(sample_repo.name, sample_repo.path)
    ids = [box.enqueue(_job(sample_repo, n)) for n in range(JOBS)]
    daemon = daemon_factory(frontend=box, maximum_num_jobs=SLOTS)

    deadline = time.monotonic() + (3500 if FULL else 280)
    while time.monotonic() < deadline:
        states = [j["state"] for j in box.jobs()]
        if all(s not in ("queued", "processing") for s in states):
            break
        assert daemon.proc.poll() is None, daemon.log_text[-3000:]
        time.sleep(0.5)

    jobs = {j["id"]: j for j in box.jobs()}
    not_done = {i: (jobs[i]["state"], jobs[i]["failure_message"]) for i in ids}
    not_done = {i: s for i, s in not_done.items() if s[0] != "completed"}
    assert not not_done, not_done
    for n, job_id in enumerate(ids):
        job = box.job(job_id)
        assert job["num_resets"] == 0, job
        logs = {e["key"]: e for e in job["execution_logs"]}
        for key in ("a", "b"):
            entry = logs[f"step.docker.{key}"]
            assert entry.get("exitCode") == 0, entry
            assert f"stdout: chaos-{n}-{key}\n" in entry["out"], entry
            assert "stdout: 1\n" in entry["out"], entry
        assert logs["teardown.fs"].get("exitCode") == 0, sorted(logs)

    def lost_marks() -> dict[int, list[tuple[int | None, str]]]:
        """Mark calls (handler status, fault) of each job that had a mark answer lost."""
        calls: dict[int, list[tuple[int | None, str]]] = {}
        for row in read_audit(box.settings.data_dir):
            if row.route.startswith("mark") and row.job_id is not None:
                calls.setdefault(row.job_id, []).append((row.status, row.fault))
        return {j: c for j, c in calls.items() if any(f == "lost" for _, f in c)}

    # A mark whose answer was lost is sent again (its retries may still be in flight when the
    # job is already final) until one gets an answer: 401, as the mark deleted the job token
    # (404 if the token survived), or the retries run out. Wait until no mark call came for 3 s
    # (the backoff cap is 2 s). Before the fix the daemon took the 401 for a failed mark.
    def quiet() -> bool:
        marks = [r for r in read_audit(box.settings.data_dir) if r.route.startswith("mark")]
        seen.append(len(marks))
        return len(seen) > 6 and seen[-1] == seen[-7]

    seen: list[int] = []
    assert wait_for(quiet, timeout=60, interval=0.5)
    lost = lost_marks()
    assert lost, "no mark answer was lost: the double-mark path went untested"
    # 30 % error and 30 % lost per attempt may exhaust the retries; at least some must have
    # delivered the "already final" answer, and none may count as a second mark.
    assert any(c[-1] in ((401, ""), (404, "")) for c in lost.values()), lost
    for calls in lost.values():
        assert [s for s, _ in calls].count(204) == 1, calls
        assert all(s in (None, 204, 401, 404) for s, _ in calls), calls
    assert "unexpected status code 401" not in daemon.log_text
    audit = read_audit(box.settings.data_dir)
    assert accepted_marks(audit) == dict.fromkeys(ids, 1)
    faults = {f: sum(1 for row in audit if row.fault == f) for f in ("error", "lost")}
    assert faults["error"] > 0 and faults["lost"] > 0, faults
    assert daemon.proc.poll() is None, "the daemon died under faults"
