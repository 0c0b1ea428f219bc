"""`EXECUTOR_STEP_NETWORK` against the real engine: steps run on the named docker network, and
`validate` and the daemon's start warn when the engine has no such network (every step would
fail with Docker's "network … not found"). The network is this test's own (`exnet-…`, not
`executor-…`, which `tests/leftovers.py` counts as a leftover) and removed afterwards.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures_daemon import run_validate, wait_for

from executor.run.host import step_network_warnings

pytestmark = [pytest.mark.docker]

IMAGE = "executor-busybox:latest"


@pytest.fixture
def network(docker_engine: Any) -> Iterator[str]:
    name = f"exnet-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "network", "create", name], check=True, capture_output=True)
    yield name
    subprocess.run(["docker", "network", "rm", name], check=False, capture_output=True)


def _subnet(name: str) -> str:
    done = subprocess.run(
        ["docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", name],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def test_warnings_name_a_missing_network_only(network: str) -> None:
    env = dict(os.environ)
    assert step_network_warnings("", env) == []
    assert step_network_warnings(network, env) == []
    (warning,) = step_network_warnings(f"{network}-missing", env)
    assert f"no network '{network}-missing'" in warning and "EXECUTOR_STEP_NETWORK" in warning


def test_validate_warns_for_a_missing_network(sandbox: Any, docker_engine: Any) -> None:
    done = run_validate(
        sandbox,
        EXECUTOR_JOB_NUM_CPUS="1",
        EXECUTOR_JOB_MEMORY="256M",
        EXECUTOR_STEP_NETWORK="exnet-does-not-exist",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "⚠ EXECUTOR_STEP_NETWORK: the Docker engine has no network 'exnet-does-not-exist'" in (
        done.stdout
    )


def test_steps_run_on_the_step_network(
    sandbox: Any, network: str, daemon_factory: Any, sample_repo: Any
) -> None:
    sandbox.add_repo(sample_repo.name, sample_repo.path)
    step = {"key": "0", "image": IMAGE, "commands": ["ip -4 -o addr show"], "dir": ".", "env": []}
    job_id = sandbox.enqueue(
        {"repositoryName": sample_repo.name, "commit": sample_repo.head, "dockerSteps": [step]}
    )
    daemon = daemon_factory(step_network=network, num_total_jobs="1")
    job = sandbox.wait_state(job_id, timeout=120)
    assert job["state"] == "completed", job["failure_message"]
    (entry,) = [e for e in job["execution_logs"] if e["key"] == "step.docker.0"]
    command = entry["command"]
    assert command[command.index("--network") + 1] == network, command
    prefix = ".".join(_subnet(network).split(".")[:2]) + "."
    assert f"inet {prefix}" in entry["out"], (entry["out"], _subnet(network))
    assert not wait_for(lambda: "has no network" in daemon.log_text, 1), daemon.log_text
