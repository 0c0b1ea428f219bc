"""Hostile input, pure parts (issue 6 item 3): malformed job bodies, wrong types, bad base64,
`null` in every field, and bad `EXECUTOR_*` values.

Every malformed job must be refused by the wire decoder with a `ValueError` that names the bad
field (the API client turns it into `ApiDecodeError("Dequeue", "malformed job payload: …")`),
never another exception. Bad configuration exits 2 naming the variable (a real subprocess).
The daemon-side cases (files, images, env, limits, frontends) are in
`tests/e2e/test_hostile_e2e.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from executor.wire import Job

_V2 = {"id": 1, "version": 2}
_STEP = {"image": "alpine", "commands": ["true"], "dir": ".", "env": []}

MALFORMED: dict[str, tuple[Any, str]] = {
    "id-string": ({"id": "abc"}, "id"),
    "id-null": ({"id": None}, "id"),
    "id-float": ({"id": 1.5}, "id"),
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


# Go leaves a JSON null at the zero value; our models accept it for lists, maps and objects
# (what Go's marshaller itself writes as null) and refuse it, naming the field, for scalars.
NULLABLE = ["sparseCheckout", "files", "dockerSteps", "cliSteps", "redactedValues"]
NULLABLE += ["dockerAuthConfig"]
SCALARS = ["version", "token", "queue", "repositoryName", "repositoryDirectory", "commit"]
SCALARS += ["fetchTags", "shallowClone"]


@pytest.mark.parametrize("field", NULLABLE)
def test_null_collection_decodes_empty(field: str) -> None:
    job = Job.model_validate({"id": 7, field: None})
    assert job.id == 7 and job.files == {} and job.docker_steps == [] and job.redacted_values == {}


@pytest.mark.parametrize("field", SCALARS)
def test_null_scalar_is_refused_naming_it(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Job.model_validate({"id": 7, field: None})


@pytest.mark.parametrize("field", ["commands", "env"])
def test_null_step_lists_decode_empty(field: str) -> None:
    step = Job.model_validate({"id": 1, "dockerSteps": [{**_STEP, field: None}]}).docker_steps[0]
    assert (step.commands if field == "commands" else step.env) == []


@pytest.mark.parametrize("field", ["key", "image", "dir"])
def test_null_step_scalars_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Job.model_validate({"id": 1, "dockerSteps": [{**_STEP, field: None}]})


BAD_CONFIG = {
    "EXECUTOR_MAXIMUM_NUM_JOBS": "abc",
    "EXECUTOR_QUEUE_POLL_INTERVAL": "soon",
    "EXECUTOR_JOB_MEMORY": "12Q",
    "EXECUTOR_JOB_NUM_CPUS": "x",
    "EXECUTOR_DOCKER_ADD_HOST_GATEWAY": "maybe",
    "EXECUTOR_QUEUE_NAME": "no-such-queue",
    "EXECUTOR_FRONTEND_URL": "ftp://x",
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
