"""A full disk on a real daemon: the workspace root is a small tmpfs the test mounts.

- A step that fills the filesystem during the job fails the job with a message naming the
  phase (`step`), the log key and the workspace path; every log entry has an exit code, and
  the next job runs once teardown freed the space (no operator needed).
- A repository that does not fit fails in the `clone` phase, naming `setup.git.*`.
- Below `EXECUTOR_MIN_FREE_DISK` the daemon stops dequeuing, logs why once, and its heartbeat's
  `prometheusMetrics` (stored by the sandbox) carries `executor_disk_pressure 1.0`; when space
  comes back it dequeues again and the gauge is 0.

The sandbox marks an errored job `failed` (no retries, as Sourcegraph's queues).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_daemon import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "executor-busybox:latest"


@pytest.fixture
def small_root(daemon_factory: Any) -> Iterator[Path]:
    """A 24 MiB tmpfs mounted on the daemons' workspace root."""
    if os.geteuid() != 0:
        pytest.fail("mounting the test tmpfs needs root (CI runs as root)")
    root = Path(daemon_factory.workspace_root)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", root], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", root], check=False)


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _fill(path: Path, leave: int) -> Path:
    """A file that leaves about `leave` bytes free on `path`'s filesystem."""
    filler = path / "filler"
    with filler.open("wb") as out:
        out.write(b"\0" * max(0, _free(path) - leave))
    return filler


def _assert_entries_closed(job: dict[str, Any]) -> None:
    logs = job["execution_logs"]
    assert logs, job
    for entry in logs:
        assert entry["exitCode"] is not None, entry


def test_a_step_that_fills_the_disk_names_phase_and_path(
    sandbox: Any, docker_engine: Any, daemon_factory: Any, small_root: Path
) -> None:
    fill = {"key": "", "image": IMAGE, "commands": ["dd if=/dev/zero of=fill bs=64k"]}
    job_id = sandbox.enqueue({"dockerSteps": [fill]})
    daemon = daemon_factory(min_free_disk="1M")
    job = sandbox.wait_state(job_id, timeout=120)
    assert job["state"] == "failed", (job, daemon.log_text[-3000:])
    message = job["failure_message"]
    assert message.startswith("no space left on device during step (step.docker.0) at "), message
    assert f"{small_root}/workspace-{job_id}-" in message, message
    assert "command failed with exit code 1" in message, message
    _assert_entries_closed(job)
    logs = {e["key"]: e for e in job["execution_logs"]}
    assert logs["step.docker.0"]["exitCode"] == 1
    assert "No space left on device" in logs["step.docker.0"]["out"]
    # Teardown freed the space: the next job runs without anyone clearing the disk.
    ok = sandbox.enqueue({"dockerSteps": [{"key": "", "image": IMAGE, "commands": ["true"]}]})
    assert sandbox.wait_state(ok, timeout=120)["state"] == "completed"


def test_a_repository_that_does_not_fit_fails_in_the_clone_phase(
    sandbox: Any, docker_engine: Any, daemon_factory: Any, small_root: Path, sample_repo: Any
) -> None:
    # A commit too big for what is left (random bytes: git cannot compress them away).
    (sample_repo.path / "big.bin").write_bytes(os.urandom(6 << 20))
    for args in (["add", "big.bin"], ["commit", "-q", "-m", "big"]):
        subprocess.run(["git", "-C", str(sample_repo.path), *args], check=True, env=_git_env())
    head = subprocess.run(
        ["git", "-C", str(sample_repo.path), "rev-parse", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    sandbox.add_repo(sample_repo.name, sample_repo.path)
    _fill(small_root, 2 << 20)
    job_id = sandbox.enqueue(
        {
            "repositoryName": sample_repo.name,
            "commit": head,
            "dockerSteps": [{"key": "", "image": IMAGE, "commands": ["true"]}],
        }
    )
    daemon = daemon_factory(min_free_disk="0")  # no admission: the job must meet the full disk
    job = sandbox.wait_state(job_id, timeout=120)
    assert job["state"] == "failed", (job, daemon.log_text[-3000:])
    message = job["failure_message"]
    assert message.startswith("no space left on device during clone (setup.git."), message
    assert str(small_root) in message, message
    _assert_entries_closed(job)
    assert "step.docker.0" not in {e["key"] for e in job["execution_logs"]}


def test_pressure_is_in_the_heartbeat_and_clears_by_itself(
    sandbox: Any, docker_engine: Any, daemon_factory: Any, small_root: Path
) -> None:
    filler = _fill(small_root, 1 << 20)
    job_id = sandbox.enqueue({"dockerSteps": [{"key": "", "image": IMAGE, "commands": ["true"]}]})
    daemon = daemon_factory(min_free_disk="4M", queue_poll_interval="200ms")

    def stored_metrics() -> str:
        return "".join(e["prometheus_metrics"] for e in sandbox._call("GET", "/.sandbox/executors"))

    assert wait_for(lambda: "executor_disk_pressure 1.0" in stored_metrics(), 90, 0.5), (
        daemon.log_text[-3000:]
    )
    assert sandbox.job(job_id)["state"] == "queued"
    filler.unlink()
    assert sandbox.wait_state(job_id, timeout=120)["state"] == "completed"
    assert wait_for(lambda: "executor_disk_pressure 0.0" in stored_metrics(), 90, 0.5)
    assert daemon.log_text.count("not dequeuing: low disk space") == 1
    assert daemon.log_text.count("dequeuing again: the condition cleared") == 1


def _git_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }


def test_no_room_for_the_workspace_itself_names_the_workspace_phase(
    sandbox: Any, docker_engine: Any, daemon_factory: Any, small_root: Path
) -> None:
    daemon = daemon_factory(min_free_disk="0")
    wait_for(lambda: "connected to the frontend" in daemon.log_text, 60, 0.2)
    _fill(small_root, 0)  # after start-up: the daemon's liveness lock is already written
    job_id = sandbox.enqueue({"dockerSteps": [{"key": "", "image": IMAGE, "commands": ["true"]}]})
    job = sandbox.wait_state(job_id, timeout=120)
    assert job["state"] == "failed", (job, daemon.log_text[-3000:])
    message = job["failure_message"]
    assert message.startswith("no space left on device during workspace at "), message
    assert str(small_root) in message and "[Errno 28]" in message, message


def test_a_job_file_that_does_not_fit_fails_in_the_files_phase(
    sandbox: Any, docker_engine: Any, daemon_factory: Any, small_root: Path
) -> None:
    sandbox.put_file("batch-changes", "spec/big.bin", os.urandom(6 << 20))
    _fill(small_root, 2 << 20)
    job_id = sandbox.enqueue(
        {
            "files": {"big.bin": {"bucket": "batch-changes", "key": "spec/big.bin"}},
            "dockerSteps": [{"key": "", "image": IMAGE, "commands": ["true"]}],
        }
    )
    daemon = daemon_factory(min_free_disk="0")
    job = sandbox.wait_state(job_id, timeout=120)
    assert job["state"] == "failed", (job, daemon.log_text[-3000:])
    message = job["failure_message"]
    assert message.startswith("no space left on device during files (setup.fs.extras) at "), message
    assert f"{small_root}/workspace-{job_id}-" in message and "big.bin" in message, message
    _assert_entries_closed(job)
    assert {e["key"] for e in job["execution_logs"]} == {"setup.fs.extras"}
