"""Both auth middlewares of §8.1 over real HTTP, as data tables.

Transcribed from `cmd/frontend/internal/executorqueue/queuehandler_test.go`
(`TestAuthMiddleware`, `TestJobAuthMiddleware`): the same headers, statuses and bodies. Where
the Go test mocks a store answer, the sandbox is put in that state for real (a token of another
job, of another queue or repository, an executor that never sent a heartbeat).
"""

from __future__ import annotations

from typing import Any

import pytest
from fixtures_sandbox import Sandbox

NO_TOKEN_EXECUTOR = (
    "no token value in the HTTP Authorization request header (recommended) "
    "or basic auth (deprecated)\n"
)
SCHEME_EXECUTOR = (
    'unrecognized HTTP Authorization request header scheme (supported values: "token-executor")\n'
)
FORM_EXECUTOR = (
    "HTTP Authorization request header value must be of the following form: "
    "'token-executor \"TOKEN\"'\n"
)

EXECUTOR_CASES = [
    ("Authorized", {"Authorization": "token-executor hunter2"}, 200, "ok"),
    ("Missing Authorization header", {}, 401, NO_TOKEN_EXECUTOR),
    ("Wrong token", {"Authorization": "token-executor foobar"}, 401, ""),
    ("Invalid prefix", {"Authorization": "foo hunter2"}, 401, SCHEME_EXECUTOR),
    ("Three parts", {"Authorization": "token-executor hunter2 x"}, 401, FORM_EXECUTOR),
    ("One part", {"Authorization": "token-executor"}, 401, FORM_EXECUTOR),
]


@pytest.mark.parametrize(("name", "headers", "status", "body"), EXECUTOR_CASES)
def test_executor_auth(
    sandbox: Sandbox, name: str, headers: dict[str, str], status: int, body: str
) -> None:
    response = sandbox.client.get("/.executors/test/auth", headers=headers)
    assert (response.status_code, response.text) == (status, body)
    if body and status != 200:
        assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    "path", ["/.executors/queue/batches/dequeue", "/.executors/queue/dequeue", "/.sandbox/jobs"]
)
def test_executor_auth_guards_every_executor_route(sandbox: Sandbox, path: str) -> None:
    response = sandbox.client.post(path, headers={"Authorization": "token-executor nope"})
    assert (response.status_code, response.text) == (401, "")


FORM_JOB = (
    "HTTP Authorization request header value must be of the following form: "
    "'Bearer \"TOKEN\"' or 'token-executor TOKEN'\n"
)
SCHEME_JOB = (
    "unrecognized HTTP Authorization request header scheme "
    '(supported values: "Bearer", "token-executor")\n'
)

# (name, route, headers with {token}/{id}/{other_id} placeholders, status, body)
JOB_CASES: list[tuple[str, str, dict[str, str], int, str]] = [
    ("Queue Authorized", "queue", {"A": "Bearer {token}", "J": "{id}", "E": "exec"}, 204, ""),
    ("Queue Authorized general access token", "queue", {"A": "token-executor hunter2"}, 204, ""),
    ("Git Authorized", "git", {"A": "Bearer {token}", "J": "{id}", "E": "exec"}, 200, None),
    ("Git Authorized general access token", "git", {"A": "token-executor hunter2"}, 200, None),
    ("Files Authorized", "files", {"A": "Bearer {token}", "J": "{id}", "E": "exec"}, 200, "x"),
    ("Files Authorized general access token", "files", {"A": "token-executor hunter2"}, 200, "x"),
    (
        "No worker hostname provided",
        "queue",
        {"A": "Bearer {token}", "J": "{id}"},
        400,
        "worker hostname cannot be empty\n",
    ),
    (
        "No job id header",
        "queue",
        {"A": "Bearer {token}", "E": "exec"},
        400,
        "job ID not provided in header 'X-Sourcegraph-Job-ID'\n",
    ),
    (
        "Invalid job id header",
        "queue",
        {"A": "Bearer {token}", "E": "exec", "J": "abc"},
        400,
        'failed to parse Job ID: strconv.Atoi: parsing "abc": invalid syntax\n',
    ),
    (
        "No Authorized header",
        "queue",
        {},
        401,
        "no token value in the HTTP Authorization request header\n",
    ),
    ("Invalid Authorized header parts", "queue", {"A": "somejobtoken"}, 401, FORM_JOB),
    ("Invalid Authorized header prefix", "queue", {"A": "Foo bar"}, 401, SCHEME_JOB),
    ("Invalid general access token", "queue", {"A": "token-executor hunter3"}, 403, ""),
    (
        "Failed to retrieve job token",
        "queue",
        {"A": "Bearer " + "ab" * 20, "J": "{id}", "E": "exec"},
        401,
        "invalid token\n",
    ),
    (
        "Token is not hex",
        "queue",
        {"A": "Bearer somejobtoken", "J": "{id}", "E": "exec"},
        401,
        "invalid token\n",
    ),
    (
        "Job ID does not match",
        "queue",
        {"A": "Bearer {token}", "J": "{other_id}", "E": "exec"},
        403,
        "invalid token\n",
    ),
    (
        "Queue does not match",
        "codeintel",
        {"A": "Bearer {token}", "J": "{id}", "E": "exec"},
        403,
        "invalid token\n",
    ),
    (
        "Executor host does not exist",
        "queue",
        {"A": "Bearer {token}", "J": "{id}", "E": "never-heartbeated"},
        401,
        "invalid token\n",
    ),
    (
        "Repo does not exist",
        "wrong-repo",
        {"A": "Bearer {token}", "J": "{id}", "E": "exec"},
        403,
        "invalid token\n",
    ),
]
_HEADER_NAMES = {
    "A": "Authorization",
    "J": "X-Sourcegraph-Job-ID",
    "E": "X-Sourcegraph-Executor-Name",
}


@pytest.mark.parametrize(
    ("name", "route", "headers", "status", "body"), JOB_CASES, ids=[c[0] for c in JOB_CASES]
)
def test_job_auth(
    sandbox: Sandbox,
    sample_repo: Any,
    name: str,
    route: str,
    headers: dict[str, str],
    status: int,
    body: str | None,
) -> None:
    sandbox.add_repo(sample_repo.name, sample_repo.path, mode="register")
    sandbox.put_file("batch-changes", "abc/xyz", b"x")
    job_id = sandbox.enqueue({"repositoryName": sample_repo.name, "commit": sample_repo.head})
    other_id = sandbox.enqueue({"repositoryName": sample_repo.name})
    sandbox.register_executor("exec")
    job = sandbox.dequeue("exec")
    assert job is not None and job["id"] == job_id
    values = {"token": job["token"], "id": str(job_id), "other_id": str(other_id)}
    sent = {_HEADER_NAMES[k]: v.format(**values) for k, v in headers.items()}
    client = sandbox.client
    if route in ("queue", "codeintel"):
        queue = "batches" if route == "queue" else "codeintel"
        response = client.post(
            f"/.executors/queue/{queue}/markComplete",
            headers=sent,
            json={"executorName": "exec", "jobId": job_id},
        )
    elif route in ("git", "wrong-repo"):
        repo = sample_repo.name if route == "git" else "github.com/other/repo"
        response = client.get(
            f"/.executors/git/{repo}/info/refs", params={"service": "git-upload-pack"}, headers=sent
        )
    else:
        response = client.get("/.executors/files/batch-changes/abc/xyz", headers=sent)
    assert response.status_code == status, response.text
    if body is not None:
        assert response.text == body


@pytest.mark.parametrize(
    "op",
    [
        "addExecutionLogEntry",
        "updateExecutionLogEntry",
        "markComplete",
        "markErrored",
        "markFailed",
    ],
)
def test_a_job_token_cannot_act_on_another_job(sandbox: Sandbox, op: str) -> None:
    """The body's `jobId` must be the token's job (the header's): one job's token cannot append
    to or mark another job. Refused with the middleware's 403 `invalid token`; both jobs are
    untouched."""
    first = sandbox.enqueue({})
    second = sandbox.enqueue({})
    sandbox.register_executor("exec")
    mine, theirs = sandbox.dequeue("exec"), sandbox.dequeue("exec")
    assert mine is not None and theirs is not None and mine["id"] == first
    headers = {
        "Authorization": f"Bearer {mine['token']}",
        "X-Sourcegraph-Job-ID": str(first),
        "X-Sourcegraph-Executor-Name": "exec",
    }
    body: dict[str, Any] = {"executorName": "exec", "jobId": second, "errorMessage": "x"}
    if op in ("addExecutionLogEntry", "updateExecutionLogEntry"):
        body["entry"] = {"key": "k", "command": [], "startTime": "2024-01-01T00:00:00Z"}
        body["entryId"] = 0
    response = sandbox.client.post(f"/.executors/queue/batches/{op}", headers=headers, json=body)
    assert (response.status_code, response.text) == (403, "invalid token\n")
    assert sandbox.job(second)["state"] == "processing"
    assert sandbox.job(second)["execution_logs"] == []


def test_an_oversized_body_is_refused_with_413(sandbox: Sandbox) -> None:
    from executor.sandbox.queue import MAX_BODY

    first = sandbox.enqueue({})
    sandbox.register_executor("exec")
    job = sandbox.dequeue("exec")
    assert job is not None
    headers = {
        "Authorization": f"Bearer {job['token']}",
        "X-Sourcegraph-Job-ID": str(first),
        "X-Sourcegraph-Executor-Name": "exec",
        "Content-Type": "application/json",
    }

    def chunks():  # type: ignore[no-untyped-def]  # streamed: no Content-Length to trust
        piece = b" " * (1 << 20)
        for _ in range(MAX_BODY // len(piece) + 2):
            yield piece

    response = sandbox.client.post(
        "/.executors/queue/batches/markComplete", headers=headers, content=chunks()
    )
    assert response.status_code == 413, response.text
    assert "request body too large" in response.text
    assert sandbox.job(first)["state"] == "processing"
