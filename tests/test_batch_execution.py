"""input.json, AfterStepResult and JSON log events: Go-exact bytes and the server's parser."""

from __future__ import annotations

import base64
import datetime as dt
import json

from executor.batch.execution import (
    AfterStepResult,
    Changes,
    WorkspacesExecutionInput,
    cache_after_step_result_metadata,
    cache_entries,
    format_event,
    parse_log_events,
    task_step_metadata,
    task_step_skipped_metadata,
)
from executor.batch.gojson import format_float, marshal, rfc3339nano

NOW_NS = int(dt.datetime(2024, 5, 1, 12, 0, 1, tzinfo=dt.UTC).timestamp()) * 10**9

INPUT_JSON = (
    '{"BatchChangeAttributes":{"Name":"my-bc","Description":"desc"},'
    '"repository":{"id":"UmVwb3NpdG9yeTox","name":"github.com/sourcegraph/sourcegraph"},'
    '"branch":{"name":"refs/heads/base-branch","target":{"oid":"d34db33f"}},'
    '"path":"a/b/c","onlyFetchWorkspace":true,'
    '"steps":[{"run":"echo lol \\u003e\\u003e readme.md","container":"alpine:3","env":["FOO"]}],'
    '"searchResultPaths":["a/b/c/foobar.go"],"cachedStepResultFound":true,'
    '"cachedStepResult":{"version":2,"changedFiles":{"modified":["README.md"],"added":null,'
    '"deleted":null,"renamed":null},"stdout":"hi\\n","stderr":"","stepIndex":0,'
    '"diff":"ZGlmZg==","outputs":{"o":"v"},"skipped":false},'
    '"skippedSteps":{"1":{}}}'
)


def test_input_json_round_trips_byte_for_byte() -> None:
    parsed = WorkspacesExecutionInput.model_validate_json(INPUT_JSON)
    assert parsed.batch_change_attributes.name == "my-bc"
    assert parsed.repository.name == "github.com/sourcegraph/sourcegraph"
    assert parsed.branch.target.oid == "d34db33f"
    assert parsed.steps is not None and parsed.steps[0].env.outer_vars() == ["FOO"]
    assert parsed.steps[0].run == "echo lol >> readme.md"
    assert parsed.cached_step_result.diff == b"diff"
    assert parsed.skipped_step_indices() == frozenset({1})
    assert parsed.to_json() == INPUT_JSON


def test_input_json_accepts_lowercase_attributes_like_go() -> None:
    parsed = WorkspacesExecutionInput.model_validate(
        {"BatchChangeAttributes": {"name": "n", "description": "d"}}
    )
    assert parsed.batch_change_attributes.name == "n"
    assert parsed.to_json().startswith('{"BatchChangeAttributes":{"Name":"n","Description":"d"}')


def test_after_step_result_v2_and_v1_wire_forms() -> None:
    v2 = AfterStepResult(
        version=2,
        changed_files=Changes(modified=["a.go"]),
        stdout="out\n",
        stderr="",
        step_index=3,
        diff=b"\x00binary\xff",
        outputs={"n": 1.0, "f": 2.5},
    )
    text = v2.to_json()
    assert text == (
        '{"version":2,"changedFiles":{"modified":["a.go"],"added":null,"deleted":null,'
        '"renamed":null},"stdout":"out\\n","stderr":"","stepIndex":3,'
        '"diff":"' + base64.b64encode(b"\x00binary\xff").decode() + '",'
        '"outputs":{"f":2.5,"n":1},"skipped":false}'
    )
    assert AfterStepResult.model_validate_json(text).diff == b"\x00binary\xff"
    v1 = AfterStepResult(step_index=0, diff=b"--- a\n+++ a\n", outputs={})
    assert v1.to_json() == (
        '{"changedFiles":{"modified":null,"added":null,"deleted":null,"renamed":null},'
        '"stdout":"","stderr":"","stepIndex":0,"diff":"--- a\\n+++ a\\n","outputs":{}}'
    )
    assert AfterStepResult.model_validate_json(v1.to_json()).diff == b"--- a\n+++ a\n"


def test_skipped_marker_matches_batcheshelper() -> None:
    marker = AfterStepResult(version=2, skipped=True)
    assert marker.to_json() == (
        '{"version":2,"changedFiles":{"modified":null,"added":null,"deleted":null,'
        '"renamed":null},"stdout":"","stderr":"","stepIndex":0,"diff":null,'
        '"outputs":null,"skipped":true}'
    )


def test_event_timestamp_is_utc_millis_with_trimmed_zeros() -> None:
    line = format_event("TASK_STEP", "STARTED", None, now_ns=NOW_NS + 123_456_789)
    assert line == (
        '{"operation":"TASK_STEP","timestamp":"2024-05-01T12:00:01.123Z","status":"STARTED"}'
    )
    assert '"timestamp":"2024-05-01T12:00:01.12Z"' in format_event(
        "TASK_STEP", "SUCCESS", now_ns=NOW_NS + 120_999_999
    )
    assert '"timestamp":"2024-05-01T12:00:01Z"' in format_event(
        "TASK_STEP", "SUCCESS", now_ns=NOW_NS + 999_999
    )


def test_task_step_metadata_shapes() -> None:
    started = task_step_metadata(step=1, env={"FOO": "bar"})
    assert marshal(started) == '{"version":2,"step":1,"env":{"FOO":"bar"}}'
    success = task_step_metadata(step=1, diff=b"d", outputs={"o": "x"})
    assert marshal(success) == '{"version":2,"step":1,"diff":"ZA==","outputs":{"o":"x"}}'
    v1 = task_step_metadata(version=1, task_id="t", step=2, diff=b"d")
    assert marshal(v1) == '{"taskID":"t","step":2,"diff":"d"}'
    failure = task_step_metadata(step=1, error="boom", exit_code=2)
    assert marshal(failure) == '{"version":2,"step":1,"exitCode":2,"error":"boom"}'
    assert marshal(task_step_skipped_metadata(step=2)) == '{"step":2}'


def test_server_parser_reads_cache_events_and_ignores_noise() -> None:
    result = AfterStepResult(version=2, step_index=0, diff=b"diff", outputs={})
    cache_line = format_event(
        "CACHE_AFTER_STEP_RESULT",
        "SUCCESS",
        cache_after_step_result_metadata("abc-step-0", result),
        now_ns=NOW_NS,
    )
    step_line = format_event("TASK_STEP", "SUCCESS", task_step_metadata(step=1), now_ns=NOW_NS)
    out = "\n".join(
        [
            "stderr: something on stderr",
            'stdout: Rendering step output o "x": "x"',
            "stdout: " + step_line,
            "stdout: {not json",
            'stdout: {"operation":"BOGUS","timestamp":"2024-05-01T12:00:01Z","status":"SUCCESS"}',
            'stdout: {"operation":"TASK_STEP","timestamp":"yesterday","status":"SUCCESS"}',
            "  stdout: " + cache_line,
            "stdout: " + cache_line,
            "",
        ]
    )
    events = parse_log_events(out)
    assert [e.operation for e in events] == ["TASK_STEP", "CACHE_AFTER_STEP_RESULT"]
    entries = cache_entries(events)
    assert len(entries) == 1
    key, value = entries[0]
    assert key == "abc-step-0"
    assert value.diff == b"diff" and value.version == 2
    assert json.loads(cache_line)["metadata"]["value"]["diff"] == "ZGlmZg=="


def test_go_float_and_time_formatting() -> None:
    assert format_float(1.0) == "1"
    assert format_float(2.5) == "2.5"
    assert format_float(1e21) == "1e+21"
    assert format_float(1e20) == "100000000000000000000"
    assert format_float(0.000001) == "0.000001"
    assert format_float(1e-7) == "1e-7"
    assert format_float(-123.456) == "-123.456"
    assert rfc3339nano(NOW_NS + 7) == "2024-05-01T12:00:01.000000007Z"
    assert marshal("\u2028<&>\x01\b") == '"\\u2028\\u003c\\u0026\\u003e\\u0001\\b"'
    assert marshal({"b": 1, "a": [True, None]}) == '{"a":[true,null],"b":1}'
