"""Pytest plugin: a real sandbox frontend on loopback, and a small git repository to host.

Fixtures:
- `sandbox`: a fresh server (own SQLite file, own free port) for one test. The object has
  `.url`, `.token`, `.store` (direct store access), `.client` (an `httpx.Client` on `.url`)
  and helpers `add_repo`, `enqueue`, `job`, `jobs`, `cancel`, `put_file`, `wait_state`,
  `register_executor` (the startup heartbeat), `dequeue`, `job_headers`.
- `sandbox_factory(**settings)`: the same with settings changed, e.g.
  `sandbox_factory(stalled_max_age=0.5, resetter_interval=0.1)`.
- `sample_repo`: a git repository with two commits: `.name`, `.path`, `.head`, `.commits`.

Helpers: `apply_and_wait(box, spec, capsys)` runs `batch apply --wait --json` (the CLI a site
admin runs) and returns its status, saying why when it fails; `specs_by_workspace(status)` keys
its changeset specs by `repository:path`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from executor.sandbox.batch_cli import main as batch_cli
from executor.sandbox.server import SandboxServer
from executor.sandbox.state import SandboxSettings
from executor.sandbox.store import SandboxStore

__all__ = ["SampleRepo", "Sandbox", "apply_and_wait", "specs_by_workspace"]

SANDBOX_TOKEN = "hunter2"
TERMINAL_STATES = ("completed", "errored", "failed", "canceled")


@dataclass
class Sandbox:
    """A running sandbox and the admin calls tests need."""

    server: SandboxServer
    token: str
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def settings(self) -> SandboxSettings:
        return self.server.settings

    @property
    def store(self) -> SandboxStore:
        """A store on the same database file (for assertions and time travel)."""
        return SandboxStore(
            self.settings.db_path,
            stalled_max_age=self.settings.stalled_max_age,
            max_num_resets=self.settings.max_num_resets,
            max_num_retries=self.settings.max_num_retries,
        )

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"token-executor {self.token}"}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=self.admin_headers, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def add_repo(self, name: str, path: Path | str, mode: str = "clone") -> str:
        """Host a local repository under `name`; returns the hosted path."""
        body = {"name": name, "path": str(path), "mode": mode}
        return str(self._call("POST", "/.sandbox/repos", json=body)["path"])

    def enqueue(self, job: dict[str, Any], queue: str = "batches") -> int:
        """Enqueue a Job wire body; returns the job ID."""
        return int(self._call("POST", "/.sandbox/jobs", params={"queue": queue}, json=job)["id"])

    def job(self, job_id: int) -> dict[str, Any]:
        """The job with its state, payload and execution logs."""
        result: dict[str, Any] = self._call("GET", f"/.sandbox/jobs/{job_id}")
        return result

    def jobs(self, queue: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("queue", queue), ("state", state)) if v}
        result: list[dict[str, Any]] = self._call("GET", "/.sandbox/jobs", params=params)
        return result

    def cancel(self, job_id: int) -> str:
        return str(self._call("POST", f"/.sandbox/jobs/{job_id}/cancel")["state"])

    def put_file(self, bucket: str, key: str, content: bytes) -> None:
        self._call("PUT", f"/.sandbox/files/{bucket}/{key}", content=content)

    def register_executor(self, name: str, queue: str = "batches") -> None:
        """Send the startup ping, so the executor's job tokens are accepted."""
        response = self.client.post(
            f"/.executors/queue/{queue}/heartbeat",
            headers=self.admin_headers,
            json={"version": "", "executorName": name},
        )
        assert response.status_code == 200, response.text

    def dequeue(
        self, executor_name: str, queue: str = "batches", version: str = "5.3.0"
    ) -> dict[str, Any] | None:
        """Dequeue as an executor would (executor token); the Job body, or None on 204."""
        response = self.client.post(
            f"/.executors/queue/{queue}/dequeue",
            headers=self.admin_headers,
            json={"executorName": executor_name, "version": version},
        )
        assert response.status_code in (200, 204), response.text
        return None if response.status_code == 204 else dict(response.json())

    @staticmethod
    def job_headers(job: dict[str, Any], executor_name: str) -> dict[str, str]:
        """The job-token headers an executor sends for `job`."""
        return {
            "Authorization": f"Bearer {job['token']}",
            "X-Sourcegraph-Job-ID": str(job["id"]),
            "X-Sourcegraph-Executor-Name": executor_name,
        }

    def wait_state(
        self, job_id: int, states: str | tuple[str, ...] = TERMINAL_STATES, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll until the job is in one of `states`; returns the job."""
        wanted = (states,) if isinstance(states, str) else states
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in wanted:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} is {job['state']}, not one of {wanted}")
            time.sleep(0.05)

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def start(**overrides: Any) -> Sandbox:
        settings = SandboxSettings(
            token=SANDBOX_TOKEN, data_dir=tmp_path_factory.mktemp("sandbox-data")
        )
        settings = replace(settings, **overrides)
        box = Sandbox(SandboxServer(settings).start(), settings.token)
        started.append(box)
        return box

    yield start
    for box in started:
        box.close()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    return sandbox_factory()


def apply_and_wait(
    box: Sandbox, spec: Path, capsys: pytest.CaptureFixture[str], wait_timeout: str = "300s"
) -> dict[str, Any]:
    """`batch apply SPEC --wait --json` against `box`; the status it printed.

    On failure the assertion shows the failed jobs' last log entries: what a reader needs.
    """
    capsys.readouterr()
    argv = ["batch", "apply", str(spec), "--wait", "--json", "--wait-timeout", wait_timeout]
    code = batch_cli([*argv, "--url", box.url, "--token", box.token])
    out = capsys.readouterr().out
    if code != 0:
        for job in box.jobs(queue="batches"):
            logs = box.job(job["id"])["execution_logs"] or []
            out += "".join(f"\n--- {e['key']}\n{e.get('out', '')[-2000:]}" for e in logs[-3:])
    assert code == 0, out
    status: dict[str, Any] = json.loads(out)
    return status


def specs_by_workspace(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An apply status's changeset specs by `repository:workspace path`."""
    paths = {w["id"]: w["path"] for w in status["workspaces"]}
    return {
        f"{item['repository']}:{paths[item['workspace_id']]}": item["spec"]
        for item in status["changeset_specs"]
    }


@dataclass(frozen=True)
class SampleRepo:
    """A local git repository: `commits` oldest first, `head` the last."""

    name: str
    path: Path
    commits: tuple[str, ...]

    @property
    def head(self) -> str:
        return self.commits[-1]


def _git(cwd: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Sandbox Test",
        "GIT_AUTHOR_EMAIL": "sandbox@example.com",
        "GIT_COMMITTER_NAME": "Sandbox Test",
        "GIT_COMMITTER_EMAIL": "sandbox@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@pytest.fixture
def sample_repo(tmp_path: Path) -> SampleRepo:
    path = tmp_path / "sample-repo"
    path.mkdir()
    _git(path, "init", "--quiet", "--initial-branch=main")
    (path / "README.md").write_text("# sample\n")
    _git(path, "add", "README.md")
    _git(path, "commit", "--quiet", "-m", "first")
    first = _git(path, "rev-parse", "HEAD")
    (path / "src").mkdir()
    (path / "src" / "hello.txt").write_text("hello\n")
    _git(path, "add", "src/hello.txt")
    _git(path, "commit", "--quiet", "-m", "second")
    second = _git(path, "rev-parse", "HEAD")
    return SampleRepo(name="github.com/sourcegraph/sample", path=path, commits=(first, second))
