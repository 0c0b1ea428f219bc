"""Every request the queue client sends, byte for byte, against what Go's client writes.

The reference: Sourcegraph's `cmd/executor/internal/apiclient/queue/client_test.go`,
`files/client_test.go` and `baseclient.go` (their fixtures: executor `deadbeef`, token
`hunter2`, job 42 with token `job-token`), sent the way Go's `net/http` writes a request:
`Host`, `Content-Length` (with a body), the request's headers sorted and canonicalised
(`X-Sourcegraph-Job-Id`), `Accept-Encoding: gzip` (not on HEAD), no `User-Agent`.

One deliberate difference (see `executor.apiclient.base`): GET and HEAD carry no body and no
`Content-Type` (Go sends `Content-Type: application/json` on them, and `null` on test/auth).

A real TCP server on loopback records the raw bytes of each request (head and body) as they
arrived; the tests compare them whole. The job-token fallback (a job without a token is sent
with the executor token) is asserted on every job route.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import pytest

from executor.apiclient.base import RetryPolicy
from executor.apiclient.queue import QueueClient
from executor.wire import ExecutionLogEntry, Job


@dataclass
class _Raw:
    """A loopback HTTP/1.1 server that keeps each request's exact bytes and answers in turn."""

    answers: list[tuple[int, bytes]] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    port: int = 0

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value.strip())
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                buffer = rest[length:]
                status, body = self.answers.pop(0) if self.answers else (204, b"")
                reason = {200: b"OK", 204: b"No Content", 404: b"Not Found"}.get(status, b"X")
                conn.sendall(
                    b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n\r\n%s"
                    % (status, reason, len(body), body if not head.startswith(b"HEAD") else b"")
                )


@pytest.fixture
def raw() -> Iterator[_Raw]:
    listener = socket.create_server(("127.0.0.1", 0))
    server = _Raw(port=listener.getsockname()[1])
    thread = threading.Thread(target=server.serve, args=(listener,), daemon=True)
    thread.start()
    yield server
    listener.close()


TELEMETRY = {
    "os": "test-os",
    "architecture": "test-architecture",
    "docker_version": "test-docker-version",
    "executor_version": "test-executor-version",
    "git_version": "test-git-version",
    "ignite_version": "test-ignite-version",
    "src_cli_version": "test-src-cli-version",
    "prometheus_metrics": "",
}
TELEMETRY_JSON = (
    b'"os":"test-os","architecture":"test-architecture","dockerVersion":"test-docker-version",'
    b'"executorVersion":"test-executor-version","gitVersion":"test-git-version",'
    b'"igniteVersion":"test-ignite-version","srcCliVersion":"test-src-cli-version",'
    b'"prometheusMetrics":""'
)
JOB = Job(id=42, token="job-token")
NO_TOKEN = Job(id=42)
ENTRY = ExecutionLogEntry(
    key="foo",
    command=["ls", "-a"],
    start_time=dt.datetime.fromtimestamp(1587396557, tz=dt.UTC),
    exit_code=123,
    out="<log payload> & é\u2028",
    duration_ms=23123,
)
ENTRY_JSON = (
    '"key":"foo","command":["ls","-a"],"startTime":"2020-04-20T15:29:17Z","exitCode":123,'
    '"out":"\\u003clog payload\\u003e \\u0026 é\\u2028","durationMs":23123'
).encode()


def _client(raw: _Raw, queues: list[str]) -> QueueClient:
    return QueueClient(
        frontend_url=f"http://127.0.0.1:{raw.port}",
        token="hunter2",
        executor_name="deadbeef",
        queues=queues,
        version="0.0.0+dev",
        retry=RetryPolicy(attempts=1),
        telemetry=lambda: dict(TELEMETRY),
    )


def _post(raw: _Raw, path: str, auth: str, body: bytes, *, job: bool) -> bytes:
    headers = [
        b"POST " + path.encode() + b" HTTP/1.1",
        b"Host: 127.0.0.1:%d" % raw.port,
        b"Content-Length: %d" % len(body),
        b"Authorization: " + auth.encode(),
        b"Content-Type: application/json",
    ]
    if job:
        headers += [b"X-Sourcegraph-Executor-Name: deadbeef", b"X-Sourcegraph-Job-Id: 42"]
    headers.append(b"Accept-Encoding: gzip")
    return b"\r\n".join(headers) + b"\r\n\r\n" + body


def _sent(raw: _Raw, call: Callable[[QueueClient], Awaitable[object]], queues: list[str]) -> bytes:
    async def scenario() -> None:
        client = _client(raw, queues)
        try:
            await call(client)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert len(raw.requests) == 1
    return raw.requests[0]


def test_dequeue_single_and_multi_queue(raw: _Raw) -> None:
    auth = "token-executor hunter2"
    sent = _sent(raw, lambda c: c.dequeue(), ["batches"])
    body = b'{"executorName":"deadbeef","version":"0.0.0+dev"}'
    assert sent == _post(raw, "/.executors/queue/batches/dequeue", auth, body, job=False)
    raw.requests.clear()
    sent = _sent(raw, lambda c: c.dequeue(), ["batches", "codeintel"])
    body = b'{"queues":["batches","codeintel"],"executorName":"deadbeef","version":"0.0.0+dev"}'
    assert sent == _post(raw, "/.executors/queue/dequeue", auth, body, job=False)


def test_heartbeats_single_and_multi_queue(raw: _Raw) -> None:
    auth = "token-executor hunter2"
    raw.answers = [(200, b'{"knownIds":["1"],"cancelIds":["1"]}')]
    sent = _sent(raw, lambda c: c.heartbeat(["1", "2", "3"]), ["batches"])
    body = b'{"version":"V2","executorName":"deadbeef","jobIds":[1,2,3],' + TELEMETRY_JSON + b"}"
    assert sent == _post(raw, "/.executors/queue/batches/heartbeat", auth, body, job=False)
    raw.requests.clear()
    raw.answers = [(200, b'{"knownIds":["1-batches"],"cancelIds":null}')]
    uids = ["1-batches", "2-codeintel", "3-batches"]
    sent = _sent(raw, lambda c: c.heartbeat(uids), ["batches", "codeintel"])
    body = (
        b'{"version":"","executorName":"deadbeef","jobIdsByQueue":['
        b'{"queueName":"batches","jobIds":["1","3"]},{"queueName":"codeintel","jobIds":["2"]}],'
        b'"queueNames":["batches","codeintel"],' + TELEMETRY_JSON + b"}"
    )
    assert sent == _post(raw, "/.executors/queue/heartbeat", auth, body, job=False)


@pytest.mark.parametrize("job", [JOB, NO_TOKEN], ids=["job-token", "executor-token-fallback"])
@pytest.mark.parametrize(
    ("route", "call", "answer", "body"),
    [
        (
            "addExecutionLogEntry",
            lambda c, j: c.add_execution_log_entry(j, ENTRY),
            (200, b"99"),
            b'{"executorName":"deadbeef","jobId":42,' + ENTRY_JSON + b"}",
        ),
        (
            "updateExecutionLogEntry",
            lambda c, j: c.update_execution_log_entry(j, 99, ENTRY),
            (204, b""),
            b'{"executorName":"deadbeef","jobId":42,"entryId":99,' + ENTRY_JSON + b"}",
        ),
        (
            "markComplete",
            lambda c, j: c.mark_complete(j),
            (204, b""),
            b'{"executorName":"deadbeef","jobId":42}',
        ),
        (
            "markErrored",
            lambda c, j: c.mark_errored(j, "OH NO"),
            (204, b""),
            b'{"executorName":"deadbeef","jobId":42,"errorMessage":"OH NO"}',
        ),
        (
            "markFailed",
            lambda c, j: c.mark_failed(j, "OH NO"),
            (204, b""),
            b'{"executorName":"deadbeef","jobId":42,"errorMessage":"OH NO"}',
        ),
    ],
)
def test_job_routes_send_what_go_sends(
    raw: _Raw,
    job: Job,
    route: str,
    call: Callable[[QueueClient, Job], Awaitable[object]],
    answer: tuple[int, bytes],
    body: bytes,
) -> None:
    raw.answers = [answer]
    sent = _sent(raw, lambda c: call(c, job), ["batches"])
    auth = "Bearer job-token" if job.token else "token-executor hunter2"
    assert sent == _post(raw, f"/.executors/queue/batches/{route}", auth, body, job=True)


def test_a_job_of_another_queue_is_marked_on_its_own_queue(raw: _Raw) -> None:
    job = Job(id=42, token="job-token", queue="codeintel")
    sent = _sent(raw, lambda c: c.mark_complete(job), ["batches", "codeintel"])
    body = b'{"executorName":"deadbeef","jobId":42}'
    expected = _post(
        raw, "/.executors/queue/codeintel/markComplete", "Bearer job-token", body, job=True
    )
    assert sent == expected


@pytest.mark.parametrize("job", [JOB, NO_TOKEN], ids=["job-token", "executor-token-fallback"])
def test_file_get_has_no_body_and_no_content_type(raw: _Raw, job: Job) -> None:
    raw.answers = [(200, b"hello world!")]
    got: list[bytes] = []

    async def get(client: QueueClient) -> None:
        got.append(await client.get_file(job, "some-bucket", "foo/bar"))

    sent = _sent(raw, get, ["batches"])
    auth = "Bearer job-token" if job.token else "token-executor hunter2"
    assert got == [b"hello world!"]
    assert sent == (
        b"GET /.executors/files/some-bucket/foo/bar HTTP/1.1\r\n"
        b"Host: 127.0.0.1:%d\r\n"
        b"Authorization: %s\r\n"
        b"X-Sourcegraph-Executor-Name: deadbeef\r\n"
        b"X-Sourcegraph-Job-Id: 42\r\n"
        b"Accept-Encoding: gzip\r\n\r\n" % (raw.port, auth.encode())
    )


def test_head_has_no_body_no_content_type_and_no_accept_encoding(raw: _Raw) -> None:
    raw.answers = [(200, b"")]
    headers = {
        "Authorization": "Bearer job-token",
        "X-Sourcegraph-Job-ID": "42",
        "X-Sourcegraph-Executor-Name": "deadbeef",
    }
    sent = _sent(
        raw,
        lambda c: c.call("FilesExists", "HEAD", "/.executors/files/b/k", headers, None),
        ["batches"],
    )
    assert sent == (
        b"HEAD /.executors/files/b/k HTTP/1.1\r\n"
        b"Host: 127.0.0.1:%d\r\n"
        b"Authorization: Bearer job-token\r\n"
        b"X-Sourcegraph-Executor-Name: deadbeef\r\n"
        b"X-Sourcegraph-Job-Id: 42\r\n\r\n" % raw.port
    )


def test_auth_check_is_a_bare_get(raw: _Raw) -> None:
    raw.answers = [(200, b"ok")]
    sent = _sent(raw, lambda c: c.check_auth(), ["batches"])
    assert sent == (
        b"GET /.executors/test/auth HTTP/1.1\r\n"
        b"Host: 127.0.0.1:%d\r\n"
        b"Authorization: token-executor hunter2\r\n"
        b"Accept-Encoding: gzip\r\n\r\n" % raw.port
    )


def test_startup_ping(raw: _Raw) -> None:
    raw.answers = [(200, b'{"knownIds":[],"cancelIds":[]}')]
    sent = _sent(raw, lambda c: c.ping(), ["batches", "codeintel"])
    empty = b'"os":"","architecture":"","dockerVersion":"","executorVersion":"","gitVersion":""'
    empty += b',"igniteVersion":"","srcCliVersion":"","prometheusMetrics":""'
    body = b'{"version":"","executorName":"deadbeef","queueNames":["batches","codeintel"],'
    assert sent == _post(
        raw, "/.executors/queue/heartbeat", "token-executor hunter2", body + empty + b"}", job=False
    )
