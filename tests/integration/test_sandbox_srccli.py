"""src-cli's batch commands against a real sandbox over loopback (`executor.sandbox.srccli`):
the texts src-cli prints and its exit codes. The executor's part is played over the real queue
API with hand-written `batch exec` logs, as in `test_sandbox_batch` (a thread dequeues while
the command waits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_sandbox_batch
from test_sandbox_batch import EXECUTOR, README_DIFF, SPEC, _finish, _input, _key, _log_out, _result

from executor.batch.cache import CacheRepository, key_for_workspace
from executor.batch.execution import BatchChangeAttributes
from executor.batch.spec import parse_batch_spec
from executor.sandbox.batch_store import BatchStore
from executor.sandbox.cli import main as sandbox_main
from executor.sandbox.srccli import EXAMPLE_SPEC

samples = test_sandbox_batch.samples  # the fixture: sample repositories and an executor
Capture = pytest.CaptureFixture[str]


def _batch(box: Any, *argv: str) -> int:
    return sandbox_main(["batch", *argv, "-url", box.url, "-token", box.token])


def _spec_file(tmp_path: Path, text: str = SPEC, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


class _Executor:
    """Plays the executor in a thread: dequeues `batches` jobs and finishes each with the
    step results of its input (markFailed for repositories in `fail`)."""

    def __init__(
        self, box: Any, fail: tuple[str, ...] = (), limit: int = 1_000_000, errored: int = 0
    ) -> None:
        self.box, self.fail, self.limit, self.done = box, fail, limit, 0
        self.errored = errored  # the first N jobs are marked errored (retried by the sandbox)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Executor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.is_set() and self.done < self.limit:
            response = self.box.client.post(
                "/.executors/queue/batches/dequeue",
                headers=self.box.admin_headers,
                json={"executorName": EXECUTOR, "version": "5.3.0"},
            )
            if response.status_code != 200:
                time.sleep(0.05)
                continue
            job = response.json()
            inp = _input(job)
            env = tuple(e for e in job["cliSteps"][0]["env"])
            results = [
                (_key(inp, i, env), _result(i, README_DIFF, outputs={"said": "hi"}))
                for i in range(len(inp.steps or []))
            ]
            op = "markFailed" if job["repositoryName"] in self.fail else "markComplete"
            if self.done < self.errored:
                op = "markErrored"
            _finish(self.box, job, _log_out(results), op)
            self.done += 1


@pytest.fixture
def hosted(samples: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("SANDBOX_SECRET_GITHUB_TOKEN", "t0ps3cret")
    yield samples


# -- validate --------------------------------------------------------------------------------


def test_validate_accepts_f_and_file_and_reports_src_cli_texts(
    sandbox: Any, tmp_path: Path, capsys: Capture
) -> None:
    good = _spec_file(tmp_path)
    for argv in (("-f", str(good)), ("--f", str(good)), (f"-f={good}",), (str(good),)):
        assert _batch(sandbox, "validate", *argv) == 0, argv
        assert capsys.readouterr().err == "✅ Batch spec successfully validated.\n"

    bad = _spec_file(tmp_path, "name: ok\nsteps:\n  - run: x\n    container: y\n", "bad.yaml")
    assert _batch(sandbox, "validate", "-f", str(bad)) == 1
    err = capsys.readouterr().err
    assert err.startswith("❌ Batch spec failed validation.\n   1. ")
    assert "batch spec includes steps but no changesetTemplate" in err

    two = _spec_file(tmp_path, "name: has spaces\nbogus: 1\n", "two.yaml")
    assert _batch(sandbox, "validate", "-f", str(two)) == 1
    err = capsys.readouterr().err
    assert "   1. " in err and "   2. " in err and "errors occurred:\n\t* " in err

    missing = tmp_path / "nope.yaml"
    assert _batch(sandbox, "validate", "-f", str(missing)) == 1
    text = f"cannot open file {missing}: open {missing}: no such file or directory"
    assert capsys.readouterr().err == f"❌ Batch spec failed validation.\n   1. {text}\n{text}\n"


def test_flag_and_usage_errors_exit_2_with_go_texts(
    sandbox: Any, tmp_path: Path, capsys: Capture
) -> None:
    spec = str(_spec_file(tmp_path))
    assert _batch(sandbox, "validate", "-bogus") == 2
    err = capsys.readouterr().err
    assert err.startswith("flag provided but not defined: -bogus\nUsage of 'executor sandbox")
    assert "  -f string\n    \tThe batch spec file to read" in err
    assert _batch(sandbox, "preview", "-f", spec, "extra") == 2
    assert capsys.readouterr().err.startswith("error: additional arguments not allowed\n\n")
    assert _batch(sandbox, "apply", "-timeout", "soon", spec) == 2
    assert 'invalid value "soon" for flag -timeout: parse error' in capsys.readouterr().err
    assert _batch(sandbox, "apply", "-skip-errors=maybe", spec) == 2
    assert 'invalid boolean value "maybe" for -skip-errors' in capsys.readouterr().err
    assert sandbox_main(["batch", "apply", "-h"]) == 0
    out, err = capsys.readouterr()
    assert "  -namespace string" in err and "  -n string\n    \tAlias for -namespace." in err
    assert "  -timeout duration\n" in err and "(default 1h0m0s)" in err
    assert "  -v\tprint verbose output" in err
    assert "$ executor sandbox batch apply -f batch.spec.yaml -namespace myorg" in out
    assert sandbox_main(["batch", "frobnicate"]) == 1
    assert 'unknown subcommand "frobnicate"' in capsys.readouterr().err
    assert sandbox_main(["batch"]) == 0
    assert "repos,repositories    queries the exact repositories" in capsys.readouterr().out


def test_a_wrong_or_missing_token_is_said_and_not_shown(
    sandbox: Any, tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = str(_spec_file(tmp_path))
    monkeypatch.delenv("SANDBOX_TOKEN", raising=False)
    monkeypatch.delenv("EXECUTOR_FRONTEND_PASSWORD", raising=False)
    wrong = ["-url", sandbox.url, "-token", "not-the-token"]
    assert sandbox_main(["batch", "validate", "-f", spec, *wrong]) == 1
    assert capsys.readouterr().err == "error: 401 Unauthorized\n\n\n"
    assert sandbox_main(["batch", "preview", "-f", spec, *wrong]) == 1
    err = capsys.readouterr().err
    assert " \u2a2f Error:\n   error: 401 Unauthorized" in err and "troubleshooting" in err
    assert "not-the-token" not in err and sandbox.token not in err
    assert sandbox_main(["batch", "repos", "-f", spec, "-url", sandbox.url]) == 1
    assert "no token: pass -token or set SANDBOX_TOKEN" in capsys.readouterr().err
    assert sandbox_main(["batch", "repos", "-f", spec, "-url", "http://127.0.0.1:9"]) == 1
    monkeypatch.setenv("SANDBOX_TOKEN", "x")
    assert sandbox_main(["batch", "repos", "-f", spec, "-url", "http://127.0.0.1:9"]) == 1
    assert 'Get "http://127.0.0.1:9/.sandbox/secrets": connect: connection refused' in (
        capsys.readouterr().err
    )


# -- repositories ----------------------------------------------------------------------------

QUERY_SPEC = """
name: readmes
on:
  - repositoriesMatchingQuery: {query}
"""


def test_repositories_prints_like_src_cli(samples: Any, tmp_path: Path, capsys: Capture) -> None:
    spec = _spec_file(tmp_path, QUERY_SPEC.format(query="file:README.md"))
    assert _batch(samples, "repositories", "-f", str(spec)) == 0
    out = capsys.readouterr().out.splitlines()
    names = sorted(
        r["name"] for r in samples._call("POST", "/.sandbox/batches/resolve",
                                         json={"spec": spec.read_text()})["workspaces"]
        for r in [r["repository"]]
    )  # fmt: skip
    unique = sorted(set(names))
    width = max(len(n) for n in unique)
    assert out[:-1] == [f"  {n.ljust(width)} refs/heads/main ({samples.url}/{n})" for n in unique]
    assert out[-1] == f"✱ {len(unique)} workspaces total"
    assert _batch(samples, "repos", str(spec), "-v") == 0
    assert "      workspace /" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("repo:a)", "unsupported expression. The combination of parentheses"),
        ("'file:\"abc'", 'unterminated literal: expected "'),
        ("lang:klingon", 'unknown language: "klingon"'),
        ("patterntype:structural foo", "patterntype:structural needs comby"),
    ],
)
def test_bad_queries_get_sourcegraphs_errors(
    samples: Any, tmp_path: Path, capsys: Capture, query: str, message: str
) -> None:
    spec = str(_spec_file(tmp_path, QUERY_SPEC.format(query=query)))
    assert _batch(samples, "repos", "-f", spec) == 1
    err = capsys.readouterr().err
    assert err.startswith("resolving repositories: GraphQL errors: ") and message in err
    assert _batch(samples, "preview", "-f", spec) == 1
    err = capsys.readouterr().err
    assert " \u2a2f Error:\n   resolving repositories: GraphQL errors: " in err and message in err
    assert samples.jobs(queue="batches") == []


def test_an_unknown_filter_is_taken_as_a_pattern_as_sourcegraph_does(
    samples: Any, tmp_path: Path, capsys: Capture
) -> None:
    spec = str(_spec_file(tmp_path, QUERY_SPEC.format(query="entrypoint:main")))
    assert _batch(samples, "repos", "-f", spec) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("✱ ")


# -- preview and apply -----------------------------------------------------------------------


def test_preview_runs_the_jobs_and_prints_the_preview_url(
    hosted: Any, tmp_path: Path, capsys: Capture
) -> None:
    spec = str(_spec_file(tmp_path))
    with _Executor(hosted) as executor:
        assert _batch(hosted, "preview", "-f", spec, "-timeout", "2m") == 0
    assert executor.done == 1
    err = capsys.readouterr().err
    assert err == (
        " ✓ Parsing batch spec\n"
        " ✓ Resolving namespace\n"
        " ✓ Resolved 1 workspaces from 1 repositories\n"
        " ✓ Found 0 cached changeset specs; 1 task needs to be executed\n"
        " ✓ Executing... (1/1, 0 errored)\n"
        " ✓ Sending changeset spec\n"
        " ✓ Creating batch spec on Sourcegraph\n"
        "\n"
        " ✓ To preview or apply the batch spec, go to:\n"
        f"   {hosted.url}/sandbox/ui/batches/1\n"
    )
    [job] = hosted.jobs(queue="batches")
    payload = hosted.job(job["id"])["payload"]
    assert payload["cliSteps"][0]["command"][-2:] == ["-timeout", "120000ms"]
    page = hosted.client.get("/sandbox/ui/batches/1", headers=hosted.admin_headers)
    assert page.status_code == 200 and "Hello github.com/sandbox/hello-go" in page.text
    assert hosted._call("GET", "/.sandbox/batches/1/summary")["applied"] is False

    # Again: every step is cached, nothing runs; -clear-cache runs it again.
    assert _batch(hosted, "apply", spec, "-json") == 0
    out, err = capsys.readouterr()
    assert " ✓ Found 1 cached changeset spec; no tasks need to be executed\n" in err
    assert err.endswith(
        " ✓ Applying batch spec\n\n ✓ Batch change applied!\n"
        f"   To view the batch change, go to:\n   {hosted.url}/sandbox/ui/batches/2\n"
    )
    status = json.loads(out)
    assert status["applied"] is True and len(status["changeset_specs"]) == 1
    with _Executor(hosted) as executor:
        assert _batch(hosted, "apply", "-clear-cache", "-f", spec, "-summary") == 0
    assert executor.done == 1
    assert "1 task needs to be executed" in capsys.readouterr().err


def test_a_failed_workspace_is_src_clis_task_error_unless_skip_errors(
    hosted: Any, tmp_path: Path, capsys: Capture
) -> None:
    spec = str(_spec_file(tmp_path))
    with _Executor(hosted, fail=("github.com/sandbox/hello-go",)):
        assert _batch(hosted, "preview", "-f", spec) == 1
    err = capsys.readouterr().err
    assert " ✓ Executing... (1/1, 1 errored)\n\n \u2a2f Error:\n" in err
    assert (
        f"   github.com/sandbox/hello-go:\n   step failed\n   Log: {hosted.url}/sandbox/ui/jobs/1\n"
    ) in err
    assert err.endswith(
        "💡 The troubleshooting documentation can help to narrow down the cause of the errors:\n"
        "   https://docs.sourcegraph.com/batch_changes/references/troubleshooting\n"
    )
    assert "Creating batch spec" not in err
    with _Executor(hosted, fail=("github.com/sandbox/hello-go",)):
        assert _batch(hosted, "preview", "-skip-errors", "-clear-cache", "-f", spec) == 0
    err = capsys.readouterr().err
    assert "❗️ Skipping errors because -skip-errors was used.\n" in err
    assert "To preview or apply the batch spec, go to:" in err


def test_an_errored_job_the_sandbox_retries_is_waited_for(
    sandbox_factory: Any, tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = sandbox_factory(max_num_retries=2)
    box._call("POST", "/.sandbox/repos/samples")
    box.register_executor(EXECUTOR)
    monkeypatch.setenv("SANDBOX_SECRET_GITHUB_TOKEN", "t0ps3cret")
    with _Executor(box, errored=1) as executor:
        assert _batch(box, "preview", "-f", str(_spec_file(tmp_path))) == 0
    assert executor.done == 2  # errored once, then completed
    assert " ✓ Executing... (1/1, 0 errored)\n" in capsys.readouterr().err
    assert [j["state"] for j in box.jobs(queue="batches")] == ["completed"]


def test_fail_fast_cancels_the_remaining_jobs(hosted: Any, tmp_path: Path, capsys: Capture) -> None:
    go = "  - repository: github.com/sandbox/hello-go\n"
    two = SPEC.replace(go, go + go.replace("hello-go", "hello-py"))
    spec = str(_spec_file(tmp_path, two))
    with _Executor(hosted, fail=("github.com/sandbox/hello-go",), limit=1):
        assert _batch(hosted, "apply", "-fail-fast", "-f", spec) == 1
    err = capsys.readouterr().err
    assert " ✓ Executing... (1/2, 1 errored)\n\n \u2a2f 2 errors:\n" in err
    assert "   github.com/sandbox/hello-py:\n   canceled\n" in err
    states = sorted(j["state"] for j in hosted.jobs(queue="batches"))
    assert states == ["canceled", "failed"]


def test_stdin_and_wait_output(hosted: Any, tmp_path: Path) -> None:
    """`-f -` reads the spec from stdin (a real process); `-wait` prints each changeset spec."""
    argv = [sys.executable, "-m", "executor", "sandbox", "batch", "preview", "-f", "-", "-wait"]
    argv += ["-url", hosted.url, "-token", hosted.token]
    with _Executor(hosted):
        done = subprocess.run(argv, input=SPEC, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "To preview or apply the batch spec, go to:" in done.stderr
    assert "changeset spec #1" in done.stdout and "repository  github.com/sandbox/hello-go" in (
        done.stdout
    )
    assert "+bar" in done.stdout


def test_no_file_and_a_terminal_on_stdin_is_src_clis_error(sandbox: Any) -> None:
    """No `-f` and no FILE: src-cli reads stdin, but refuses a terminal with nothing typed."""
    primary, secondary = os.openpty()
    argv = [sys.executable, "-m", "executor", "sandbox", "batch", "validate"]
    argv += ["-url", sandbox.url, "-token", sandbox.token]
    try:
        done = subprocess.run(argv, stdin=secondary, capture_output=True, text=True, timeout=300)
    finally:
        os.close(primary)
        os.close(secondary)
    text = (
        "-f specified, but no input was detected on stdin; did you forget to pipe a batch spec in?"
    )
    assert done.returncode == 1
    assert done.stderr == f"❌ Batch spec failed validation.\n   1. {text}\n{text}\n"


def test_an_invalid_spec_exits_2_before_anything_is_created(
    sandbox: Any, tmp_path: Path, capsys: Capture
) -> None:
    bad = _spec_file(tmp_path, "name: ok\nsteps:\n  - run: x\n    container: y\n", "bad.yaml")
    assert _batch(sandbox, "apply", "-f", str(bad)) == 2
    err = capsys.readouterr().err
    assert err.startswith("❌ Batch spec failed validation.\n   1. batch spec includes steps")
    response = sandbox.client.get("/.sandbox/batches/1", headers=sandbox.admin_headers)
    assert response.status_code == 404


# -- new -------------------------------------------------------------------------------------


def test_new_writes_src_clis_starter_spec_once(
    sandbox: Any, tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no git identity: src-cli's default author
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    assert sandbox_main(["batch", "new"]) == 0
    assert capsys.readouterr().out == "batch.yaml created.\n"
    text = (tmp_path / "batch.yaml").read_text()
    assert text == EXAMPLE_SPEC.format(name="Sourcegraph", email="batch-changes@sourcegraph.com")
    assert "  - repositoriesMatchingQuery: file:README.md\n" in text
    assert sandbox_main(["batch", "new"]) == 1
    assert capsys.readouterr().err == "file batch.yaml already exists\n"
    assert sandbox_main(["batch", "new", "-f", "other.yaml", "extra"]) == 2
    assert capsys.readouterr().err.startswith("error: additional arguments not allowed\n\n")
    assert _batch(sandbox, "validate", "-f", "batch.yaml") == 0


# -- a spec over 1,000 repositories ----------------------------------------------------------

MANY = 1200
MANY_SPEC = """
name: many
on:
  - repositoriesMatchingQuery: repo:^github\\.com/many/ file:README.md
steps:
  - run: echo hi >> README.md
    container: executor-busybox:latest
changesetTemplate:
  title: Many
  branch: many
  commit:
    message: many
"""


def _seed_cache(box: Any, raw: str, workspaces: list[dict[str, Any]]) -> None:
    """Store the step result of every workspace under the key the engine would compute, as a
    finished run would have: the next apply finds them all cached and starts no job."""
    spec = parse_batch_spec(raw)
    result = _result(0, README_DIFF).to_json()
    attributes = BatchChangeAttributes(name=spec.name, description=spec.description)
    entries = []
    for ws in workspaces:
        repo = CacheRepository(
            id=ws["repository_id"],
            name=ws["repository"],
            base_ref=ws["branch"],
            base_rev=ws["commit"],
            file_matches=ws["searchResultPaths"],
        )
        key = key_for_workspace(
            repository=repo, steps=spec.steps or [], step_index=0, batch_change=attributes
        )
        entries.append((key, result))
    store = BatchStore(str(box.settings.db_path))
    with store.transaction() as conn:
        store.put_cache_entries(conn, "", entries)


def test_a_spec_over_1000_repositories_stays_responsive(
    sandbox: Any, sample_repo: Any, tmp_path: Path, capsys: Capture
) -> None:
    store = sandbox.store
    for number in range(MANY):  # tiny repositories sharing one history
        store.add_repo(f"github.com/many/repo-{number:04d}", str(sample_repo.path))
    spec = _spec_file(tmp_path, MANY_SPEC)
    raw = spec.read_text()

    assert _batch(sandbox, "repos", "-f", str(spec)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == MANY + 1 and lines[-1] == f"✱ {MANY} workspaces total"
    first = "github.com/many/repo-0000"
    assert lines[0] == f"  {first} refs/heads/main ({sandbox.url}/{first})"

    # Created through the API: 1,200 queued jobs; the index reads no payload or log.
    workspaces = sandbox._call("POST", "/.sandbox/batches", json={"spec": raw})["workspaces"]
    assert len(workspaces) == MANY
    index = sandbox.client.get("/sandbox/ui/", headers=sandbox.admin_headers)
    assert index.status_code == 200 and len(index.content) < 1024 * 1024
    assert f"{MANY - 500} older job(s) not shown." in index.text
    queued = sandbox.client.get("/sandbox/ui/batches/1", headers=sandbox.admin_headers)
    assert f"queued {MANY}" in queued.text and f"/sandbox/ui/jobs/{MANY}" not in queued.text

    # As if those jobs had run: the preview finds every result cached.
    _seed_cache(sandbox, raw, workspaces)
    assert _batch(sandbox, "preview", "-f", str(spec)) == 0
    err = capsys.readouterr().err
    assert f" ✓ Resolved {MANY} workspaces from {MANY} repositories\n" in err
    assert "⚠️ Batch changes with more than 500 workspaces may be unwieldy to manage.\n" in err
    assert "  this batch change if you want, but you may want to break it into 3 or more\n" in err
    assert f" ✓ Found {MANY} cached changeset specs; no tasks need to be executed\n" in err
    assert f" ✓ Sending {MANY} changeset specs\n" in err
    assert len(sandbox.jobs(queue="batches")) == MANY  # only the first batch spec's

    ui = "/sandbox/ui/batches/2"
    page = sandbox.client.get(ui, headers=sandbox.admin_headers)
    assert page.status_code == 200 and len(page.content) < 256 * 1024
    assert f"page 1 of 12 ({MANY} in all)" in page.text
    assert f"page 1 of 60 ({MANY} in all)" in page.text
    assert page.text.count('<section class="changeset">') == 20
    assert "repo-0099" in page.text and "repo-0100" not in page.text
    assert f"completed {MANY}" in page.text and f"changeset specs {MANY}" in page.text
    last = sandbox.client.get(f"{ui}?page=12&cpage=60", headers=sandbox.admin_headers)
    assert "repo-1199" in last.text and "repo-0000" not in last.text and 'rel="prev"' in last.text
