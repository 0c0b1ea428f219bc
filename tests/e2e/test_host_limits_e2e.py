"""Limits the host cannot give, and the telemetry the frontend receives, with a real daemon.

Sourcegraph's defaults (`EXECUTOR_JOB_NUM_CPUS=4`, `EXECUTOR_JOB_MEMORY=12G`) on a host with
fewer CPUs made every step end with docker's exit 125. The daemon clamps them to what the
Docker engine reports (`docker info`), says so once, and the job runs; `validate` reports the
same without failing. The heartbeat the sandbox stored carries `srcCliVersion`.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from fixtures_daemon import run_validate, wait_for

from executor.run.host import SRC_CLI_VERSION, HostResources, fit_limits

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "executor-busybox:latest"


def _engine() -> HostResources:
    out = subprocess.run(
        ["docker", "info", "--format", "{{.NCPU}} {{.MemTotal}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return HostResources(cpus=int(out[0]), memory=int(out[1]))


def test_fit_limits_clamps_only_what_the_host_cannot_give() -> None:
    host = HostResources(cpus=2, memory=8 * 2**30)
    fitted = fit_limits(4, "12G", host)
    assert (fitted.cpus, fitted.memory) == (2, "8192M")
    assert [w.split("=")[0] for w in fitted.warnings] == [
        "EXECUTOR_JOB_NUM_CPUS",
        "EXECUTOR_JOB_MEMORY",
    ]
    assert "more than the 2 CPUs of the Docker host; each job gets 2" in fitted.warnings[0]
    kept = fit_limits(1, "256M", host)
    assert (kept.cpus, kept.memory, kept.warnings) == (1, "256M", ())
    unbounded = fit_limits(0, "0", host)
    assert (unbounded.cpus, unbounded.memory, unbounded.warnings) == (0, "0", ())


def test_a_job_runs_with_limits_above_the_host_and_the_heartbeat_names_src_cli(
    sandbox: Any, docker_engine: Any, daemon_factory: Any
) -> None:
    engine = _engine()
    job_id = sandbox.enqueue(
        {"dockerSteps": [{"key": "", "image": IMAGE, "commands": ["echo ran"], "dir": "."}]}
    )
    daemon = daemon_factory(num_total_jobs="1", job_num_cpus="64", job_memory="1000T")
    job = sandbox.wait_state(job_id, timeout=90)
    assert job["state"] == "completed", job
    (step,) = [e for e in job["execution_logs"] if e["key"] == "step.docker.0"]
    command = step["command"]
    assert command[command.index("--cpus") + 1] == str(engine.cpus)
    assert command[command.index("--memory") + 1] == f"{engine.memory // 2**20}M"
    assert daemon.wait(60) == 0
    text = daemon.log_text
    assert text.count("EXECUTOR_JOB_NUM_CPUS=64 is more than the") == 1
    assert text.count("EXECUTOR_JOB_MEMORY=1000T is more than the") == 1
    executors = wait_for(lambda: sandbox._call("GET", "/.sandbox/executors"), 10)
    assert executors and {e["src_cli_version"] for e in executors} == {SRC_CLI_VERSION}


def test_validate_warns_about_limits_and_firecracker_settings_without_failing(
    sandbox: Any, docker_engine: Any
) -> None:
    done = run_validate(
        sandbox, EXECUTOR_JOB_NUM_CPUS="64", EXECUTOR_FIRECRACKER_BANDWIDTH_INGRESS="1000"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "⚠ EXECUTOR_JOB_NUM_CPUS=64 is more than the" in done.stdout
    assert (
        "⚠ EXECUTOR_FIRECRACKER_BANDWIDTH_INGRESS is set but has no effect with the docker"
        " runtime" in done.stdout
    )
    assert "All checks passed!" in done.stdout
