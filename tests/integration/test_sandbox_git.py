"""Git smart HTTP and the files API of the sandbox, with real `git` and job tokens (Ex16, Ex17)."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from fixtures_sandbox import SampleRepo, Sandbox


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(
        ["git", "-C", str(cwd), *args], env=env, capture_output=True, text=True, check=check
    )


def _job(sandbox: Sandbox, repo: SampleRepo, executor: str = "exec-1") -> dict[str, Any]:
    sandbox.add_repo(repo.name, repo.path)
    sandbox.enqueue({"repositoryName": repo.name, "commit": repo.head})
    sandbox.register_executor(executor)
    job = sandbox.dequeue(executor)
    assert job is not None
    return job


def _auth_config(headers: dict[str, str]) -> list[str]:
    out = []
    for name, value in headers.items():
        out += ["-c", f"http.extraHeader={name}: {value}"]
    return out


@pytest.mark.parametrize("protocol", ["2", "0"])
@pytest.mark.parametrize("shallow", [True, False])
def test_fetch_commit_by_sha(
    sandbox: Sandbox, sample_repo: SampleRepo, tmp_path: Path, protocol: str, shallow: bool
) -> None:
    job = _job(sandbox, sample_repo)
    headers = sandbox.job_headers(job, "exec-1") | {"X-Sourcegraph-Actor-UID": "internal"}
    ws = tmp_path / "ws"
    ws.mkdir()
    _git(ws, "init", "-q")
    _git(ws, "remote", "add", "origin", f"{sandbox.url}/.executors/git/{sample_repo.name}")
    depth = ["--depth=1"] if shallow else []
    fetch = ["-c", f"protocol.version={protocol}", "fetch", "--no-tags", *depth]
    _git(ws, *_auth_config(headers), *fetch, "origin", sample_repo.head)
    _git(ws, "checkout", "-q", "--force", sample_repo.head)
    assert (ws / "src" / "hello.txt").read_text() == "hello\n"
    count = _git(ws, "rev-list", "--count", "HEAD").stdout.strip()
    assert count == ("1" if shallow else "2")


def test_sparse_fetch_with_blob_filter(
    sandbox: Sandbox, sample_repo: SampleRepo, tmp_path: Path
) -> None:
    job = _job(sandbox, sample_repo)
    ws = tmp_path / "ws"
    ws.mkdir()
    _git(ws, "init", "-q")
    _git(ws, "remote", "add", "origin", f"{sandbox.url}/.executors/git/{sample_repo.name}")
    auth = _auth_config(sandbox.job_headers(job, "exec-1"))
    _git(
        ws,
        *auth,
        "-c",
        "protocol.version=2",
        "fetch",
        "--filter=blob:none",
        "origin",
        sample_repo.head,
    )
    _git(ws, "config", "--local", "core.sparseCheckout", "1")
    _git(ws, "sparse-checkout", "set", "--no-cone", "--", "src/*")
    _git(ws, *auth, "checkout", "-q", "--force", sample_repo.head)
    assert (ws / "src" / "hello.txt").exists()
    assert not (ws / "README.md").exists()


def test_clone_refused_with_wrong_token_or_repo(
    sandbox: Sandbox, sample_repo: SampleRepo, tmp_path: Path
) -> None:
    job = _job(sandbox, sample_repo)
    sandbox.add_repo("github.com/other/repo", sample_repo.path, mode="register")
    good = sandbox.job_headers(job, "exec-1")
    cases = [
        # git answers a 401 by asking for credentials, which it may not do here.
        (sample_repo.name, {**good, "Authorization": "Bearer " + "0" * 40}, "could not read"),
        ("github.com/other/repo", good, "403"),
    ]
    for repo, headers, status in cases:
        dest = tmp_path / f"clone-{status}"
        url = f"{sandbox.url}/.executors/git/{repo}"
        done = _git(tmp_path, *_auth_config(headers), "clone", "-q", url, str(dest), check=False)
        assert done.returncode != 0
        assert status in done.stderr


@pytest.mark.parametrize(
    "path",
    [
        "/.executors/git/%2e%2e/%2e%2e/etc/info/refs",
        "/.executors/git/..%2f..%2fetc/info/refs",
        "/.executors/git/github.com/unknown/repo/info/refs",
        "/.executors/git//etc/info/refs",
    ],
)
def test_paths_outside_the_hosted_set_are_404(sandbox: Sandbox, path: str) -> None:
    r = sandbox.client.get(
        path, params={"service": "git-upload-pack"}, headers=sandbox.admin_headers
    )
    assert r.status_code == 404


def test_other_git_paths(sandbox: Sandbox, sample_repo: SampleRepo) -> None:
    sandbox.add_repo(sample_repo.name, sample_repo.path, mode="register")
    base = f"/.executors/git/{sample_repo.name}"
    h = sandbox.admin_headers
    assert sandbox.client.get(f"{base}/HEAD", headers=h).status_code == 404
    r = sandbox.client.get(f"{base}/info/refs", params={"service": "git-receive-pack"}, headers=h)
    assert r.status_code == 403
    r = sandbox.client.get(f"{base}/info/refs", params={"service": "git-upload-pack"}, headers=h)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-git-upload-pack-advertisement"
    assert r.content.startswith(b"001e# service=git-upload-pack\n0000")
    assert sample_repo.head.encode() in r.content


def test_gzip_request_body(sandbox: Sandbox, sample_repo: SampleRepo) -> None:
    sandbox.add_repo(sample_repo.name, sample_repo.path, mode="register")
    url = f"/.executors/git/{sample_repo.name}/git-upload-pack"

    def pkt(line: str) -> bytes:
        return f"{len(line) + 4:04x}{line}".encode()

    request = pkt("command=ls-refs\n") + b"0001" + pkt("peel\n") + b"0000"
    headers = {
        **sandbox.admin_headers,
        "Git-Protocol": "version=2",
        "Content-Type": "application/x-git-upload-pack-request",
    }
    plain = sandbox.client.post(url, headers=headers, content=request)
    zipped = sandbox.client.post(
        url, headers={**headers, "Content-Encoding": "gzip"}, content=gzip.compress(request)
    )
    assert plain.status_code == zipped.status_code == 200
    assert plain.content == zipped.content
    assert sample_repo.head.encode() in plain.content


# -- files API (Ex16) -------------------------------------------------------------------------


def test_ex16_files_api(sandbox: Sandbox) -> None:
    sandbox.put_file("batch-changes", "abc/xyz", b"#!/bin/sh\necho hi\n")
    sandbox.enqueue({"repositoryName": "github.com/a/b"})
    sandbox.enqueue({"repositoryName": "github.com/a/b"}, queue="codeintel")
    sandbox.register_executor("test-executor")
    job = sandbox.dequeue("test-executor")
    assert job is not None
    headers = sandbox.job_headers(job, "test-executor") | {"Content-Type": "application/json"}
    base = "/.executors/files/batch-changes"
    r = sandbox.client.head(f"{base}/abc/xyz", headers=headers)
    assert r.status_code == 200
    r = sandbox.client.get(f"{base}/abc/xyz", headers=headers)
    assert (r.status_code, r.content) == (200, b"#!/bin/sh\necho hi\n")
    assert sandbox.client.head(f"{base}/abc/nope", headers=headers).status_code == 404
    assert sandbox.client.get(f"{base}/abc/nope", headers=headers).status_code == 404
    assert sandbox.client.get("/.executors/files/other/abc/xyz", headers=headers).status_code == 404
    # A codeintel job's token is not good for the files route (queue forced to batches).
    codeintel = sandbox.dequeue("test-executor", queue="codeintel")
    assert codeintel is not None
    other = sandbox.job_headers(codeintel, "test-executor")
    r = sandbox.client.get(f"{base}/abc/xyz", headers=other)
    assert (r.status_code, r.text) == (403, "invalid token\n")


def test_admin_rejects_bad_repos(sandbox: Sandbox, tmp_path: Path) -> None:
    h = sandbox.admin_headers
    for name in ["../../etc", "", "a//b", "/abs", "a/./b"]:
        r = sandbox.client.post("/.sandbox/repos", headers=h, json={"name": name, "path": "/tmp"})
        assert r.status_code == 400, name
    r = sandbox.client.post(
        "/.sandbox/repos", headers=h, json={"name": "a/b", "path": str(tmp_path / "missing")}
    )
    assert r.status_code == 400
    assert httpx.get(f"{sandbox.url}/.sandbox/repos").status_code == 401
