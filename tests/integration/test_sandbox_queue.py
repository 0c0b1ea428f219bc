"""The queue API over real HTTP: the literal bodies of §10.2 (Ex1-Ex15) and the handler tests'
scenarios (`handler_test.go`, `multihandler_test.go`) played against a real store."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
from fixtures_sandbox import Sandbox

EXEC = {"Authorization": "token-executor hunter2"}
Q = "/.executors/queue"

EX4_V1 = {
    "id": 1,
    "token": "<token>",
    "repositoryName": "",
    "repositoryDirectory": "",
    "commit": "",
    "fetchTags": False,
    "shallowClone": False,
    "sparseCheckout": None,
    "files": {},
    "dockerSteps": None,
    "cliSteps": None,
    "redactedValues": None,
}
EX5_V2 = {"version": 2, **EX4_V1, "dockerAuthConfig": {}}

EX7_JOB = (
    '{"version":2,"id":1,"token":"","repositoryName":"my-repo","repositoryDirectory":"foo/bar",'
    '"commit":"xyz","fetchTags":true,"shallowClone":true,"sparseCheckout":["a","b","c"],'
    '"files":{"script1.sh":{"content":"aGVsbG8=","modifiedAt":"0001-01-01T00:00:00Z"},'
    '"script2.py":{"bucket":"my-bucket","key":"file/key",'
    '"modifiedAt":"2022-10-07T18:55:45.831031-06:00"}},'
    '"dockerSteps":[{"image":"my-image","commands":["run"],"dir":"faz/baz","env":["FOO=BAR"]}],'
    '"cliSteps":[{"command":["x","y","z"],"dir":"raz/daz","env":["BAZ=FAZ"]}],'
    '"redactedValues":{"password":"foo"},"dockerAuthConfig":{}}'
)


def _raw(response: httpx.Response, token: str) -> str:
    return response.text.replace(token, "<token>")


def _post(sandbox: Sandbox, path: str, body: Any, headers: dict[str, str] = EXEC) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return sandbox.client.post(path, headers=headers, content=content)


# -- dequeue ----------------------------------------------------------------------------------


def test_ex4_v1_job_without_version(sandbox: Sandbox) -> None:
    sandbox.enqueue({})
    r = _post(
        sandbox,
        f"{Q}/batches/dequeue",
        {"executorName": "test-executor", "numCPUs": 1, "memory": "1GB", "diskSpace": "10GB"},
    )
    assert r.status_code == 200
    assert _raw(r, r.json()["token"]) == json.dumps(EX4_V1, separators=(",", ":"))


@pytest.mark.parametrize("version", ["dev", "0.0.0+dev", "4.3.0", "5.3.0"])
def test_ex5_v2_job(sandbox: Sandbox, version: str) -> None:
    sandbox.enqueue({})
    r = _post(sandbox, f"{Q}/batches/dequeue", {"executorName": "e", "version": version})
    assert _raw(r, r.json()["token"]) == json.dumps(EX5_V2, separators=(",", ":"))


def test_ex7_full_job_round_trips_in_v2_and_v1(sandbox: Sandbox) -> None:
    sandbox.enqueue(json.loads(EX7_JOB))
    sandbox.enqueue(json.loads(EX7_JOB))
    r = _post(sandbox, f"{Q}/batches/dequeue", {"executorName": "e", "version": "5.3.0"})
    got = r.json()
    want = json.loads(EX7_JOB)
    # Go keeps the local offset of modifiedAt; we normalise to UTC (the same instant).
    want["files"]["script2.py"]["modifiedAt"] = "2022-10-08T00:55:45.831031Z"
    assert got == {**want, "id": 1, "token": got["token"]}
    r = _post(sandbox, f"{Q}/batches/dequeue", {"executorName": "e", "version": "4.2.0"})
    v1 = r.json()
    assert "version" not in v1 and "dockerAuthConfig" not in v1
    assert v1["files"]["script1.sh"] == {"content": "hello", "modifiedAt": "0001-01-01T00:00:00Z"}


def test_ex1_ex3_fifo_then_no_content(sandbox: Sandbox) -> None:
    ids = [sandbox.enqueue({"commit": str(i)}) for i in range(3)]
    body = {"executorName": "deadbeef", "version": "0.0.0+dev"}
    got = [_post(sandbox, f"{Q}/batches/dequeue", body).json()["id"] for _ in ids]
    assert got == ids
    r = _post(sandbox, f"{Q}/batches/dequeue", body)
    assert (r.status_code, r.content) == (204, b"")


def test_ex2_ex6_multi_queue_dequeue(sandbox: Sandbox) -> None:
    sandbox.enqueue({})
    job_id = sandbox.enqueue({}, queue="codeintel")
    body = {"queues": ["codeintel"], "executorName": "deadbeef"}
    r = _post(sandbox, f"{Q}/dequeue", body)
    want = {**EX4_V1, "id": job_id}
    want = (
        {k: want[k] for k in ("id", "token")}
        | {"queue": "codeintel"}
        | {k: v for k, v in want.items() if k not in ("id", "token")}
    )
    assert _raw(r, r.json()["token"]) == json.dumps(want, separators=(",", ":"))
    body = {"queues": ["batches", "codeintel"], "executorName": "deadbeef", "version": "dev"}
    job = _post(sandbox, f"{Q}/dequeue", body).json()
    assert (job["queue"], job["version"]) == ("batches", 2)
    assert _post(sandbox, f"{Q}/dequeue", body).status_code == 204
    assert _post(sandbox, f"{Q}/dequeue", {"executorName": "x", "queues": []}).status_code == 204


ERRORS = [
    (
        f"{Q}/dequeue",
        {"queues": ["invalidqueue"], "executorName": "e"},
        "Invalid queue name(s) 'invalidqueue' found. "
        "Supported queue names are 'batches, codeintel'.",
    ),
    (
        f"{Q}/dequeue",
        {"queues": ["batches", "foo", "bar"], "executorName": "e"},
        "Invalid queue name(s) 'foo, bar' found. Supported queue names are 'batches, codeintel'.",
    ),
    (
        f"{Q}/batches/dequeue",
        {"executorName": "e", "version": "\n1.2"},
        'failed to check version "\\n1.2": Invalid Semantic Version',
    ),
    (
        f"{Q}/dequeue",
        {"queues": ["batches"], "executorName": "e", "version": "\n1.2"},
        'failed to check version "\\n1.2": Invalid Semantic Version',
    ),
    (f"{Q}/batches/dequeue", {"version": "5.3.0"}, "worker hostname cannot be empty"),
    (f"{Q}/dequeue", {"queues": ["batches"]}, "worker hostname cannot be empty"),
    (f"{Q}/batches/heartbeat", {"jobIds": [1]}, "worker hostname cannot be empty"),
    (f"{Q}/heartbeat", {"queueNames": ["batches"]}, "worker hostname cannot be empty"),
    (
        f"{Q}/heartbeat",
        {"executorName": "e"},
        "queueNames must be set for multi-queue heartbeats",
    ),
    (
        f"{Q}/heartbeat",
        {
            "executorName": "e",
            "queueNames": ["codeintel", "batches"],
            "jobIdsByQueue": [
                {"queueName": "foo", "jobIds": ["1"]},
                {"queueName": "bar", "jobIds": ["2"]},
            ],
        },
        "unsupported queue name(s) 'foo, bar' submitted in queueJobIds, "
        "executor is configured for queues 'codeintel, batches'",
    ),
]


@pytest.mark.parametrize(("path", "body", "message"), ERRORS)
def test_ex15_error_envelopes(sandbox: Sandbox, path: str, body: Any, message: str) -> None:
    sandbox.enqueue({})
    r = _post(sandbox, path, body)
    assert r.status_code == 500
    assert r.text == json.dumps({"error": message}, separators=(",", ":"), ensure_ascii=False)


BAD_BODIES = [
    (b"not json", "invalid character 'n' looking for beginning of value"),
    (b"", "EOF"),
    (b'{"executorName": "e",', "unexpected EOF"),
    (b"[1, 2]", "json: cannot unmarshal array into Go value of type types.DequeueRequest"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_bad_dequeue_bodies(sandbox: Sandbox, body: bytes, message: str) -> None:
    r = _post(sandbox, f"{Q}/batches/dequeue", body)
    assert (r.status_code, r.text) == (400, f"Failed to unmarshal payload: {message}\n")


def test_bad_field_types_are_400(sandbox: Sandbox) -> None:
    r = _post(sandbox, f"{Q}/batches/dequeue", {"executorName": ["x"]})
    assert r.status_code == 400
    assert r.text.startswith("Failed to unmarshal payload: json: cannot unmarshal array into")


@pytest.mark.parametrize("path", [f"{Q}/nope/dequeue", f"{Q}/nope/heartbeat", f"{Q}/batches/x"])
def test_unknown_queue_routes_are_404(sandbox: Sandbox, path: str) -> None:
    assert _post(sandbox, path, {"executorName": "e"}).status_code == 404


# -- heartbeat --------------------------------------------------------------------------------

EX12 = {
    "version": "V2",
    "executorName": "deadbeef",
    "jobIds": [1, 2, 3],
    "os": "test-os",
    "architecture": "test-architecture",
    "dockerVersion": "test-docker-version",
    "executorVersion": "test-executor-version",
    "gitVersion": "test-git-version",
    "igniteVersion": "test-ignite-version",
    "srcCliVersion": "test-src-cli-version",
    "prometheusMetrics": "",
}


def test_ex12_single_queue_heartbeat(sandbox: Sandbox) -> None:
    ids = [sandbox.enqueue({}) for _ in range(3)]
    for _ in ids[:2]:
        sandbox.dequeue("deadbeef")
    r = _post(sandbox, f"{Q}/batches/heartbeat", EX12)
    assert (r.status_code, r.text) == (200, '{"knownIds":["1","2"],"cancelIds":null}')
    sandbox.cancel(2)
    r = _post(sandbox, f"{Q}/batches/heartbeat", {**EX12, "jobIds": ["1", 2.0, "3"]})
    assert r.text == '{"knownIds":["1","2"],"cancelIds":["2"]}'
    r = _post(sandbox, f"{Q}/batches/heartbeat", {**EX12, "jobIds": None})
    assert r.text == '{"knownIds":[],"cancelIds":[]}'
    (executor,) = sandbox.client.get("/.sandbox/executors", headers=EXEC).json()
    assert (executor["hostname"], executor["os"], executor["git_version"]) == (
        "deadbeef",
        "test-os",
        "test-git-version",
    )


def test_ex13_multi_queue_heartbeat(sandbox: Sandbox) -> None:
    c1 = sandbox.enqueue({}, queue="codeintel")
    b1 = sandbox.enqueue({}, queue="batches")
    sandbox.dequeue("deadbeef", queue="codeintel")
    sandbox.dequeue("deadbeef", queue="batches")
    sandbox.cancel(b1)
    body = {
        "version": "",
        "executorName": "deadbeef",
        "jobIdsByQueue": [
            {"queueName": "codeintel", "jobIds": [str(c1), "99"]},
            {"queueName": "batches", "jobIds": [str(b1)]},
        ],
        "queueNames": ["codeintel", "batches"],
        **{k: v for k, v in EX12.items() if k not in ("version", "executorName", "jobIds")},
    }
    r = _post(sandbox, f"{Q}/heartbeat", body)
    assert r.json() == {
        "knownIds": [f"{c1}-codeintel", f"{b1}-batches"],
        "cancelIds": [f"{b1}-batches"],
    }
    r = _post(sandbox, f"{Q}/heartbeat", {**body, "jobIdsByQueue": []})
    assert r.text == '{"knownIds":null,"cancelIds":null}'


@pytest.mark.parametrize(
    ("path", "extra"),
    [(f"{Q}/batches/heartbeat", {}), (f"{Q}/heartbeat", {"queueNames": ["batches", "codeintel"]})],
)
def test_ex14_startup_ping(sandbox: Sandbox, path: str, extra: dict[str, Any]) -> None:
    body = {"version": "", "executorName": "myhost-1", **extra}
    body |= dict.fromkeys(("os", "architecture", "dockerVersion", "executorVersion"), "")
    r = _post(sandbox, path, body)
    assert r.status_code == 200
    assert sandbox.store.executor_exists("myhost-1")


# -- job-token calls --------------------------------------------------------------------------


def _running(sandbox: Sandbox, name: str = "deadbeef") -> tuple[dict[str, Any], dict[str, str]]:
    sandbox.register_executor(name)
    sandbox.enqueue({"repositoryName": "github.com/a/b"})
    job = sandbox.dequeue(name)
    assert job is not None
    return job, sandbox.job_headers(job, name)


ENTRY = {
    "key": "foo",
    "command": ["ls", "-a"],
    "startTime": "2020-04-20T15:29:17Z",
    "exitCode": 123,
    "out": "<log payload>",
    "durationMs": 23123,
}


def test_ex8_ex9_log_entries(sandbox: Sandbox) -> None:
    job, headers = _running(sandbox)
    op = {"executorName": "deadbeef", "jobId": job["id"]}
    first = {
        **op,
        "key": "setup.git.init",
        "command": ["git", "init"],
        "startTime": "2024-05-01T12:00:00.123456789Z",
    }
    r = _post(sandbox, f"{Q}/batches/addExecutionLogEntry", first, headers)
    assert (r.status_code, r.text) == (200, "1")
    r = _post(sandbox, f"{Q}/batches/addExecutionLogEntry", {**op, **ENTRY}, headers)
    assert (r.status_code, r.text) == (200, "2")
    update = {**op, "entryId": 2, **ENTRY, "out": "stdout: hello\nstderr: + echo hello\n"}
    r = _post(sandbox, f"{Q}/batches/updateExecutionLogEntry", update, headers)
    assert (r.status_code, r.content) == (204, b"")
    logs = sandbox.job(job["id"])["execution_logs"]
    assert logs[0] == {
        "key": "setup.git.init",
        "command": ["git", "init"],
        "startTime": "2024-05-01T12:00:00.123456Z",
    }
    assert logs[1] == {**ENTRY, "out": "stdout: hello\nstderr: + echo hello\n"}
    unknown = [
        ("addExecutionLogEntry", {**op, "executorName": "other", **ENTRY}),
        ("updateExecutionLogEntry", {**op, "entryId": 3, **ENTRY}),
        ("updateExecutionLogEntry", {**op, "executorName": "other", "entryId": 1, **ENTRY}),
    ]
    for path, body in unknown:
        r = _post(sandbox, f"{Q}/batches/{path}", body, headers)
        assert (r.status_code, r.text) == (500, '{"error":"unknown job"}')


@pytest.mark.parametrize(
    ("op", "body", "state"),
    [
        ("markComplete", {}, "completed"),
        ("markErrored", {"errorMessage": "OH NO"}, "failed"),
        ("markFailed", {"errorMessage": "OH NO"}, "failed"),
    ],
)
def test_ex10_ex11_marks(sandbox: Sandbox, op: str, body: dict[str, Any], state: str) -> None:
    job, headers = _running(sandbox)
    payload = {"executorName": "deadbeef", "jobId": job["id"], **body}
    wrong = {**payload, "executorName": "someone-else"}
    r = _post(sandbox, f"{Q}/batches/{op}", wrong, headers)
    assert (r.status_code, r.text) == (404, "null")
    r = _post(sandbox, f"{Q}/batches/{op}", payload, headers)
    assert (r.status_code, r.content) == (204, b"")
    assert sandbox.job(job["id"])["state"] == state
    assert sandbox.job(job["id"])["failure_message"] == body.get("errorMessage")
    # The token died with the mark; the general access token still reaches the handler.
    r = _post(sandbox, f"{Q}/batches/{op}", payload, headers)
    assert (r.status_code, r.text) == (401, "invalid token\n")
    general = {**headers, "Authorization": "token-executor hunter2"}
    r = _post(sandbox, f"{Q}/batches/{op}", payload, general)
    assert (r.status_code, r.text) == (404, "null")


def test_job_tokens_refused_until_heartbeat(sandbox: Sandbox) -> None:
    sandbox.enqueue({})
    job = sandbox.dequeue("fresh")
    assert job is not None
    headers = sandbox.job_headers(job, "fresh")
    op = {"executorName": "fresh", "jobId": job["id"], **ENTRY}
    r = _post(sandbox, f"{Q}/batches/addExecutionLogEntry", op, headers)
    assert (r.status_code, r.text) == (401, "invalid token\n")
    sandbox.register_executor("fresh")
    assert _post(sandbox, f"{Q}/batches/addExecutionLogEntry", op, headers).text == "1"


def test_bad_job_call_body(sandbox: Sandbox) -> None:
    _, headers = _running(sandbox)
    r = _post(sandbox, f"{Q}/batches/markComplete", b"{oops", headers)
    assert r.status_code == 400
    assert r.text.startswith("Failed to unmarshal payload: invalid character 'o'")


# -- flows ------------------------------------------------------------------------------------


def test_two_executors_race_for_100_jobs(sandbox: Sandbox) -> None:
    expected = {sandbox.enqueue({"commit": str(i)}) for i in range(100)}
    got: dict[str, list[int]] = {"exec-a": [], "exec-b": []}
    barrier = threading.Barrier(2)

    def run(name: str) -> None:
        with httpx.Client(base_url=sandbox.url) as client:
            barrier.wait()
            while True:
                r = client.post(f"{Q}/batches/dequeue", headers=EXEC, json={"executorName": name})
                if r.status_code == 204:
                    return
                got[name].append(r.json()["id"])

    threads = [threading.Thread(target=run, args=(n,)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = set(got["exec-a"]), set(got["exec-b"])
    assert not a & b
    assert a | b == expected
    assert len(got["exec-a"]) + len(got["exec-b"]) == 100
    owners = {j["id"]: j["worker_hostname"] for j in sandbox.jobs(state="processing")}
    assert all(owners[i] == "exec-a" for i in a) and all(owners[i] == "exec-b" for i in b)


def test_cancel_flow(sandbox: Sandbox) -> None:
    job, headers = _running(sandbox)
    queued = sandbox.enqueue({})
    assert sandbox.cancel(queued) == "canceled"
    assert sandbox.cancel(job["id"]) == "processing"
    beat = {"executorName": "deadbeef", "jobIds": [job["id"]]}
    assert _post(sandbox, f"{Q}/batches/heartbeat", beat).json()["cancelIds"] == [str(job["id"])]
    body = {"executorName": "deadbeef", "jobId": job["id"], "errorMessage": "canceled"}
    assert _post(sandbox, f"{Q}/batches/markFailed", body, headers).status_code == 204
    assert sandbox.job(job["id"])["state"] == "canceled"
    assert sandbox.dequeue("deadbeef") is None


def test_stalled_jobs_reset_then_fail(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(stalled_max_age=0.2, resetter_interval=0.05)
    job_id = sandbox.enqueue({})
    for resets in range(1, 4):
        assert sandbox.dequeue("e1") is not None
        job = sandbox.wait_state(job_id, "queued", timeout=5)
        assert job["num_resets"] == resets
    assert sandbox.dequeue("e1") is not None
    job = sandbox.wait_state(job_id, "failed", timeout=5)
    assert job["failure_message"] == "job processor died while handling this message too many times"


def test_heartbeats_keep_a_job_alive(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(stalled_max_age=0.4, resetter_interval=0.05)
    job_id = sandbox.enqueue({})
    sandbox.dequeue("e1")
    import time

    for _ in range(10):
        _post(sandbox, f"{Q}/batches/heartbeat", {"executorName": "e1", "jobIds": [job_id]})
        time.sleep(0.1)
    assert sandbox.job(job_id)["state"] == "processing"


def test_misc_routes(sandbox: Sandbox) -> None:
    assert sandbox.client.get("/.executors/test/auth", headers=EXEC).text == "ok"
    assert sandbox.client.get("/.api/src-cli/version").json() == {"version": "5.3.0"}
