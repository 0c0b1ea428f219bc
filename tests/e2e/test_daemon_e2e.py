"""The daemon as a subprocess against the sandbox: real Docker, real git, real HTTP."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures_daemon import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "executor-busybox:latest"
FINAL = ("completed", "errored", "failed", "canceled")


@pytest.fixture
def repo(sandbox: Any, sample_repo: Any) -> Any:
    """The sample repository, hosted by the sandbox."""
    sandbox.add_repo(sample_repo.name, sample_repo.path)
    return sample_repo


def _job(repo: Any, *steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "repositoryName": repo.name,
        "commit": repo.head,
        "shallowClone": True,
        "dockerSteps": list(steps),
    }
    body.update(extra)
    return body


def _step(
    *commands: str, key: str = "", env: list[str] | None = None, image: str = IMAGE
) -> dict[str, Any]:
    return {"key": key, "image": image, "commands": list(commands), "dir": ".", "env": env or []}


_ROOTS: list[str] = []


def _containers(job_id: int) -> list[str]:
    """Step containers of job `job_id` started by this test's daemons (other tests and
    sandboxes reuse job IDs, so the owner's lock-file label must be under our root)."""
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label=executor.job={job_id}",
            "--format",
            '{{.ID}} {{.Label "executor.lock"}}',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ours = []
    for line in out.splitlines():
        cid, _, lock = line.partition(" ")
        if any(lock.startswith(root) for root in _ROOTS[-1:]):
            ours.append(cid)
    return ours


@pytest.fixture(autouse=True)
def _our_root(daemon_factory: Any) -> None:
    _ROOTS.append(str(daemon_factory.workspace_root))


def _logs(sandbox: Any, job_id: int) -> dict[str, dict[str, Any]]:
    return {e["key"]: e for e in sandbox.job(job_id)["execution_logs"]}


def test_two_step_job_completes_with_both_logs(
    sandbox: Any, repo: Any, daemon_factory: Any
) -> None:
    job_id = sandbox.enqueue(
        _job(
            repo,
            _step("echo first step", "cat README.md"),
            _step("echo second >&2", "ls /data/.sourcegraph-executor | wc -l", key="second"),
        )
    )
    daemon_factory(num_total_jobs="1")
    job = sandbox.wait_state(job_id, FINAL, timeout=60)
    assert job["state"] == "completed", job
    logs = _logs(sandbox, job_id)
    for key in (
        "setup.git.init",
        "setup.git.fetch",
        "setup.git.checkout",
        "setup.fs.extras",
        "step.docker.0",
        "step.docker.second",
        "teardown.fs",
    ):
        assert key in logs, sorted(logs)
    assert "stdout: first step" in logs["step.docker.0"]["out"]
    assert "stdout: # sample" in logs["step.docker.0"]["out"]
    assert logs["step.docker.0"]["exitCode"] == 0
    assert "stderr: second" in logs["step.docker.second"]["out"]
    assert logs["step.docker.second"]["command"][:3] == ["docker", "run", "--rm"]
    assert not _containers(job_id)


def test_failing_step_errors_the_job_with_its_exit_code(
    sandbox: Any, repo: Any, daemon_factory: Any
) -> None:
    job_id = sandbox.enqueue(_job(repo, _step("echo about to fail", "exit 3")))
    daemon_factory(num_total_jobs="1")
    job = sandbox.wait_state(job_id, FINAL, timeout=60)
    # Both executor queues have MaxNumRetries=0, so markErrored ends in `failed` (§8.2).
    assert job["state"] == "failed", job
    assert "command failed with exit code 3" in job["failure_message"]
    assert _logs(sandbox, job_id)["step.docker.0"]["exitCode"] == 3


def test_missing_image_fails_with_dockers_message(
    sandbox: Any, repo: Any, daemon_factory: Any
) -> None:
    job_id = sandbox.enqueue(_job(repo, _step("true", image="no-such-image:never")))
    daemon_factory(num_total_jobs="1")
    job = sandbox.wait_state(job_id, FINAL, timeout=60)
    assert job["state"] == "failed"
    out = _logs(sandbox, job_id)["step.docker.0"]["out"]
    assert "no-such-image" in out and "stderr: " in out


def test_step_that_never_ends_hits_the_deadline(
    sandbox: Any, repo: Any, daemon_factory: Any
) -> None:
    job_id = sandbox.enqueue(_job(repo, _step("sleep 1000")))
    daemon_factory(num_total_jobs="1", maximum_runtime_per_job="4s")
    job = sandbox.wait_state(job_id, FINAL, timeout=60)
    assert job["state"] == "failed"
    assert "job exceeded maximum execution time of 4s" in job["failure_message"]
    assert not _containers(job_id)


def test_cancel_removes_container_quickly(sandbox: Any, repo: Any, daemon_factory: Any) -> None:
    job_id = sandbox.enqueue(_job(repo, _step("echo started", "sleep 1000")))
    daemon_factory()
    assert wait_for(lambda: _containers(job_id), timeout=60), "step container never started"
    time.sleep(0.5)
    sandbox.cancel(job_id)
    canceled_at = time.monotonic()
    assert wait_for(lambda: not _containers(job_id), timeout=15)
    assert time.monotonic() - canceled_at < 10
    job = sandbox.wait_state(job_id, FINAL, timeout=30)
    assert job["state"] == "canceled"


def test_secret_is_redacted_even_split_across_reads(
    sandbox: Any, repo: Any, daemon_factory: Any
) -> None:
    secret = "s3cr3t-v4lue-0123456789"
    job_id = sandbox.enqueue(
        _job(
            repo,
            _step(
                f"printf '{secret[:8]}'",
                "sleep 0.3",
                f"printf '{secret[8:]}\\n'",
                f"echo {secret} >&2",
                "echo $MY_SECRET",
                env=[f"MY_SECRET={secret}"],
            ),
            redactedValues={secret: "${{ secrets.MY_SECRET }}"},
        )
    )
    daemon = daemon_factory(num_total_jobs="1")
    job = sandbox.wait_state(job_id, FINAL, timeout=60)
    assert job["state"] == "completed", job
    everything = repr(sandbox.job(job_id)["execution_logs"])
    assert secret not in everything
    assert "${{ secrets.MY_SECRET }}" in _logs(sandbox, job_id)["step.docker.0"]["out"]
    daemon.wait(30)
    assert secret not in daemon.log_text
    assert sandbox.token not in daemon.log_text


def test_job_file_escaping_workspace_fails_cleanly(
    sandbox: Any, repo: Any, daemon_factory: Any, tmp_path: Path
) -> None:
    job_id = sandbox.enqueue(
        _job(
            repo,
            _step("true"),
            files={"../../etc/x": {"content": "pwned"}, "ok.txt": {"content": "fine"}},
        )
    )
    daemon_factory(num_total_jobs="1")
    job = sandbox.wait_state(job_id, FINAL, timeout=60)
    assert job["state"] == "failed"
    assert "refusing to write outside of working directory" in job["failure_message"]
    root = daemon_factory.workspace_root
    assert not (root.parent / "etc" / "x").exists()
    assert not (root.parent.parent / "etc" / "x").exists()
    assert not Path("/etc/x").exists()


def test_sigterm_drains_running_job(sandbox: Any, repo: Any, daemon_factory: Any) -> None:
    job_id = sandbox.enqueue(_job(repo, _step("sleep 3", "echo done draining")))
    queued_after = sandbox.enqueue(_job(repo, _step("echo should not run")))
    daemon = daemon_factory()
    assert wait_for(lambda: _containers(job_id), timeout=60)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(60) == 0
    assert sandbox.job(job_id)["state"] == "completed"
    assert "done draining" in _logs(sandbox, job_id)["step.docker.0"]["out"]
    assert sandbox.job(queued_after)["state"] == "queued"


def test_second_signal_cancels_and_marks_errored(
    sandbox: Any, repo: Any, daemon_factory: Any
) -> None:
    job_id = sandbox.enqueue(_job(repo, _step("echo before", "sleep 1000")))
    daemon = daemon_factory()
    assert wait_for(lambda: _containers(job_id), timeout=60)
    time.sleep(1.5)
    daemon.signal(signal.SIGTERM)
    time.sleep(0.5)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    job = sandbox.job(job_id)
    assert job["state"] == "failed"  # markErrored with MaxNumRetries=0
    assert "interrupted" in job["failure_message"]
    assert "stdout: before" in _logs(sandbox, job_id)["step.docker.0"]["out"]
    assert not _containers(job_id)


@pytest.fixture
def fast_reset(sandbox_factory: Any, sample_repo: Any) -> Any:
    """A sandbox whose resetter requeues a job after 3 s without heartbeats."""
    box = sandbox_factory(stalled_max_age=3.0, resetter_interval=0.5)
    box.add_repo(sample_repo.name, sample_repo.path)
    return box


def test_kill_9_then_reset_and_janitor(
    fast_reset: Any, sample_repo: Any, daemon_factory: Any
) -> None:
    sandbox, repo = fast_reset, sample_repo
    job_id = sandbox.enqueue(_job(repo, _step("sleep 5", "echo finished")))
    first = daemon_factory(sandbox)
    assert wait_for(lambda: _containers(job_id), timeout=60)
    first.kill()
    orphans = _containers(job_id)
    assert orphans, "the orphan container should outlive a kill -9"
    # The sandbox resets the stalled job; a second daemon picks it up and its janitor
    # removes the first daemon's orphan container.
    second = daemon_factory(sandbox, cleanup_task_interval="1s")
    job = sandbox.wait_state(job_id, ("completed",), timeout=90)
    assert job["state"] == "completed"
    assert wait_for(lambda: not (set(orphans) & set(_containers(job_id))), timeout=30)
    second.stop()
