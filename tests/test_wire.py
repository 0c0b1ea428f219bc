"""Wire models against the literal bodies of Sourcegraph's own fixtures (spec §10.2)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import BaseModel

from executor import wire
from executor.wire import (
    AddExecutionLogEntryRequest,
    DequeueRequest,
    ExecutionLogEntry,
    HeartbeatRequest,
    HeartbeatRequestV1,
    HeartbeatResponse,
    Job,
    MarkCompleteRequest,
    MarkErroredRequest,
    QueueJobIDs,
    UpdateExecutionLogEntryRequest,
)

EX7 = """{"version":2,"id":1,"token":"","repositoryName":"my-repo","repositoryDirectory":"foo/bar",
"commit":"xyz","fetchTags":true,"shallowClone":true,"sparseCheckout":["a","b","c"],
"files":{"script1.sh":{"content":"aGVsbG8=","modifiedAt":"0001-01-01T00:00:00Z"},
"script2.py":{"bucket":"my-bucket","key":"file/key","modifiedAt":"2022-10-07T18:55:45.831031-06:00"}},
"dockerSteps":[{"image":"my-image","commands":["run"],"dir":"faz/baz","env":["FOO=BAR"]}],
"cliSteps":[{"command":["x","y","z"],"dir":"raz/daz","env":["BAZ=FAZ"]}],
"redactedValues":{"password":"foo"},"dockerAuthConfig":{}}"""

START = dt.datetime(2020, 4, 20, 15, 29, 17, tzinfo=dt.UTC)


def _compact(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def test_ex1_dequeue_body() -> None:
    body = DequeueRequest(executor_name="deadbeef", version="0.0.0+dev").to_wire()
    assert _compact(body) == '{"executorName":"deadbeef","version":"0.0.0+dev"}'


def test_production_dequeue_body_with_resources() -> None:
    body = DequeueRequest(
        executor_name="h-1", version="5.3.0", num_cpus=4, memory="12G", disk_space="20G"
    ).to_wire()
    assert _compact(body) == (
        '{"executorName":"h-1","version":"5.3.0","numCPUs":4,"memory":"12G","diskSpace":"20G"}'
    )


def test_ex2_multi_queue_dequeue_body() -> None:
    body = DequeueRequest(
        queues=["test_queue_one", "test_queue_two"], executor_name="deadbeef", version="0.0.0+dev"
    ).to_wire()
    assert _compact(body) == (
        '{"queues":["test_queue_one","test_queue_two"],'
        '"executorName":"deadbeef","version":"0.0.0+dev"}'
    )


def test_ex2_minimal_job_response() -> None:
    job = Job.model_validate({"id": 42, "queue": "test_queue_one"})
    assert job.files == {} and job.docker_steps == [] and job.record_uid == "42-test_queue_one"


def test_ex4_v1_job_round_trip() -> None:
    text = (
        '{"id":1,"token":"sometoken","repositoryName":"","repositoryDirectory":"",'
        '"commit":"","fetchTags":false,"shallowClone":false,"sparseCheckout":null,'
        '"files":{},"dockerSteps":null,"cliSteps":null,"redactedValues":null}'
    )
    job = Job.model_validate_json(text)
    assert job.version == 1 and job.token == "sometoken"
    assert _compact(job.to_wire()) == text


def test_ex5_v2_job_round_trip() -> None:
    text = (
        '{"version":2,"id":1,"token":"sometoken","repositoryName":"",'
        '"repositoryDirectory":"","commit":"","fetchTags":false,"shallowClone":false,'
        '"sparseCheckout":null,"files":{},"dockerSteps":null,"cliSteps":null,'
        '"redactedValues":null,"dockerAuthConfig":{}}'
    )
    assert _compact(Job.model_validate_json(text).to_wire()) == text


def test_ex7_full_v2_job() -> None:
    job = Job.model_validate_json(EX7)
    assert job.files["script1.sh"].content == b"hello"
    assert job.files["script2.py"].bucket == "my-bucket"
    assert job.docker_steps[0].env == ["FOO=BAR"]
    assert job.cli_steps[0].command == ["x", "y", "z"]
    assert job.redacted_values == {"password": "foo"}
    again = job.to_wire()
    assert again["files"]["script1.sh"] == {
        "content": "aGVsbG8=",
        "modifiedAt": "0001-01-01T00:00:00Z",
    }
    v1 = job.model_copy(update={"version": 1}).to_wire()
    assert v1["files"]["script1.sh"]["content"] == "hello"
    assert "version" not in v1 and "dockerAuthConfig" not in v1


def test_bad_base64_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not valid base64"):
        Job.model_validate({"version": 2, "id": 1, "files": {"a": {"content": "!!!"}}})


def test_legacy_string_files_and_case_insensitive_keys() -> None:
    job = Job.model_validate(
        {
            "ID": 3,
            "Token": "t",
            "Files": {"x.sh": "echo hi"},
            "DOCKERSTEPS": [{"Image": "i", "Commands": ["a"]}],
            "unknown": {"ignored": True},
        }
    )
    assert job.id == 3 and job.token == "t"
    assert job.files["x.sh"].content == b"echo hi"
    assert job.docker_steps[0].image == "i"


def test_docker_auth_config() -> None:
    job = Job.model_validate(
        {
            "version": 2,
            "id": 1,
            "dockerAuthConfig": {"auths": {"hub.docker.com": {"auth": "aHVudGVyOmh1bnRlcjI="}}},
        }
    )
    assert job.to_wire()["dockerAuthConfig"] == {
        "auths": {"hub.docker.com": {"auth": "aHVudGVyOmh1bnRlcjI="}}
    }


def test_ex8_add_log_entry_body() -> None:
    entry = ExecutionLogEntry(
        key="foo",
        command=["ls", "-a"],
        start_time=START,
        exit_code=123,
        out="<log payload>",
        duration_ms=23123,
    )
    body = AddExecutionLogEntryRequest(executor_name="deadbeef", job_id=42, entry=entry)
    assert _compact(body.to_wire()) == (
        '{"executorName":"deadbeef","jobId":42,"key":"foo","command":["ls","-a"],'
        '"startTime":"2020-04-20T15:29:17Z","exitCode":123,"out":"<log payload>",'
        '"durationMs":23123}'
    )


def test_running_entry_omits_exit_code_out_and_duration() -> None:
    entry = ExecutionLogEntry(
        key="setup.git.init", command=["git", "init"], start_time=START.replace(microsecond=123456)
    )
    assert _compact(entry.to_wire()) == (
        '{"key":"setup.git.init","command":["git","init"],'
        '"startTime":"2020-04-20T15:29:17.123456Z"}'
    )
    pseudo = ExecutionLogEntry(key="teardown.fs", command=None, start_time=START, exit_code=0)
    assert pseudo.to_wire()["command"] is None and pseudo.to_wire()["exitCode"] == 0


def test_ex9_update_log_entry_body() -> None:
    entry = ExecutionLogEntry(
        key="foo",
        command=["ls", "-a"],
        start_time=START,
        exit_code=123,
        out="<log payload>",
        duration_ms=23123,
    )
    body = UpdateExecutionLogEntryRequest(
        executor_name="deadbeef", job_id=42, entry_id=99, entry=entry
    )
    text = _compact(body.to_wire())
    assert text == (
        '{"executorName":"deadbeef","jobId":42,"entryId":99,"key":"foo",'
        '"command":["ls","-a"],"startTime":"2020-04-20T15:29:17Z","exitCode":123,'
        '"out":"<log payload>","durationMs":23123}'
    )
    parsed = UpdateExecutionLogEntryRequest.model_validate_json(text)
    assert parsed.entry_id == 99 and parsed.entry.out == "<log payload>"


def test_ex10_ex11_mark_bodies() -> None:
    assert (
        _compact(MarkCompleteRequest(executor_name="deadbeef", job_id=42).to_wire())
        == '{"executorName":"deadbeef","jobId":42}'
    )
    assert (
        _compact(
            MarkErroredRequest(executor_name="deadbeef", job_id=42, error_message="OH NO").to_wire()
        )
        == '{"executorName":"deadbeef","jobId":42,"errorMessage":"OH NO"}'
    )


TELEMETRY = {
    "os": "test-os",
    "architecture": "test-architecture",
    "docker_version": "test-docker-version",
    "executor_version": "test-executor-version",
    "git_version": "test-git-version",
    "ignite_version": "test-ignite-version",
    "src_cli_version": "test-src-cli-version",
}
TELEMETRY_JSON = (
    '"os":"test-os","architecture":"test-architecture",'
    '"dockerVersion":"test-docker-version","executorVersion":"test-executor-version",'
    '"gitVersion":"test-git-version","igniteVersion":"test-ignite-version",'
    '"srcCliVersion":"test-src-cli-version","prometheusMetrics":""'
)


def test_ex12_single_queue_heartbeat() -> None:
    body = HeartbeatRequestV1(executor_name="deadbeef", job_ids=[1, 2, 3], **TELEMETRY)
    assert _compact(body.to_wire()) == (
        '{"version":"V2","executorName":"deadbeef","jobIds":[1,2,3],' + TELEMETRY_JSON + "}"
    )
    idle = HeartbeatRequestV1(executor_name="deadbeef").to_wire()
    assert idle["jobIds"] is None


def test_ex13_multi_queue_heartbeat() -> None:
    body = HeartbeatRequest(
        executor_name="deadbeef",
        job_ids_by_queue=[
            QueueJobIDs(queue_name="test_queue_one", job_ids=["1", "3"]),
            QueueJobIDs(queue_name="test_queue_two", job_ids=["2"]),
        ],
        queue_names=["test_queue_one", "test_queue_two"],
        **TELEMETRY,
    )
    assert _compact(body.to_wire()) == (
        '{"version":"","executorName":"deadbeef","jobIdsByQueue":[{"queueName":'
        '"test_queue_one","jobIds":["1","3"]},{"queueName":"test_queue_two","jobIds":["2"]}],'
        '"queueNames":["test_queue_one","test_queue_two"],' + TELEMETRY_JSON + "}"
    )


def test_ex14_ping_bodies() -> None:
    empty = (
        '"os":"","architecture":"","dockerVersion":"","executorVersion":"",'
        '"gitVersion":"","igniteVersion":"","srcCliVersion":"","prometheusMetrics":""'
    )
    assert (
        _compact(HeartbeatRequest(executor_name="h").to_wire())
        == '{"version":"","executorName":"h",' + empty + "}"
    )
    assert (
        _compact(
            HeartbeatRequest(executor_name="h", queue_names=["batches", "codeintel"]).to_wire()
        )
        == '{"version":"","executorName":"h","queueNames":["batches","codeintel"],' + empty + "}"
    )


@pytest.mark.parametrize(
    ("text", "known", "cancel"),
    [
        ('{"knownIds":["42","7"],"cancelIds":null}', ["42", "7"], []),
        ('{"knownIds":null,"cancelIds":["42","7"]}', [], ["42", "7"]),
        ('{"knownIDs":[42,7],"cancelIDs":[1.0]}', ["42", "7"], ["1"]),
        (
            '{"knownIds":["42-codeintel","43-batches"],"cancelIds":["7-codeintel"]}',
            ["42-codeintel", "43-batches"],
            ["7-codeintel"],
        ),
    ],
)
def test_heartbeat_responses(text: str, known: list[str], cancel: list[str]) -> None:
    parsed = HeartbeatResponse.model_validate_json(text)
    assert (parsed.known_ids, parsed.cancel_ids) == (known, cancel)


def test_record_uids() -> None:
    assert wire.record_uid(42, "") == "42"
    assert wire.record_uid(42, "batches") == "42-batches"
    assert wire.parse_record_uid("42-batches") == (42, "batches")
    with pytest.raises(ValueError):
        wire.parse_record_uid("abc")


def test_every_field_has_an_explicit_alias() -> None:
    for name in wire.__all__:
        model = getattr(wire, name)
        if isinstance(model, type) and issubclass(model, BaseModel):
            for field_name, info in model.model_fields.items():
                if field_name == "entry":
                    continue  # flattened into the request body
                assert info.alias, f"{name}.{field_name} has no wire alias"


def test_an_entry_in_pieces_is_never_encoded_as_anything_but_one_string() -> None:
    """`to_wire` of an entry holding its output in pieces gives `OutputPieces`, which plain
    `json` refuses (only the API client, which streams it as one string, takes it)."""
    import datetime as dt
    import json

    from executor.wire import ExecutionLogEntry, OutputPieces

    start = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
    entry = ExecutionLogEntry.with_output_parts(("a\n", "b\n"), key="k", start_time=start)
    wire = entry.to_wire()
    assert list(wire) == ["key", "command", "startTime", "out"]  # in Go field order
    assert isinstance(wire["out"], OutputPieces) and wire["out"].parts == ("a\n", "b\n")
    assert entry.out == "" and entry.output == "a\nb\n"
    with pytest.raises(TypeError):
        json.dumps(wire)
    # A payload cannot set the pieces: they are not a field.
    decoded = ExecutionLogEntry.model_validate(
        {"key": "k", "startTime": "2026-12-03T00:00:00Z", "out": "x", "_out_parts": ["y"]}
    )
    assert decoded.output == "x" and decoded.output_parts == ("x",)
