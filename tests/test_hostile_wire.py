"""Hostile input, pure parts (issue 6 item 3): malformed job bodies, wrong types, bad base64,
`null` in every field, and bad `EXECUTOR_*` values.

Every malformed job must be refused by the wire decoder with a `ValueError` that names the bad
field and quotes no value from the payload, never another exception; one that still names its
job is a `MalformedJob` carrying that identity (the daemon marks it failed:
`tests/e2e/test_malformed_job_e2e.py`). `null` leaves a scalar field at Go's zero value. Bad
configuration exits 2 naming the variable (a real subprocess). The daemon-side cases (files,
images, env, limits, frontends) are in `tests/e2e/test_hostile_e2e.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from executor.wire import Job, MalformedJob, decode_job, job_identity

_V2 = {"id": 1, "version": 2}
_STEP = {"image": "alpine", "commands": ["true"], "dir": ".", "env": []}

MALFORMED: dict[str, tuple[Any, str]] = {
    "id-string": ({"id": "abc"}, "id"),
    "id-null": ({"id": None}, "id"),
    "id-float": ({"id": 1.5}, "id"),
    "id-float-integral": ({"id": 1.0}, "id"),
    "id-true": ({"id": True}, "id"),
    "id-false": ({"id": False}, "id"),
    "id-numeric-string": ({"id": "42"}, "id"),
    "id-record-uid": ({"id": "42-batches"}, "id"),
    "id-list": ({"id": []}, "id"),
    "id-missing": ({}, "id"),
    "steps-string": ({"id": 1, "dockerSteps": "x"}, "dockerSteps"),
    "steps-int-item": ({"id": 1, "dockerSteps": [1]}, "dockerSteps"),
    "steps-null-item": ({"id": 1, "dockerSteps": [None]}, "dockerSteps"),
    "image-int": ({"id": 1, "dockerSteps": [{**_STEP, "image": 1}]}, "image"),
    "commands-string": ({"id": 1, "dockerSteps": [{**_STEP, "commands": "echo"}]}, "commands"),
    "commands-ints": ({"id": 1, "dockerSteps": [{**_STEP, "commands": [1]}]}, "commands"),
    "env-object": ({"id": 1, "dockerSteps": [{**_STEP, "env": {"A": "b"}}]}, "env"),
    "cli-steps-string": ({"id": 1, "cliSteps": "x"}, "cliSteps"),
    "files-list": ({"id": 1, "files": []}, "files"),
    "file-content-int": ({"id": 1, "files": {"a": {"content": 1}}}, "content"),
    "file-modified-garbage": (
        {"id": 1, "files": {"a": {"content": "x", "modifiedAt": "yesterday"}}},
        "modifiedAt",
    ),
    "v2-base64-garbage": ({**_V2, "files": {"a": {"content": "!!!"}}}, "base64"),
    "v2-base64-bad-padding": (
        {**_V2, "files": {"a": {"content": "abc"}}},
        "base64",
    ),
    "v2-base64-bare-string": ({**_V2, "files": {"a": "%%%"}}, "base64"),
    "redacted-value-int": ({"id": 1, "redactedValues": {"a": 1}}, "redactedValues"),
    "redacted-list": ({"id": 1, "redactedValues": ["a"]}, "redactedValues"),
    "commit-list": ({"id": 1, "commit": ["x"]}, "commit"),
    "shallow-clone-string": ({"id": 1, "shallowClone": "maybe"}, "shallowClone"),
    "shallow-clone-string-true": ({"id": 1, "shallowClone": "true"}, "shallowClone"),
    "fetch-tags-int": ({"id": 1, "fetchTags": 1}, "fetchTags"),
    "version-bool": ({"id": 1, "version": True}, "version"),
    "version-numeric-string": ({"id": 1, "version": "2"}, "version"),
    "file-entry-null": ({"id": 1, "files": {"a": None}}, "files"),
    "redacted-value-null": ({"id": 1, "redactedValues": {"a": None}}, "redactedValues"),
    "commands-null-item": ({"id": 1, "dockerSteps": [{**_STEP, "commands": [None]}]}, "commands"),
    "sparse-checkout-string": ({"id": 1, "sparseCheckout": "a"}, "sparseCheckout"),
    "auth-config-string": ({"id": 1, "dockerAuthConfig": "x"}, "dockerAuthConfig"),
    "version-string": ({"id": 1, "version": "two"}, "version"),
    "token-int": ({"id": 1, "token": 5}, "token"),
    "repository-object": ({"id": 1, "repositoryName": {}}, "repositoryName"),
    "body-list": ([1], "Job"),
    "body-string": ("job", "Job"),
}


@pytest.mark.parametrize(("body", "field"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_job_is_refused_naming_the_field(body: Any, field: str) -> None:
    with pytest.raises(ValueError) as caught:  # a ValidationError is a ValueError
        Job.model_validate(body)
    assert field.lower() in str(caught.value).lower()


# Go leaves a JSON null at the zero value: lists, maps and objects empty, strings "", booleans
# false, numbers 0. Only the job `id` refuses null (a job without an ID cannot be marked), and a
# null *element* of a list or map is refused (no Go marshaller writes one).
NULLABLE = ["sparseCheckout", "files", "dockerSteps", "cliSteps", "redactedValues"]
NULLABLE += ["dockerAuthConfig"]
SCALARS: dict[str, tuple[str, Any]] = {
    "version": ("version", 0),
    "token": ("token", ""),
    "queue": ("queue", ""),
    "repositoryName": ("repository_name", ""),
    "repositoryDirectory": ("repository_directory", ""),
    "commit": ("commit", ""),
    "fetchTags": ("fetch_tags", False),
    "shallowClone": ("shallow_clone", False),
}


@pytest.mark.parametrize("field", NULLABLE)
def test_null_collection_decodes_empty(field: str) -> None:
    job = Job.model_validate({"id": 7, field: None})
    assert job.id == 7 and job.files == {} and job.docker_steps == [] and job.redacted_values == {}


@pytest.mark.parametrize(("field", "attr_zero"), SCALARS.items(), ids=SCALARS.keys())
def test_null_scalar_decodes_to_go_zero_value(field: str, attr_zero: tuple[str, Any]) -> None:
    attr, zero = attr_zero
    job = decode_job({"id": 7, field: None})
    value = getattr(job, attr)
    assert value == zero and type(value) is type(zero)


def test_null_everywhere_a_go_frontend_could_put_it_decodes() -> None:
    body = {
        "version": 2,
        "id": 9,
        "token": None,
        "files": {"a": {"content": None, "bucket": None, "key": None, "modifiedAt": None}},
        "dockerSteps": [{"key": None, "image": None, "commands": None, "dir": None, "env": None}],
        "cliSteps": [{"key": None, "command": None, "dir": None, "env": None}],
        "dockerAuthConfig": {"auths": {"r": {"auth": None}}},
    }
    job = decode_job(body)
    assert job.files["a"].content == b"" and job.files["a"].modified_at.year == 1
    assert job.docker_steps[0].image == "" and job.docker_steps[0].commands == []
    assert job.cli_steps[0].command == [] and job.docker_auth_config.auths["r"].auth == ""
    assert job.to_wire()["files"] == {"a": {"modifiedAt": "0001-01-01T00:00:00Z"}}


@pytest.mark.parametrize("field", ["commands", "env"])
def test_null_step_lists_decode_empty(field: str) -> None:
    step = Job.model_validate({"id": 1, "dockerSteps": [{**_STEP, field: None}]}).docker_steps[0]
    assert (step.commands if field == "commands" else step.env) == []


@pytest.mark.parametrize("field", ["key", "image", "dir"])
def test_null_step_scalars_decode_empty(field: str) -> None:
    step = Job.model_validate({"id": 1, "dockerSteps": [{**_STEP, field: None}]}).docker_steps[0]
    assert getattr(step, field) == ""


def test_null_id_is_still_refused() -> None:
    with pytest.raises(ValueError, match=r"^id: "):
        decode_job({"id": None, "token": "t"})


def test_integer_id_still_decodes() -> None:
    assert decode_job({"id": 42}).id == 42
    assert decode_job({"id": 42, "queue": "batches"}).record_uid == "42-batches"


# --- a malformed job that still names itself ----------------------------------------------

TOKEN = "f" * 40
SECRET = "s3cret-value-never-shown"


def test_malformed_job_with_an_id_is_identified() -> None:
    body = {"id": 5, "token": TOKEN, "queue": "batches", "dockerSteps": [{**_STEP, "image": 1}]}
    with pytest.raises(MalformedJob) as caught:
        decode_job(body)
    err = caught.value
    assert (err.job.id, err.job.token, err.job.queue) == (5, TOKEN, "batches")
    assert err.job.docker_steps == [] and err.job.files == {}
    assert err.reason == "dockerSteps.0.image: Input should be a valid string"
    assert str(err) == err.reason


@pytest.mark.parametrize(
    "body",
    [
        {"id": "5", "dockerSteps": "x"},
        {"id": True, "dockerSteps": "x"},
        {"dockerSteps": "x"},
        {"id": 5, "token": 7, "dockerSteps": "x"},
        {"id": 5, "queue": ["batches"], "dockerSteps": "x"},
        [{"id": 5}],
        None,
    ],
    ids=["id-string", "id-bool", "id-missing", "token-int", "queue-list", "list", "null"],
)
def test_malformed_job_without_a_readable_identity_is_a_plain_error(body: Any) -> None:
    assert job_identity(body) is None
    with pytest.raises(ValueError) as caught:
        decode_job(body)
    assert not isinstance(caught.value, MalformedJob)


def test_null_token_and_queue_still_identify_the_job() -> None:
    job = job_identity({"id": 5, "token": None, "queue": None, "dockerSteps": "x"})
    assert job is not None and (job.id, job.token, job.queue) == (5, "", "")
    assert job_identity({"ID": 6, "Token": TOKEN}) == Job(id=6, token=TOKEN)


@pytest.mark.parametrize(
    "body",
    [
        {"id": 5, "token": TOKEN, "redactedValues": {SECRET: 1}},
        {"id": 5, "token": TOKEN, "redactedValues": {SECRET: None}},
        {"id": 5, "token": TOKEN, "redactedValues": {"x": SECRET, SECRET: ["a"]}},
        {"id": 5, "token": TOKEN, "redactedValues": {SECRET: "x"}, "files": {SECRET: 1}},
        {"id": 5, "token": TOKEN, "commit": {TOKEN: SECRET}},
        {"id": 5, "token": TOKEN, "dockerSteps": [{**_STEP, "env": [SECRET, 1]}]},
        {"id": 5, "token": TOKEN, "redactedValues": {SECRET: "x"}, "version": SECRET},
    ],
    ids=["key", "null-value", "value-and-key", "file-path", "object", "env-item", "version"],
)
def test_malformed_job_messages_carry_no_secret(body: Any) -> None:
    with pytest.raises(MalformedJob) as caught:
        decode_job(body)
    text = f"{caught.value} {caught.value!r} {caught.value.args}"
    assert SECRET not in text and TOKEN not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_message_counts_further_problems() -> None:
    with pytest.raises(MalformedJob, match=r"^commit: .* \(and 2 more problems\)$"):
        decode_job({"id": 5, "commit": 1, "fetchTags": "x", "dockerSteps": "x"})


BAD_CONFIG = {
    "EXECUTOR_MAXIMUM_NUM_JOBS": "abc",
    "EXECUTOR_QUEUE_POLL_INTERVAL": "soon",
    "EXECUTOR_JOB_MEMORY": "12Q",
    "EXECUTOR_JOB_NUM_CPUS": "x",
    "EXECUTOR_DOCKER_ADD_HOST_GATEWAY": "maybe",
    "EXECUTOR_QUEUE_NAME": "no-such-queue",
    "EXECUTOR_FRONTEND_URL": "ftp://x",
    # Out of range (the full table is in tests/test_config.py).
    "EXECUTOR_METRICS_PORT": "99999",
    "EXECUTOR_JOB_PIDS_LIMIT": "-1",
    "EXECUTOR_HEARTBEAT_INTERVAL": "0",
    # The password pasted into the wrong variable is still never shown.
    "EXECUTOR_MAX_ACTIVE_TIME": "s3cret-hostile-password",
}


@pytest.mark.parametrize(("name", "value"), BAD_CONFIG.items(), ids=BAD_CONFIG.keys())
def test_bad_executor_value_exits_2_naming_it(name: str, value: str) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "EXECUTOR_FRONTEND_URL": "http://127.0.0.1:9",
        "EXECUTOR_FRONTEND_PASSWORD": "s3cret-hostile-password",
        "EXECUTOR_QUEUE_NAME": "batches",
        name: value,
    }
    done = subprocess.run(
        [sys.executable, "-m", "executor", "validate", "--config-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    output = done.stdout + done.stderr
    assert name in output and "s3cret-hostile-password" not in output
