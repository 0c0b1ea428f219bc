"""The `--faults` spec (`executor.sandbox.faults.parse_faults`): good specs and refused ones,
and the two faults whose timing matters (`jobs`, `hold`)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from executor.sandbox.faults import FaultRule, FaultSpecError, parse_faults, read_audit


def test_key_value_rules() -> None:
    rules = parse_faults("route=dequeue,error=0.3,latency=2s; route=marks,lost=0.5")
    assert rules == (
        FaultRule(route="dequeue", error=0.3, latency=2.0),
        FaultRule(route="marks", lost=0.5),
    )


def test_json_rules_and_matching() -> None:
    (rule,) = parse_faults('{"path": "/queue/[^/]+/mark", "drop": 1, "latency": "300ms"}')
    assert rule.latency == 0.3 and rule.drop == 1.0
    assert rule.matches("/.executors/queue/batches/markComplete")
    assert not rule.matches("/.executors/queue/batches/dequeue")
    marks = FaultRule(route="marks")
    assert marks.matches("/.executors/queue/batches/markFailed")
    assert not marks.matches("/.executors/queue/batches/heartbeat")


def test_rules_limited_to_some_jobs() -> None:
    (text,) = parse_faults("route=marks,latency=1s,jobs=3|7")
    (json_rule,) = parse_faults('{"route": "marks", "latency": 1, "jobs": [3, 7]}')
    assert text == json_rule and text.jobs == (3, 7)
    path = "/.executors/queue/batches/markComplete"
    assert text.matches(path, 3) and text.matches(path, 7)
    assert not text.matches(path, 4) and not text.matches(path, None)
    assert FaultRule(route="marks").matches(path, 4)  # no `jobs`: every job


def _mark_given_up(box: Any, timeout: float) -> int:
    """Dequeue one job as executor `x` and send its markComplete, giving up on the answer
    after `timeout` seconds (as a killed executor does); the job's ID."""
    box.register_executor("x")
    job_id: int = box.enqueue({"repositoryName": ""})
    job = box.dequeue("x")
    assert job is not None
    with pytest.raises(httpx.ReadTimeout):
        box.client.post(
            "/.executors/queue/batches/markComplete",
            headers=box.job_headers(job, "x"),
            json={"executorName": "x", "jobId": job_id},
            timeout=timeout,
        )
    return job_id


def test_hold_answers_late_what_is_already_done(sandbox_factory: Any) -> None:
    box = sandbox_factory(faults=parse_faults("route=markComplete,hold=2s"))
    job_id = _mark_given_up(box, 0.5)
    # The caller gave up before the answer came; the mark had been made all the same.
    assert box.job(job_id)["state"] == "completed"
    (row,) = [r for r in read_audit(box.settings.data_dir) if r.route == "markComplete"]
    assert (row.status, row.fault) == (204, "hold")


def test_latency_call_abandoned_by_its_caller_does_nothing(sandbox_factory: Any) -> None:
    """The caller (a killed executor) goes away while its mark waits: nothing is marked, and
    the sandbox answers 499 instead of failing with ClientDisconnect."""
    box = sandbox_factory(faults=parse_faults("route=markComplete,latency=1s"))
    job_id = _mark_given_up(box, 0.3)

    def answered() -> list[Any]:
        return [r for r in read_audit(box.settings.data_dir) if r.route == "markComplete"]

    deadline = time.monotonic() + 5
    while not answered() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(r.status, r.fault) for r in answered()] == [(499, "")]
    assert box.job(job_id)["state"] == "processing"


@pytest.mark.parametrize(
    "spec",
    [
        "route=dequeue,error=1.5",
        "route=dequeue,error=0.6,drop=0.6",
        "route=dequeue,latency=soon",
        "route=dequeue,status=404",
        "error=0.3",
        "route=dequeue,path=x",
        "route=dequeue,bogus=1",
        "route=dequeue,error",
        '{"route": "dequeue"',
        "[1]",
        '{"path": "("}',
        "route=marks,jobs=3|x",
        "route=marks,hold=-1",
    ],
)
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_faults(spec)
