"""Repository fetch through the local git proxy, against real git smart-HTTP upstreams.

Upstream 1 is `git http-backend` (git's own smart-HTTP CGI) behind a tiny threaded HTTP server
that records every request's headers and refuses wrong credentials, like the frontend.
Upstream 2 is the sandbox frontend (`executor/sandbox`), with a real dequeued job token.
"""

from __future__ import annotations

import asyncio
import gzip
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fixtures_sandbox import SampleRepo, Sandbox

from executor.errors import WorkspaceError
from executor.logstream.logger import ExecutionLogger, Redactor
from executor.wire import ExecutionLogEntry, Job
from executor.workspace.clone import Workspace, prepare_workspace, teardown_workspace
from executor.workspace.gitproxy import git_proxy
from executor.workspace.marker import marker_path

REPO = "github.com/test/repo"
JOB_TOKEN = "f" * 40
EXEC_TOKEN = "executor-secret-token"
EXECUTOR = "exec-test-1"


def _git(cwd: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@dataclass
class Upstream:
    url: str
    root: Path
    commits: list[str]
    requests: list[dict[str, Any]] = field(default_factory=list)
    expected_auth: str = f"Bearer {JOB_TOKEN}"


def _make_handler(up: Upstream) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            body = self._body() if self.command == "POST" else b""
            path, _, query = self.path.partition("?")
            up.requests.append(
                {"method": self.command, "path": self.path, "headers": self.headers, "body": body}
            )
            if self.headers.get("Authorization") != up.expected_auth:
                self.send_error(401)
                return
            prefix = "/.executors/git"
            if not path.startswith(prefix + "/"):
                self.send_error(404)
                return
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(up.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path[len(prefix) :],
                "REQUEST_METHOD": self.command,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_ADDR": "127.0.0.1",
            }
            if enc := self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = enc
            if proto := self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = proto
            done = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
            )
            head, _, payload = done.stdout.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.split(b"\r\n"):
                name, _, value = line.decode().partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _serve
        do_POST = _serve

    return Handler


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    root = tmp_path / "srv"
    repo = root / REPO
    repo.mkdir(parents=True)
    _git(repo, "init", "--quiet", "--initial-branch=main")
    for key, value in [
        ("uploadpack.allowFilter", "true"),
        ("uploadpack.allowAnySHA1InWant", "true"),
    ]:
        _git(repo, "config", key, value)
    (repo / "README.md").write_text("one\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first")
    first = _git(repo, "rev-parse", "HEAD")
    _git(repo, "tag", "v1")
    (repo / "src").mkdir()
    (repo / "src" / "a.txt").write_text("a\n")
    (repo / "docs").mkdir()
    (repo / "docs" / "b.txt").write_text("b\n")
    (repo / "README.md").write_text("two\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "second")
    second = _git(repo, "rev-parse", "HEAD")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    up = Upstream(
        url=f"http://127.0.0.1:{server.server_address[1]}", root=root, commits=[first, second]
    )
    server.RequestHandlerClass = _make_handler(up)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield up
    server.shutdown()
    server.server_close()


@dataclass
class MemorySink:
    entries: dict[int, ExecutionLogEntry] = field(default_factory=dict)

    async def add_execution_log_entry(self, job: Job, entry: ExecutionLogEntry) -> int:
        self.entries[len(self.entries) + 1] = entry
        return len(self.entries)

    async def update_execution_log_entry(
        self, job: Job, entry_id: int, entry: ExecutionLogEntry
    ) -> None:
        self.entries[entry_id] = entry


class NoFiles:
    async def get_file(self, job: Job, bucket: str, key: str) -> bytes:
        raise AssertionError("no files expected")


def host_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}


async def fetch(job: Job, tmp_path: Path, frontend: str, **kw: Any) -> tuple[Workspace, MemorySink]:
    sink = MemorySink()
    logger = ExecutionLogger(sink, job, Redactor.for_job(job, EXEC_TOKEN), interval=0.05)
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    try:
        ws = await prepare_workspace(
            job,
            root=root,
            executor_name=EXECUTOR,
            frontend_url=frontend,
            executor_token=EXEC_TOKEN,
            logger=logger,
            files=NoFiles(),
            env=host_env(tmp_path),
            **kw,
        )
    finally:
        await logger.flush()
    return ws, sink


def commands(sink: MemorySink) -> list[tuple[str, list[str] | None]]:
    return [(e.key, e.command) for _, e in sorted(sink.entries.items())]


def assert_no_secret(ws: Workspace, sink: MemorySink) -> None:
    config = (ws.repo_path / ".git" / "config").read_text()
    for blob in [config, repr(commands(sink)), *(e.out for e in sink.entries.values())]:
        assert JOB_TOKEN not in blob and EXEC_TOKEN not in blob


def test_full_fetch_exact_commands_and_headers(upstream: Upstream, tmp_path: Path) -> None:
    head = upstream.commits[1]
    job = Job(id=7, token=JOB_TOKEN, repositoryName=REPO, commit=head)
    ws, sink = asyncio.run(fetch(job, tmp_path, upstream.url + "/"))
    rp = str(ws.repo_path)
    got = commands(sink)
    port = got[1][1][-1].split(":")[2].split("/")[0]  # type: ignore[index]
    g = ["git", "-C", rp]
    assert got == [
        ("setup.git.init", [*g, "init"]),
        (
            "setup.git.add-remote",
            [*g, "remote", "add", "origin", f"http://127.0.0.1:{port}/{REPO}"],
        ),
        ("setup.git.disable-gc", [*g, "config", "--local", "gc.auto", "0"]),
        (
            "setup.git.fetch",
            [
                *g,
                "-c",
                "protocol.version=2",
                "fetch",
                "--progress",
                "--no-recurse-submodules",
                "origin",
                head,
            ],
        ),
        ("setup.git.checkout", [*g, "checkout", "--progress", "--force", head]),
        ("setup.git.set-remote", [*g, "remote", "set-url", "origin", REPO]),
    ]
    assert all(e.exit_code == 0 for e in sink.entries.values())
    assert any(line.startswith("stderr: ") for line in sink.entries[4].out.splitlines())
    assert (ws.path / "README.md").read_text() == "two\n"
    assert _git(ws.path, "rev-parse", "HEAD") == head
    assert _git(ws.path, "remote", "get-url", "origin") == REPO
    assert_no_secret(ws, sink)
    # The owner marker is beside the workspace, out of the steps' mount (and of any diff).
    assert marker_path(ws.path).exists() and marker_path(ws.path).parent == ws.path.parent
    assert _git(ws.path, "status", "--porcelain", "--ignored=no") == ""
    # `git init` copied the executor's template, not the host's: git's layout without the
    # sample hooks (an empty `hooks/` for a step's own, no legacy `branches/`).
    dot_git = ws.path / ".git"
    assert (dot_git / "info" / "exclude").read_text().startswith("# git ls-files --others")
    assert (dot_git / "description").is_file() and not (dot_git / "branches").exists()
    assert list((dot_git / "hooks").iterdir()) == []
    # Every request reached the upstream under /.executors/git with the proxy's headers.
    assert upstream.requests
    for req in upstream.requests:
        assert req["path"].startswith(f"/.executors/git/{REPO}/")
        h = req["headers"]
        assert h["Authorization"] == f"Bearer {JOB_TOKEN}"
        assert h["X-Sourcegraph-Actor-UID"] == "internal"
        assert h["X-Sourcegraph-Job-ID"] == "7"
        assert h["X-Sourcegraph-Executor-Name"] == EXECUTOR
        assert h["Host"] == upstream.url.removeprefix("http://")
    assert {r["method"] for r in upstream.requests} == {"GET", "POST"}
    asyncio.run(_teardown(ws))
    assert not ws.path.exists()


async def _teardown(ws: Workspace) -> None:
    sink = MemorySink()
    job = Job(id=7)
    logger = ExecutionLogger(sink, job, Redactor({}))
    await teardown_workspace(ws, logger, keep=False)
    await logger.flush()
    assert sink.entries[1].out == f"Removing {ws.path}\n" and sink.entries[1].exit_code == 0


def test_shallow_tags_sparse_and_old_commit_by_sha(upstream: Upstream, tmp_path: Path) -> None:
    first, head = upstream.commits
    job = Job(
        id=8,
        token=JOB_TOKEN,
        repositoryName=REPO,
        commit=head,
        shallowClone=True,
        sparseCheckout=["src/*"],
        repositoryDirectory="sub/repo",
    )
    ws, sink = asyncio.run(fetch(job, tmp_path, upstream.url))
    assert ws.repo_path == ws.path / "sub" / "repo"
    g = ["git", "-C", str(ws.repo_path)]
    got = dict(commands(sink))
    assert list(got) == [
        "setup.git.init",
        "setup.git.add-remote",
        "setup.git.disable-gc",
        "setup.git.fetch",
        "setup.git.sparse-checkout-config",
        "setup.git.sparse-checkout-set",
        "setup.git.checkout",
        "setup.git.set-remote",
    ]
    assert got["setup.git.fetch"] == [
        *g,
        "-c",
        "protocol.version=2",
        "fetch",
        "--progress",
        "--no-recurse-submodules",
        "--no-tags",
        "--depth=1",
        "--filter=blob:none",
        "origin",
        head,
    ]
    assert got["setup.git.sparse-checkout-config"] == [
        *g,
        "config",
        "--local",
        "core.sparseCheckout",
        "1",
    ]
    assert got["setup.git.sparse-checkout-set"] == [
        *g,
        "sparse-checkout",
        "set",
        "--no-cone",
        "--",
        "src/*",
    ]
    assert got["setup.git.checkout"] == [
        *g,
        "-c",
        "protocol.version=2",
        "checkout",
        "--progress",
        "--force",
        head,
    ]
    assert (ws.repo_path / "src" / "a.txt").read_text() == "a\n"
    assert not (ws.repo_path / "docs").exists()
    assert _git(ws.repo_path, "rev-list", "--count", "HEAD") == "1"
    assert_no_secret(ws, sink)

    # An older commit, by SHA, shallow, with tags.
    job = Job(
        id=9, token=JOB_TOKEN, repositoryName=REPO, commit=first, shallowClone=True, fetchTags=True
    )
    ws, sink = asyncio.run(fetch(job, tmp_path, upstream.url))
    fetch_argv = dict(commands(sink))["setup.git.fetch"]
    assert fetch_argv is not None
    assert fetch_argv[-5:] == ["--no-recurse-submodules", "--tags", "--depth=1", "origin", first]
    assert _git(ws.path, "rev-parse", "HEAD") == first
    assert (ws.path / "README.md").read_text() == "one\n"
    assert "v1" in _git(ws.path, "tag", "--list")


def test_executor_token_when_job_has_none(upstream: Upstream, tmp_path: Path) -> None:
    upstream.expected_auth = f"token-executor {EXEC_TOKEN}"
    job = Job(id=10, token="", repositoryName=REPO, commit=upstream.commits[1])
    ws, sink = asyncio.run(fetch(job, tmp_path, upstream.url))
    assert (ws.path / "README.md").exists()
    assert_no_secret(ws, sink)


def test_fetch_failure_message_and_cleanup(upstream: Upstream, tmp_path: Path) -> None:
    job = Job(id=11, token=JOB_TOKEN, repositoryName=REPO, commit="0" * 40)
    with pytest.raises(WorkspaceError) as info:
        asyncio.run(fetch(job, tmp_path, upstream.url))
    msg = str(info.value)
    assert msg.startswith("failed setup.git.fetch: command failed with exit code 128: ")
    assert JOB_TOKEN not in msg
    assert info.value.step_key == "setup.git.fetch"
    assert list((tmp_path / "root").iterdir()) == []  # the workspace was removed

    upstream.expected_auth = "Bearer something-else"  # the frontend refuses the token
    job = Job(id=12, token=JOB_TOKEN, repositoryName=REPO, commit=upstream.commits[1])
    with pytest.raises(WorkspaceError, match=r"failed setup\.git\.fetch: command failed"):
        asyncio.run(fetch(job, tmp_path, upstream.url))


def test_proxy_forbids_other_paths_and_streams_chunked_gzip(upstream: Upstream) -> None:
    job = Job(id=13, token=JOB_TOKEN, repositoryName=REPO)

    async def main() -> None:
        async with git_proxy(
            job, frontend_url=upstream.url, executor_name=EXECUTOR, executor_token=EXEC_TOKEN
        ) as port:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, trust_env=False) as client:
                for path in [
                    "/github.com/other/repo/info/refs",
                    f"/{REPO}",
                    f"/{REPO}/../../other/info/refs",
                    f"/{REPO}/%2e%2e/x",
                    "/",
                ]:
                    r = await client.get(path)
                    assert r.status_code == 403, path
                assert upstream.requests == []

                # A chunked, gzipped protocol-v2 ls-refs request, passed through untouched.
                payload = gzip.compress(b"0014command=ls-refs\n00010000")

                async def chunks() -> Any:
                    for i in range(0, len(payload), 7):
                        yield payload[i : i + 7]

                r = await client.post(
                    f"/{REPO}/git-upload-pack",
                    content=chunks(),
                    headers={
                        "Content-Type": "application/x-git-upload-pack-request",
                        "Content-Encoding": "gzip",
                        "Git-Protocol": "version=2",
                        "Authorization": "Basic c3B5OnNweQ==",  # replaced by the proxy
                    },
                )
                assert r.status_code == 200, r.text
                assert f"{upstream.commits[1]} refs/heads/main" in r.text
        req = upstream.requests[-1]
        assert req["headers"]["Transfer-Encoding"] == "chunked"
        assert req["headers"]["Content-Encoding"] == "gzip"
        assert req["headers"]["Authorization"] == f"Bearer {JOB_TOKEN}"
        assert req["body"] == payload

    asyncio.run(main())


def test_fetch_through_sandbox_frontend(
    sandbox: Sandbox, sample_repo: SampleRepo, tmp_path: Path
) -> None:
    sandbox.add_repo(sample_repo.name, sample_repo.path)
    job_id = sandbox.enqueue(
        {"repositoryName": sample_repo.name, "commit": sample_repo.commits[0], "shallowClone": True}
    )
    sandbox.register_executor(EXECUTOR)
    r = sandbox.client.post(
        "/.executors/queue/batches/dequeue",
        headers=sandbox.admin_headers,
        json={"executorName": EXECUTOR, "version": "5.3.0"},
    )
    assert r.status_code == 200, r.text
    job = Job.model_validate(r.json())
    assert job.id == job_id and job.token
    sink = MemorySink()

    async def main() -> Workspace:
        logger = ExecutionLogger(sink, job, Redactor.for_job(job, sandbox.token), interval=0.05)
        root = tmp_path / "root"
        root.mkdir()
        try:
            return await prepare_workspace(
                job,
                root=root,
                executor_name=EXECUTOR,
                frontend_url=sandbox.url,
                executor_token=sandbox.token,
                logger=logger,
                files=NoFiles(),
                env=host_env(tmp_path),
            )
        finally:
            await logger.flush()

    ws = asyncio.run(main())
    assert _git(ws.path, "rev-parse", "HEAD") == sample_repo.commits[0]
    assert (ws.path / "README.md").read_text() == "# sample\n"
    assert not (ws.path / "src").exists()
    config = (ws.path / ".git" / "config").read_text()
    assert job.token not in config and sandbox.token not in config


@pytest.mark.parametrize(("scheme", "bundle_loads"), [("https", 1), ("http", 0)])
def test_proxies_share_one_tls_context(
    monkeypatch: pytest.MonkeyPatch, scheme: str, bundle_loads: int
) -> None:
    """Loading the CA bundle cost 15-25 ms before every job's first git command; now once,
    and never for a plain http frontend."""
    import ssl

    from executor.workspace import gitproxy

    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    gitproxy._tls_context.cache_clear()
    job = Job(id=14, token=JOB_TOKEN, repositoryName=REPO)

    async def main() -> None:
        for _ in range(3):
            async with git_proxy(
                job,
                frontend_url=f"{scheme}://127.0.0.1:9",
                executor_name=EXECUTOR,
                executor_token="",
            ):
                pass

    asyncio.run(main())
    assert len(loads) == bundle_loads
