"""The sandbox as a batch changes frontend, without a daemon: apply over the real admin API,
play the executor's part over the real queue API with hand-written `batch exec` logs, and
check workspaces, job payloads, cache entries and changeset specs."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from executor.batch.cache import CacheRepository, key_for_workspace
from executor.batch.execution import (
    AfterStepResult,
    WorkspacesExecutionInput,
    cache_after_step_result_metadata,
    format_event,
    task_step_metadata,
)
from executor.sandbox.batch_cli import main as batch_cli
from executor.sandbox.samples import create_sample_repos

EXECUTOR = "test-executor"
README_DIFF = (
    b"diff --git README.md README.md\nindex 1..2 100644\n--- README.md\n+++ README.md\n"
    b"@@ -1 +1 @@\n-foo\n+bar\n"
)

SPEC = """
name: hello
description: say hello
on:
  - repository: github.com/sandbox/hello-go
steps:
  - run: sed -i s/foo/bar/ README.md
    container: executor-busybox:latest
    env:
      - GITHUB_TOKEN
      - PLAIN: value
    outputs:
      said:
        value: ${{ step.stdout }}
  - run: echo two
    container: executor-busybox:latest
changesetTemplate:
  title: Hello ${{ repository.name }}
  body: said ${{ outputs.said }}
  branch: hello-${{ batch_change.name }}
  commit:
    message: say hello
  published: false
"""


@pytest.fixture
def samples(sandbox: Any) -> Any:
    response = sandbox.client.post("/.sandbox/repos/samples", headers=sandbox.admin_headers)
    assert response.status_code == 201, response.text
    sandbox.register_executor(EXECUTOR)
    return sandbox


def _apply(box: Any, text: str, **extra: Any) -> Any:
    return box.client.post(
        "/.sandbox/batches", headers=box.admin_headers, json={"spec": text, **extra}
    )


def _applied(box: Any, text: str, **extra: Any) -> dict[str, Any]:
    response = _apply(box, text, **extra)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _status(box: Any, spec_id: int) -> dict[str, Any]:
    result: dict[str, Any] = box._call("GET", f"/.sandbox/batches/{spec_id}")
    return result


def _dequeue(box: Any) -> dict[str, Any]:
    response = box.client.post(
        "/.executors/queue/batches/dequeue",
        headers=box.admin_headers,
        json={"executorName": EXECUTOR, "version": "5.3.0", "numCPUs": 1, "memory": "1G"},
    )
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def _input(job: dict[str, Any]) -> WorkspacesExecutionInput:
    content = base64.b64decode(job["files"]["input.json"]["content"])
    return WorkspacesExecutionInput.model_validate_json(content)


def _key(inp: WorkspacesExecutionInput, index: int, env: tuple[str, ...] = ()) -> str:
    """The key the engine computes from `input.json` (batcheshelper `post`, §7.4)."""
    return key_for_workspace(
        repository=CacheRepository(
            id=inp.repository.id,
            name=inp.repository.name,
            base_ref=inp.branch.name,
            base_rev=inp.branch.target.oid,
            file_matches=inp.search_result_paths,
        ),
        steps=inp.steps or [],
        step_index=index,
        path=inp.path,
        only_fetch_workspace=inp.only_fetch_workspace,
        batch_change=inp.batch_change_attributes,
        global_env=env,
    )


def _result(index: int, diff: bytes, **fields: Any) -> AfterStepResult:
    return AfterStepResult.model_validate(
        {
            "version": 2,
            "stepIndex": index,
            "diff": base64.b64encode(diff).decode(),
            "changedFiles": {"modified": ["README.md"] if diff else None},
            **fields,
        }
    )


def _log_out(results: list[tuple[str, AfterStepResult]]) -> str:
    lines = [f"stdout: {format_event('TASK_STEP', 'STARTED', task_step_metadata(step=1))}"]
    lines.append("stderr: some noise")
    for key, value in results:
        meta = cache_after_step_result_metadata(key, value)
        lines.append(f"stdout: {format_event('CACHE_AFTER_STEP_RESULT', 'SUCCESS', meta)}")
    lines.append("stdout: not json")
    return "\n".join(lines) + "\n"


def _finish(box: Any, job: dict[str, Any], out: str, op: str = "markComplete") -> None:
    entry = {
        "key": "step.src.batch-exec",
        "command": ["src", "batch", "exec"],
        "startTime": "2024-01-01T00:00:00Z",
        "exitCode": 0,
        "out": out,
        "durationMs": 5,
    }
    q = "/.executors/queue/batches"
    body = {"executorName": EXECUTOR, "jobId": job["id"], "entry": entry}
    response = box.client.post(f"{q}/addExecutionLogEntry", headers=box.admin_headers, json=body)
    assert response.status_code == 200, response.text
    done: dict[str, Any] = {"executorName": EXECUTOR, "jobId": job["id"]}
    if op != "markComplete":
        done["errorMessage"] = "step failed"
    response = box.client.post(f"{q}/{op}", headers=box.admin_headers, json=done)
    assert response.status_code == 204, response.text


# -- validation --------------------------------------------------------------------------


def test_invalid_spec_lists_every_error_with_its_path(sandbox: Any) -> None:
    bad = "name: has spaces\nsteps:\n  - run: x\n    container: y\n    bogus: 1\n"
    response = _apply(sandbox, bad)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any("word characters, dots and dashes" in e for e in errors)
    assert any("steps.0: Additional property bogus is not allowed" in e for e in errors)
    assert response.json()["error"].startswith(f"{len(errors)} errors occurred:")


def test_cli_exits_2_on_an_invalid_spec(
    sandbox: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: ok\nsteps:\n  - run: x\n    container: y\n")
    code = batch_cli(["batch", "apply", str(path), "--url", sandbox.url, "--token", sandbox.token])
    assert code == 2
    assert "batch spec includes steps but no changesetTemplate" in capsys.readouterr().err


def test_missing_secret_and_unknown_repo_are_refused(samples: Any) -> None:
    response = _apply(samples, SPEC)
    assert response.status_code == 400
    assert 'executor secret "GITHUB_TOKEN" not found' in response.json()["error"]
    other = SPEC.replace("sandbox/hello-go", "sandbox/nope")
    response = _apply(samples, other, secrets={"GITHUB_TOKEN": "t0ps3cret"})
    assert "repository github.com/sandbox/nope not found" in response.json()["error"]


# -- job payload ---------------------------------------------------------------------------


def test_job_payload_is_a_v1_batch_exec_job(samples: Any) -> None:
    samples._call("PUT", "/.sandbox/secrets/GITHUB_TOKEN", json={"value": "t0ps3cret"})
    status = _applied(samples, SPEC)
    [ws] = status["workspaces"]
    assert (ws["state"], ws["cache"], ws["path"]) == ("queued", "miss", "")
    job = _dequeue(samples)
    assert job["id"] == ws["job_id"]
    assert job["repositoryName"] == "github.com/sandbox/hello-go"
    assert job["repositoryDirectory"] == "repository"
    assert job["shallowClone"] is True and not job.get("sparseCheckout")
    assert job["commit"] == ws["commit"] and len(job["commit"]) == 40
    assert job["cliSteps"] == [
        {
            "key": "batch-exec",
            "command": [
                "batch",
                "exec",
                "-f",
                "input.json",
                "-repo",
                "repository",
                "-tmp",
                ".src-tmp",
                "-binaryDiffs",
            ],
            "dir": ".",
            "env": ["GITHUB_TOKEN=t0ps3cret"],
        }
    ]
    assert job["redactedValues"] == {"t0ps3cret": "${{ secrets.GITHUB_TOKEN }}"}
    raw = base64.b64decode(job["files"]["input.json"]["content"]).decode()
    inp = WorkspacesExecutionInput.model_validate_json(raw)
    assert raw == inp.to_json()  # exactly what Go would marshal
    data = json.loads(raw)
    assert data["BatchChangeAttributes"] == {"Name": "hello", "Description": "say hello"}
    assert data["repository"]["id"] == base64.b64encode(b"Repository:1").decode()
    assert data["branch"] == {"name": "refs/heads/main", "target": {"oid": job["commit"]}}
    assert data["steps"][0]["env"] == ["GITHUB_TOKEN", {"PLAIN": "value"}]
    assert data["cachedStepResultFound"] is False
    assert data["searchResultPaths"] == []


# -- results -------------------------------------------------------------------------------


def test_results_become_cache_entries_and_a_changeset_spec(samples: Any) -> None:
    secrets = {"GITHUB_TOKEN": "t0ps3cret"}
    status = _applied(samples, SPEC, secrets=secrets)
    job = _dequeue(samples)
    inp = _input(job)
    env = ("GITHUB_TOKEN=t0ps3cret",)
    first = _result(0, README_DIFF, outputs={"said": "hi\n"})
    last = _result(1, README_DIFF, outputs={"said": "hi\n"})
    _finish(samples, job, _log_out([(_key(inp, 0, env), first), (_key(inp, 1, env), last)]))
    done = _status(samples, status["id"])
    assert done["workspaces"][0]["state"] == "completed"
    [item] = done["changeset_specs"]
    spec = item["spec"]
    assert list(spec) == [
        "baseRepository", "baseRev", "baseRef", "headRepository", "headRef", "title", "body",
        "commits", "published",
    ]  # fmt: skip
    assert spec["headRef"] == "refs/heads/hello-hello"
    assert spec["baseRef"] == "refs/heads/main"
    assert spec["title"] == "Hello github.com/sandbox/hello-go"
    assert spec["body"] == "said hi"
    assert spec["published"] is False
    assert spec["commits"] == [
        {
            "version": 2,
            "message": "say hello",
            "diff": base64.b64encode(README_DIFF).decode(),
            "authorName": "Sourcegraph",
            "authorEmail": "batch-changes@sourcegraph.com",
        }
    ]

    # Re-applying: every step cached, so no job at all; specs built from the cache.
    again = _applied(samples, SPEC, secrets=secrets)
    [ws] = again["workspaces"]
    assert (ws["job_id"], ws["cache"], ws["state"]) == (None, "hit", "completed")
    assert again["changeset_specs"][0]["spec"] == spec
    # Only the title changed: still a full hit (the template is not part of the key).
    retitled = _applied(samples, SPEC.replace("title: Hello", "title: Howdy"), secrets=secrets)
    assert retitled["workspaces"][0]["job_id"] is None
    assert retitled["changeset_specs"][0]["spec"]["title"].startswith("Howdy")
    assert samples.jobs(queue="batches", state="queued") == []


def test_partial_cache_resumes_with_the_cached_result(samples: Any) -> None:
    secrets = {"GITHUB_TOKEN": "t0ps3cret"}
    _applied(samples, SPEC, secrets=secrets)
    job = _dequeue(samples)
    inp = _input(job)
    first = _result(0, README_DIFF)
    # The second step fails: the first step's result stays cached, no changeset spec.
    out = _log_out([(_key(inp, 0, ("GITHUB_TOKEN=t0ps3cret",)), first)])
    _finish(samples, job, out, "markFailed")
    changed = SPEC.replace("echo two", "echo three")
    status = _applied(samples, changed, secrets=secrets)
    [ws] = status["workspaces"]
    assert ws["cache"] == "partial" and ws["job_id"] is not None
    resumed = _input(_dequeue(samples))
    assert resumed.cached_step_result_found is True
    assert resumed.cached_step_result.step_index == 0
    assert resumed.cached_step_result.diff == README_DIFF


def test_complete_without_results_fails_and_empty_diff_makes_no_spec(samples: Any) -> None:
    secrets = {"GITHUB_TOKEN": "t0ps3cret"}
    status = _applied(samples, SPEC, secrets=secrets)
    _finish(samples, _dequeue(samples), "stdout: nothing useful\n")
    [ws] = _status(samples, status["id"])["workspaces"]
    assert (ws["state"], ws["failure_message"]) == ("failed", "found no step results")

    status = _applied(samples, SPEC.replace("say hello", "say nothing"), secrets=secrets)
    job = _dequeue(samples)
    inp = _input(job)
    env = ("GITHUB_TOKEN=t0ps3cret",)
    _finish(samples, job, _log_out([(_key(inp, 1, env), _result(1, b""))]))
    done = _status(samples, status["id"])
    assert done["workspaces"][0]["state"] == "completed"
    assert done["changeset_specs"] == []


# -- workspaces ----------------------------------------------------------------------------

WORKSPACES_SPEC = """
name: ws
on:
  - repositoriesMatchingQuery: foo file:README.md
workspaces:
  - rootAtLocationOf: package.json
    in: github.com/sandbox/mono*
    onlyFetchWorkspace: true
steps:
  - run: "true"
    container: executor-busybox:latest
  - run: never
    container: executor-busybox:latest
    if: false
changesetTemplate:
  title: t
  branch: b
  commit:
    message: m
"""


def test_query_and_workspaces_resolution(samples: Any) -> None:
    status = _applied(samples, WORKSPACES_SPEC)
    got = [(w["repository"], w["path"], w["searchResultPaths"]) for w in status["workspaces"]]
    assert got == [
        ("github.com/sandbox/hello-go", "", ["README.md"]),
        ("github.com/sandbox/hello-py", "", ["README.md"]),
        ("github.com/sandbox/monorepo", "services/api", ["services/api/README.md"]),
        ("github.com/sandbox/monorepo", "services/web", ["services/web/README.md"]),
    ]
    jobs = {j["repositoryName"] + ":" + _input(j).path: j for j in (_dequeue(samples) for _ in got)}
    api = jobs["github.com/sandbox/monorepo:services/api"]
    assert api["sparseCheckout"] == ["services/api/*"]
    assert _input(api).only_fetch_workspace is True
    assert _input(api).skipped_step_indices() == frozenset({1})
    assert not jobs["github.com/sandbox/hello-go:"].get("sparseCheckout")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("repo:hello-", ["github.com/sandbox/hello-go", "github.com/sandbox/hello-py"]),
        ("repo:sandbox -repo:py$", ["github.com/sandbox/hello-go", "github.com/sandbox/monorepo"]),
        ("f:go\\.mod$", ["github.com/sandbox/hello-go"]),
        ('repo:mono content:"Two services"', ["github.com/sandbox/monorepo"]),
        ("print", ["github.com/sandbox/hello-go", "github.com/sandbox/hello-py"]),
        ("nothing-matches-this", []),
    ],
)
def test_repositories_matching_query_subset(samples: Any, query: str, expected: list[str]) -> None:
    spec = WORKSPACES_SPEC.replace("foo file:README.md", json.dumps(query)).replace(
        "in: github.com/sandbox/mono*", "in: nothing"
    )
    status = _applied(samples, spec)
    assert [w["repository"] for w in status["workspaces"]] == expected


def test_unknown_language_is_an_error(samples: Any) -> None:
    spec = WORKSPACES_SPEC.replace("foo file:README.md", "lang:klingon foo")
    response = _apply(samples, spec)
    assert response.status_code == 400
    assert response.json()["error"] == 'unknown language: "klingon"'


def test_sample_repos_are_reproducible(tmp_path: Path) -> None:
    first = create_sample_repos(tmp_path / "a")
    second = create_sample_repos(tmp_path / "b")
    assert sorted(first) == sorted(second)
    repos = (*first.values(), *second.values())
    heads = [(p / ".git" / "refs" / "heads" / "main").read_text() for p in repos]
    assert heads[:3] == heads[3:]


def test_the_mark_hook_parses_a_spec_once_and_never_serves_another() -> None:
    """A batch change's jobs share one spec: parsing 1 MB of YAML per finished job made the
    sandbox the bottleneck of a 20,000-workspace batch change. Another text is another spec."""
    from executor.batch.spec import parse_batch_spec_once as _parsed_spec

    first = "name: one\non:\n  - repository: github.com/a/b\nsteps: []\n"
    other = first.replace("one", "two")
    parsed = _parsed_spec(first)
    assert parsed.name == "one"
    assert _parsed_spec("".join(first)) is parsed  # an equal text read again from the database
    assert _parsed_spec(other).name == "two"


def test_waiting_polls_less_often_for_big_batches() -> None:
    """The summary a waiting `batch apply` polls reads every workspace row: its interval grows
    with the batch (0.5 s up to 2,000 tasks, at most 5 s) so that it never competes with them."""
    from executor.sandbox.srccli_run import poll_interval

    assert [poll_interval(n) for n in (0, 1, 1000, 2000)] == [0.5] * 4
    assert poll_interval(8000) == 2.0
    assert [poll_interval(n) for n in (20000, 10**6)] == [5.0, 5.0]
