"""The `--faults` spec (`executor.sandbox.faults.parse_faults`): good specs and refused ones."""

from __future__ import annotations

import pytest

from executor.sandbox.faults import FaultRule, FaultSpecError, parse_faults


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
    ],
)
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_faults(spec)
