"""The real QueueClient against the real sandbox over loopback, plus small real HTTP servers
for answers the sandbox never gives (503 bursts, HTML pages)."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from executor.apiclient.base import RetryPolicy
from executor.apiclient.queue import QueueClient
from executor.errors import ApiDecodeError, ApiRejected, ApiUnauthorized, ApiUnavailable
from executor.wire import ExecutionLogEntry, Job

FAST = RetryPolicy(attempts=4, deadline=10.0, base=0.01, cap=0.05)


def _client(url: str, token: str, queues: list[str] | None = None, **kw: Any) -> QueueClient:
    return QueueClient(
        frontend_url=url,
        token=token,
        executor_name="test-executor",
        queues=queues or ["batches"],
        version="5.3.0",
        retry=FAST,
        **kw,
    )


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_full_job_lifecycle(sandbox: Any) -> None:
    job_id = sandbox.enqueue({"dockerSteps": [{"image": "x", "commands": ["true"]}]})

    async def scenario() -> tuple[Job | None, Job | None, int, tuple[list[str], list[str]]]:
        client = _client(sandbox.url, sandbox.token)
        try:
            await client.ping()
            job = await client.dequeue()
            assert job is not None
            empty = await client.dequeue()
            known = await client.heartbeat([job.record_uid])
            entry = ExecutionLogEntry(
                key="step.docker.0", command=["echo", "hi"], start_time=dt.datetime.now(dt.UTC)
            )
            entry_id = await client.add_execution_log_entry(job, entry)
            done = entry.model_copy(
                update={"out": "stdout: hi\n", "exit_code": 0, "duration_ms": 5}
            )
            await client.update_execution_log_entry(job, entry_id, done)
            await client.mark_complete(job)
            with pytest.raises(ApiRejected) as info:
                await client.mark_complete(job)
            assert info.value.status in (401, 404)
            return job, empty, entry_id, known
        finally:
            await client.aclose()

    job, empty, entry_id, (known, cancel) = _run(scenario())
    assert job is not None and job.id == job_id and len(job.token) == 40
    assert empty is None
    assert entry_id == 1
    assert known == [str(job_id)] and cancel == []
    stored = sandbox.job(job_id)
    assert stored["state"] == "completed"
    assert stored["execution_logs"][0]["out"] == "stdout: hi\n"


def test_multi_queue_dequeue_and_heartbeat(sandbox: Any) -> None:
    job_id = sandbox.enqueue({"dockerSteps": []}, queue="codeintel")

    async def scenario() -> tuple[Job | None, list[str]]:
        client = _client(sandbox.url, sandbox.token, queues=["batches", "codeintel"])
        try:
            await client.ping()
            job = await client.dequeue()
            assert job is not None
            known, _ = await client.heartbeat([job.record_uid])
            await client.mark_failed(job, "giving up")
            return job, known
        finally:
            await client.aclose()

    job, known = _run(scenario())
    assert job is not None and job.queue == "codeintel" and job.id == job_id
    assert known == [f"{job_id}-codeintel"]
    assert sandbox.job(job_id)["state"] == "failed"


def test_wrong_token_fails_at_once(sandbox: Any) -> None:
    async def scenario() -> None:
        client = _client(sandbox.url, "wrong-token")
        try:
            await client.dequeue()
        finally:
            await client.aclose()

    with pytest.raises(ApiUnauthorized) as info:
        _run(scenario())
    assert info.value.status == 401
    assert "wrong-token" not in str(info.value)


def test_unreachable_frontend_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def scenario() -> None:
        client = _client(f"http://127.0.0.1:{port}", "t0ken-value")
        try:
            await client.heartbeat([])
        finally:
            await client.aclose()

    with pytest.raises(ApiUnavailable) as info:
        _run(scenario())
    assert "t0ken-value" not in str(info.value)


class _Scripted(http.server.BaseHTTPRequestHandler):
    """A real HTTP server answering from a script: (status, content type, body) per request."""

    script: list[tuple[int, str, bytes]] = []
    seen: list[str] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).seen.append(self.path)
        status, ctype, body = (
            type(self).script.pop(0)
            if type(self).script
            else (500, "text/plain", b"script exhausted")
        )
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if status == 429:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = _answer
    do_GET = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def scripted() -> Iterator[tuple[str, type[_Scripted]]]:
    handler = type("Handler", (_Scripted,), {"script": [], "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_transient_errors_are_retried(scripted: tuple[str, type[_Scripted]]) -> None:
    url, handler = scripted
    handler.script = [
        (503, "text/plain", b"busy"),
        (429, "text/plain", b"slow down"),
        (204, "text/plain", b""),
    ]

    async def scenario() -> None:
        client = _client(url, "tok3n")
        try:
            await client.mark_complete(Job(id=7, token="t"))
        finally:
            await client.aclose()

    _run(scenario())
    assert len(handler.seen) == 3


def test_a_heartbeat_is_not_retried_by_the_client(scripted: tuple[str, type[_Scripted]]) -> None:
    """The loop backs heartbeats off itself, within the frontend's 25 s window."""
    url, handler = scripted
    handler.script = [(503, "text/plain", b"busy")]

    async def scenario() -> None:
        client = _client(url, "tok3n")
        try:
            await client.heartbeat(["7"])
        finally:
            await client.aclose()

    with pytest.raises(ApiUnavailable):
        _run(scenario())
    assert len(handler.seen) == 1


def test_401_is_not_retried(scripted: tuple[str, type[_Scripted]]) -> None:
    url, handler = scripted
    handler.script = [(401, "text/plain", b"invalid token\n")]

    async def scenario() -> None:
        client = _client(url, "tok3n")
        try:
            await client.heartbeat([])
        finally:
            await client.aclose()

    with pytest.raises(ApiUnauthorized, match="invalid token"):
        _run(scenario())
    assert len(handler.seen) == 1


def test_html_answer_is_a_clear_decode_error(scripted: tuple[str, type[_Scripted]]) -> None:
    url, handler = scripted
    handler.script = [(200, "text/html", b"<html><body>Sign in</body></html>")]

    async def scenario() -> None:
        client = _client(url, "tok3n")
        try:
            await client.dequeue()
        finally:
            await client.aclose()

    with pytest.raises(ApiDecodeError, match="not JSON"):
        _run(scenario())


def test_add_log_entry_is_not_resent_after_a_5xx(scripted: tuple[str, type[_Scripted]]) -> None:
    url, handler = scripted
    handler.script = [(502, "text/plain", b"bad gateway"), (200, "application/json", b"1")]
    job = Job(id=42, token="ab" * 20)
    entry = ExecutionLogEntry(key="k", command=None, start_time=dt.datetime.now(dt.UTC))

    async def scenario() -> None:
        client = _client(url, "tok3n")
        try:
            await client.add_execution_log_entry(job, entry)
        finally:
            await client.aclose()

    with pytest.raises(ApiUnavailable):
        _run(scenario())
    assert len(handler.seen) == 1


def _validate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(
        [sys.executable, "-m", "executor", "validate"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_validate_against_the_sandbox(sandbox: Any) -> None:
    ok = _validate(
        {
            "EXECUTOR_FRONTEND_URL": sandbox.url,
            "EXECUTOR_FRONTEND_PASSWORD": sandbox.token,
            "EXECUTOR_QUEUE_NAME": "batches",
        }
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "All checks passed!" in ok.stdout
    bad = _validate(
        {
            "EXECUTOR_FRONTEND_URL": sandbox.url,
            "EXECUTOR_FRONTEND_PASSWORD": "not-the-token",
            "EXECUTOR_QUEUE_NAME": "batches",
        }
    )
    assert bad.returncode == 1
    assert "is executors.accessToken set correctly in the site-config?" in bad.stdout
    assert "not-the-token" not in bad.stdout + bad.stderr


def test_validate_unreachable_frontend() -> None:
    done = _validate(
        {
            "EXECUTOR_FRONTEND_URL": "http://127.0.0.1:9",
            "EXECUTOR_FRONTEND_PASSWORD": "whatever-token",
            "EXECUTOR_QUEUE_NAME": "batches",
        }
    )
    assert done.returncode == 1
    assert "cannot reach the frontend" in done.stdout
