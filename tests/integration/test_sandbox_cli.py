"""`executor sandbox …` subcommands against a running sandbox (and `serve`'s refusals)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_sandbox import SampleRepo, Sandbox

from executor.sandbox.cli import main


def _run(sandbox: Sandbox, *argv: str) -> int:
    cmd, *rest = argv
    if cmd == "repo":
        return main(["repo", "--url", sandbox.url, "--token", sandbox.token, *rest])
    return main([cmd, "--url", sandbox.url, "--token", sandbox.token, *rest])


def test_cli_round_trip(
    sandbox: Sandbox,
    sample_repo: SampleRepo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run(sandbox, "repo", "add", sample_repo.name, str(sample_repo.path)) == 0
    assert _run(sandbox, "repo", "list") == 0
    job_file = tmp_path / "job.json"
    job_file.write_text(
        json.dumps(
            {
                "repositoryName": sample_repo.name,
                "commit": sample_repo.head,
                "dockerSteps": [{"image": "busybox", "commands": ["echo hi"]}],
            }
        )
    )
    assert _run(sandbox, "enqueue", str(job_file), "--queue", "codeintel") == 0
    out = capsys.readouterr().out
    assert f"hosting {sample_repo.name}" in out and "enqueued job 1 on queue codeintel" in out
    sandbox.register_executor("exec-1", queue="codeintel")
    job = sandbox.dequeue("exec-1", queue="codeintel")
    assert job is not None
    entry = {
        "executorName": "exec-1",
        "jobId": 1,
        "key": "step.docker.0",
        "command": ["docker", "run"],
        "startTime": "2024-05-01T12:00:00Z",
        "exitCode": 0,
        "out": "stdout: hi\n",
    }
    headers = sandbox.job_headers(job, "exec-1")
    sandbox.client.post(
        "/.executors/queue/codeintel/addExecutionLogEntry", headers=headers, json=entry
    )
    assert _run(sandbox, "jobs") == 0
    assert _run(sandbox, "logs", "1") == 0
    out = capsys.readouterr().out
    assert "processing" in out and "exec-1" in out
    assert "step.docker.0" in out and "$ docker run" in out and "stdout: hi" in out
    assert _run(sandbox, "cancel", "1") == 0
    assert _run(sandbox, "executors") == 0
    assert "job 1: processing" in capsys.readouterr().out


def test_cli_errors(sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(sandbox, "logs", "99") == 1
    assert "404" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert _run(sandbox, "enqueue", str(bad)) == 1
    assert main(["jobs", "--url", sandbox.url, "--token", "wrong"]) == 1
    assert main(["jobs", "--url", "http://127.0.0.1:9", "--token", "x"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_serve_refuses_without_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SANDBOX_TOKEN", raising=False)
    monkeypatch.delenv("EXECUTOR_FRONTEND_PASSWORD", raising=False)
    assert main(["serve", "--port", "0"]) == 2
    assert "refusing to start without a token" in capsys.readouterr().out


def test_help_lists_batch_and_secret(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "batch" in out.split("options:")[0] and "secret" in out.split("options:")[0]
    with pytest.raises(SystemExit):
        main(["secret", "--help"])
    assert "usage: executor sandbox secret" in capsys.readouterr().out
    assert main(["batch", "--help"]) == 0  # src-cli's usage (executor.sandbox.srccli)
    assert "'executor sandbox batch' manages batch changes" in capsys.readouterr().out
