"""The sandbox's codeintel upload routes as Sourcegraph's frontend answers them (executor-token
auth, `internal/uploadhandler` validation and answers), and the codeintel job shape."""

from __future__ import annotations

import gzip
import shlex
from typing import Any

import httpx

from executor.sandbox.codeintel import codeintel_job

COMMIT = "a" * 40


def _post(box: Any, route: str = "lsif", token: str | None = None, **params: str) -> httpx.Response:
    auth = {"Authorization": f"token-executor {token or box.token}"}
    query = {"repository": "github.com/sourcegraph/sample", "commit": COMMIT, **params}
    return box.client.post(
        f"/.executors/{route}/upload",
        params=query,
        headers={**auth, "X-Uncompressed-Size": "5"},
        content=gzip.compress(b"hello"),
    )


def test_upload_auth_and_validation(sandbox: Any, sample_repo: Any) -> None:
    sandbox.add_repo(sample_repo.name, sample_repo.path)
    assert _post(sandbox, token="wrong").status_code == 401
    bare = sandbox.client.post("/.executors/lsif/upload", content=b"x")
    assert bare.status_code == 401 and bare.text.startswith("no token value")
    # A job token is not what these routes take: the executor token only.
    bearer = sandbox.client.post("/.executors/scip/upload", headers={"Authorization": "Bearer x"})
    assert bearer.status_code == 401 and "token-executor" in bearer.text
    head = sandbox.client.head(
        "/.executors/scip/upload", headers={"Authorization": f"token-executor {sandbox.token}"}
    )
    assert head.status_code == 200
    bad = _post(sandbox, commit="abc")
    assert (bad.status_code, bad.text) == (
        400,
        "failed to enqueue payload: commit must be a 40-character revhash\n",
    )
    unknown = _post(sandbox, repository="github.com/nope/nope")
    assert unknown.status_code == 404
    assert unknown.text == 'failed to enqueue payload: unknown repository "github.com/nope/nope"\n'
    multi = _post(sandbox, multiPart="true", numParts="2")
    assert multi.status_code == 400 and "multi-part" in multi.text
    size = sandbox.client.post(
        "/.executors/lsif/upload",
        params={"repository": sample_repo.name, "commit": COMMIT},
        headers={"Authorization": f"token-executor {sandbox.token}", "X-Uncompressed-Size": "x"},
    )
    assert size.status_code == 422


def test_an_upload_is_recorded_and_answered_202_with_a_string_id(
    sandbox: Any, sample_repo: Any
) -> None:
    sandbox.add_repo(sample_repo.name, sample_repo.path)
    first = _post(
        sandbox, root="", indexerName="scip-go", indexerVersion="1.2", associatedIndexId="7"
    )
    second = _post(sandbox, route="scip", root="sub/dir")
    assert (first.status_code, first.json()) == (202, {"id": "1"})
    assert (second.status_code, second.json()) == (202, {"id": "2"})
    uploads = sandbox._call("GET", "/.sandbox/codeintel/uploads")
    assert [(u["id"], u["route"], u["root"]) for u in uploads] == [
        (1, "lsif", ""),
        (2, "scip", "sub/dir/"),
    ]
    one = uploads[0]
    assert (one["indexer_name"], one["indexer_version"], one["associated_index_id"]) == (
        "scip-go",
        "1.2",
        7,
    )
    assert one["uncompressed_size"] == 5 and one["state"] == "queued"
    stored = sandbox.settings.data_dir / "uploads" / "upload-1.lsif.gz"
    assert gzip.decompress(stored.read_bytes()) == b"hello"


def test_codeintel_job_shape_follows_the_transform() -> None:
    job = codeintel_job(
        42,
        repository="github.com/acme/app",
        commit=COMMIT,
        indexer="sourcegraph/lsif-go:latest",
        indexer_args=["lsif-go", "--no-animation"],
        frontend_url="http://frontend:3080",
        token="s3cret",
        src_cli_image="sourcegraph/src-cli:5.3.0",
        local_steps=["go mod download"],
        root="sub",
    )
    assert job["shallowClone"] is True and job["fetchTags"] is True
    indexer, upload = job["dockerSteps"]
    assert indexer["key"] == "indexer" and indexer["dir"] == "sub"
    assert indexer["commands"] == ["go mod download", "lsif-go --no-animation"]
    assert indexer["env"] == [
        "VM_MEM=12.0 GB", "VM_MEM_GB=12", "VM_MEM_MB=12288",
        "VM_DISK=20.0 GB", "VM_DISK_GB=20", "VM_DISK_MB=20480",
    ]  # fmt: skip
    assert shlex.split(upload["commands"][0]) == [
        "src", "code-intel", "upload", "-no-progress", "-repo", "github.com/acme/app",
        "-commit", COMMIT, "-root", "sub", "-upload-route", "/.executors/lsif/upload",
        "-file", "dump.lsif", "-associated-index-id", "42",
    ]  # fmt: skip
    assert upload["env"] == [
        "SRC_ENDPOINT=http://frontend:3080",
        "SRC_HEADER_AUTHORIZATION=token-executor s3cret",
    ]
    assert job["redactedValues"] == {
        "token-executor s3cret": "token-executor REDACTED",
        "s3cret": "PASSWORD_REMOVED",
    }
