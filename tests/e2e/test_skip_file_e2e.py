"""The batches `.pre` protocol: a step whose key ends in `.pre` may write `skip.json`
(`{"nextStep": "<key>"}`) in its directory; the steps before that key are not run, and the file
is removed (Sourcegraph's `cmd/executor/internal/worker/runner` with batcheshelper's `pre`).
A real daemon runs the job in Docker against the sandbox.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "executor-busybox:latest"


def _step(key: str, command: str) -> dict[str, Any]:
    return {"key": key, "image": IMAGE, "commands": [command], "dir": "."}


def test_skip_json_skips_to_the_named_step(
    sandbox: Any, docker_engine: Any, daemon_factory: Any
) -> None:
    job_id = sandbox.enqueue(
        {
            "dockerSteps": [
                _step("step.0.pre", """echo '{"nextStep":"step.2.pre"}' > skip.json"""),
                _step("step.1", "echo should not run"),
                _step("step.2.pre", "ls; echo ran two"),
                _step("step.3", "echo ran three"),
            ]
        }
    )
    daemon_factory(num_total_jobs="1")
    job = sandbox.wait_state(job_id, timeout=90)
    assert job["state"] == "completed", job
    logs = {e["key"]: e for e in job["execution_logs"]}
    assert "step.docker.step.1" not in logs, sorted(logs)
    assert "stdout: ran two" in logs["step.docker.step.2.pre"]["out"]
    assert "skip.json" not in logs["step.docker.step.2.pre"]["out"]  # consumed
    assert "stdout: ran three" in logs["step.docker.step.3"]["out"]


def test_a_malformed_skip_json_fails_the_job_naming_it(
    sandbox: Any, docker_engine: Any, daemon_factory: Any
) -> None:
    job_id = sandbox.enqueue(
        {
            "dockerSteps": [
                _step("step.0.pre", "echo '{not json' > skip.json"),
                _step("step.1", "echo should not run"),
            ]
        }
    )
    daemon_factory(num_total_jobs="1")
    job = sandbox.wait_state(job_id, timeout=90)
    assert job["state"] == "failed", job  # not retryable: the step wrote it
    assert "skip.json" in (job.get("failure_message") or str(job)), job
    assert "step.docker.step.1" not in {e["key"] for e in job["execution_logs"]}
