"""The sandbox with `native_server_side_execution`: V2 job payloads as Sourcegraph's transform
builds them (`transformRecord`, `job.Version == 2`), and results read from `*.post` entries.
No daemon: the test plays the executor over the real queue API."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from test_sandbox_batch import (
    EXECUTOR,
    README_DIFF,
    SPEC,
    _applied,
    _dequeue,
    _input,
    _key,
    _log_out,
    _result,
)

HELPER = "executor-batcheshelper:latest"
SECRET_ENV = ["GITHUB_TOKEN=t0ps3cret"]


@pytest.fixture
def v2(sandbox_factory: Any) -> Any:
    box = sandbox_factory(native_server_side_execution=True)
    response = box.client.post("/.sandbox/repos/samples", headers=box.admin_headers)
    assert response.status_code == 201, response.text
    box.register_executor(EXECUTOR)
    return box


def _steps(index: int, run_dir: str, rel: str) -> list[dict[str, Any]]:
    run = (
        f'(exec "{rel}/step{index}.sh" | tee {rel}/stdout{index}.log) 3>&1 1>&2 2>&3'
        f" | tee {rel}/stderr{index}.log"
    )
    return [
        {
            "key": f"step.{index}.pre",
            "image": HELPER,
            "commands": [f"batcheshelper pre {index}"],
            "dir": ".",
            "env": SECRET_ENV,
        },
        {
            "key": f"step.{index}.run",
            "image": "executor-busybox:latest",
            "commands": ["{ set +x; } 2>/dev/null", "{ set -eo pipefail; } 2>/dev/null", run],
            "dir": run_dir,
            "env": [],
        },
        {
            "key": f"step.{index}.post",
            "image": HELPER,
            "commands": [f"batcheshelper post {index}"],
            "dir": ".",
            "env": SECRET_ENV,
        },
    ]


def _post(box: Any, job: dict[str, Any], index: int, out: str, op: str = "markComplete") -> None:
    q = "/.executors/queue/batches"
    entry = {
        "key": f"step.docker.step.{index}.post",
        "command": ["docker", "run"],
        "startTime": "2024-01-01T00:00:00Z",
        "exitCode": 0,
        "out": out,
        "durationMs": 5,
    }
    body = {"executorName": EXECUTOR, "jobId": job["id"], "entry": entry}
    response = box.client.post(f"{q}/addExecutionLogEntry", headers=box.admin_headers, json=body)
    assert response.status_code == 200, response.text
    done: dict[str, Any] = {"executorName": EXECUTOR, "jobId": job["id"]}
    if op != "markComplete":
        done["errorMessage"] = "step failed"
    response = box.client.post(f"{q}/{op}", headers=box.admin_headers, json=done)
    assert response.status_code == 204, response.text


def test_v2_payload_pre_run_post_per_step(v2: Any) -> None:
    status = _applied(v2, SPEC, secrets={"GITHUB_TOKEN": "t0ps3cret"})
    job = _dequeue(v2)
    assert job["id"] == status["workspaces"][0]["job_id"]
    assert job.get("cliSteps") in (None, [])
    assert job["dockerSteps"] == _steps(0, "repository", "..") + _steps(1, "repository", "..")
    assert job["redactedValues"] == {"t0ps3cret": "${{ secrets.GITHUB_TOKEN }}"}
    assert sorted(job["files"]) == ["input.json"]
    assert _input(job).cached_step_result_found is False


def test_v2_results_from_post_entries_and_partial_resume(v2: Any) -> None:
    secrets = {"GITHUB_TOKEN": "t0ps3cret"}
    _applied(v2, SPEC, secrets=secrets)
    job = _dequeue(v2)
    first = _result(0, README_DIFF, outputs={"said": "hi\n"})
    out = _log_out([(_key(_input(job), 0, tuple(SECRET_ENV)), first)])
    _post(v2, job, 0, out, "markFailed")  # step 2 failed: step 1's result is cached
    changed = SPEC.replace("echo two", "echo three")
    status = _applied(v2, changed, secrets=secrets)
    [ws] = status["workspaces"]
    assert ws["cache"] == "partial"
    resumed = _dequeue(v2)
    assert resumed["dockerSteps"][0] == {
        "key": "apply-diff",
        "image": HELPER,
        "commands": ["set -e", "git apply -p0 ../state.diff", "git add --all"],
        "dir": "repository",
        "env": [],
    }
    assert resumed["dockerSteps"][1:] == _steps(1, "repository", "..")
    assert base64.b64decode(resumed["files"]["state.diff"]["content"]) == README_DIFF
    cached = json.loads(base64.b64decode(resumed["files"]["step0.json"]["content"]))
    assert cached["stepIndex"] == 0 and cached["outputs"] == {"said": "hi\n"}
    last = _result(1, README_DIFF, outputs={"said": "hi\n"})
    _post(v2, resumed, 1, _log_out([(_key(_input(resumed), 1, tuple(SECRET_ENV)), last)]))
    done = v2._call("GET", f"/.sandbox/batches/{status['id']}")
    assert done["workspaces"][0]["state"] == "completed"
    [item] = done["changeset_specs"]
    assert item["spec"]["body"] == "said hi"


def test_workspace_path_and_static_skips_shape_the_steps(v2: Any) -> None:
    spec = """
name: paths
on:
  - repository: github.com/sandbox/monorepo
workspaces:
  - rootAtLocationOf: package.json
    in: github.com/sandbox/monorepo
steps:
  - run: echo skipped
    container: executor-busybox:latest
    if: ${{ eq repository.name "other" }}
  - run: echo one
    container: executor-busybox:latest
changesetTemplate:
  title: t
  body: b
  branch: b
  commit:
    message: m
"""
    status = _applied(v2, spec)
    assert [w["path"] for w in status["workspaces"]] == ["services/api", "services/web"]
    job = _dequeue(v2)
    run_dir = "repository/" + _input(job).path
    no_env = [dict(s, env=[] if s["env"] else s["env"]) for s in _steps(1, run_dir, "../../..")]
    assert job["dockerSteps"] == no_env
    assert json.loads(base64.b64decode(job["files"]["input.json"]["content"]))["skippedSteps"] == {
        "0": {}
    }
