"""`executor sandbox batch apply` end to end: the sandbox, the daemon as a subprocess, real
Docker. The README's example spec over the sample repositories; re-applying it starts no
container; changing only the title reuses the cache too."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from executor.sandbox.batch_cli import main as batch_cli

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SPEC = Path(__file__).resolve().parents[2] / "examples" / "hello-world.batch.yaml"


def _apply(
    box: Any, spec: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], float]:
    capsys.readouterr()
    start = time.monotonic()
    argv = ["batch", "apply", str(spec), "--wait", "--json", "--wait-timeout", "120s"]
    code = batch_cli([*argv, "--url", box.url, "--token", box.token])
    elapsed = time.monotonic() - start
    out = capsys.readouterr().out
    assert code == 0, out
    status: dict[str, Any] = json.loads(out)
    return status, elapsed


def _starts(executor_name: str, since: str) -> list[str]:
    """IDs of step containers this daemon started since `since` (docker events)."""
    until = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    done = subprocess.run(
        [
            "docker", "events", "--since", since, "--until", until,
            "--filter", "type=container", "--filter", "event=start",
            "--filter", f"label=executor.name={executor_name}", "--format", "{{.ID}}",
        ],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.split()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _by_workspace(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    paths = {w["id"]: w["path"] for w in status["workspaces"]}
    return {
        f"{item['repository']}:{paths[item['workspace_id']]}": item["spec"]
        for item in status["changeset_specs"]
    }


def test_apply_runs_the_example_then_reuses_the_cache(
    sandbox: Any, daemon_factory: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sandbox._call("POST", "/.sandbox/repos/samples")
    daemon = daemon_factory(maximum_num_jobs="4", queue_poll_interval="100ms")

    since = _now()
    first, first_time = _apply(sandbox, SPEC, capsys)
    assert [w["state"] for w in first["workspaces"]] == ["completed"] * 4, first
    names = {job["worker_hostname"] for job in sandbox.jobs(queue="batches")}
    assert len(names) == 1, names
    [executor_name] = names
    # 4 workspaces run step 1; the 2 monorepo workspaces run step 2 as well.
    assert len(_starts(executor_name, since)) == 6

    specs = _by_workspace(first)
    assert sorted(specs) == [
        "github.com/sandbox/hello-go:",
        "github.com/sandbox/hello-py:",
        "github.com/sandbox/monorepo:services/api",
        "github.com/sandbox/monorepo:services/web",
    ]
    go = specs["github.com/sandbox/hello-go:"]
    diff = base64.b64decode(go["commits"][0]["diff"]).decode()
    assert diff.startswith("diff --git README.md README.md\nindex ")
    assert diff.endswith(
        "--- README.md\n+++ README.md\n@@ -1,3 +1,3 @@\n # hello-go\n \n"
        "-A tiny Go program that prints foo.\n+A tiny Go program that prints bar.\n"
    )
    assert go["title"] == "Replace foo with bar in github.com/sandbox/hello-go"
    assert go["headRef"] == "refs/heads/batch/hello-world"
    assert go["published"] is False
    api = specs["github.com/sandbox/monorepo:services/api"]
    assert api["headRef"] == "refs/heads/batch/hello-world-services-api"
    api_diff = base64.b64decode(api["commits"][0]["diff"]).decode()
    assert "+The api service returns bar.\n+Hello from services/api!\n" in api_diff
    assert "Files changed: services/api/README.md" in api["body"]

    # Unchanged spec: every workspace is a full cache hit, no job, no container.
    since = _now()
    again, again_time = _apply(sandbox, SPEC, capsys)
    assert [(w["cache"], w["job_id"]) for w in again["workspaces"]] == [("hit", None)] * 4
    assert _by_workspace(again) == specs
    assert _starts(executor_name, since) == []
    ratio = again_time / first_time
    print(f"re-apply took {again_time:.2f}s, {ratio:.0%} of the first apply ({first_time:.2f}s)")
    assert ratio < 1

    # Only the title changes: the template is not part of the cache key.
    retitled = tmp_path / "retitled.batch.yaml"
    retitled.write_text(SPEC.read_text().replace("title: Replace foo", "title: Swap foo"))
    since = _now()
    third, _ = _apply(sandbox, retitled, capsys)
    assert all(w["job_id"] is None for w in third["workspaces"])
    assert _starts(executor_name, since) == []
    titles = sorted(s["title"] for s in _by_workspace(third).values())
    assert titles[0] == "Swap foo with bar in github.com/sandbox/hello-go"
    assert daemon.proc.poll() is None
