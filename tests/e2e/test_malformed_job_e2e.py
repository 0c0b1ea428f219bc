"""A job payload that does not decode but names its job is marked failed, end to end.

The sandbox only hands out payloads its own models accept, so a real frontend that sends a
malformed job is played by a small forwarding proxy on loopback: every request goes to the real
sandbox and back unchanged, except dequeue answers queued for corruption (the job's `id` and
`token` stay intact, one field is broken). The daemon must mark that job failed through the real
job-token route, with a message naming the field and quoting nothing secret, and keep serving:
the good job behind it completes.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fixtures_daemon import wait_for
from fixtures_sandbox import Sandbox

from executor.apiclient.queue import QueueClient
from executor.errors import ApiDecodeError
from executor.wire import MalformedJob

pytestmark = [pytest.mark.slow]

FINAL = ("completed", "errored", "failed", "canceled")
SECRET = "s3cret-in-redacted-values"
Corruption = Callable[[dict[str, Any]], dict[str, Any]]


class _CorruptingProxy(http.server.ThreadingHTTPServer):
    """Forwards everything to `upstream`; the next dequeue answers go through `corruptions`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.corruptions: list[Corruption] = []
        self.token = ""  # set by the fixture: the daemon uses the sandbox's executor token
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: _CorruptingProxy

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        with httpx.Client(base_url=self.server.upstream, timeout=60) as client:
            answer = client.request(self.command, self.path, headers=headers, content=body)
        content = answer.content
        if self.path.endswith("/dequeue") and answer.status_code == 200 and self.server.corruptions:
            corrupt = self.server.corruptions.pop(0)
            content = json.dumps(corrupt(answer.json())).encode()
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_HEAD = do_PUT = _forward


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[_CorruptingProxy]:
    server = _CorruptingProxy(sandbox.url)
    server.token = sandbox.token
    yield server
    server.shutdown()
    server.server_close()


def _broken_image(job: dict[str, Any]) -> dict[str, Any]:
    job["dockerSteps"][0]["image"] = 5
    return job


def _secret_key_broken(job: dict[str, Any]) -> dict[str, Any]:
    job["redactedValues"] = {SECRET: ["not", "a", "string"]}
    return job


def _step_list_is_a_string(job: dict[str, Any]) -> dict[str, Any]:
    job["dockerSteps"] = "rm -rf /"
    return job


def _step_field(field: str, value: Any) -> Corruption:
    def corrupt(job: dict[str, Any]) -> dict[str, Any]:
        job["dockerSteps"][0][field] = value
        return job

    return corrupt


def _nul_file_key(job: dict[str, Any]) -> dict[str, Any]:
    job["files"] = {"a\x00b": {"content": "eA=="}}
    return job


def _nul_secret(job: dict[str, Any]) -> dict[str, Any]:
    job["redactedValues"] = {SECRET + "\x00": "${{ secrets.S }}"}
    return job


def _bad_job() -> dict[str, Any]:
    return {"dockerSteps": [{"image": "executor-busybox:latest", "commands": ["true"]}]}


CASES = {
    "step-image-int": (_broken_image, "malformed job payload: dockerSteps.0.image: "),
    "secret-key": (_secret_key_broken, "malformed job payload: redactedValues: "),
    "steps-string": (_step_list_is_a_string, "malformed job payload: dockerSteps: "),
    # Issue 10: env and NUL hygiene. `-e PATH` would have copied the daemon's own PATH in.
    "env-without-equals": (
        _step_field("env", ["A=1", "PATH"]),
        "malformed job payload: dockerSteps.0.env: entry 1 is not NAME=value",
    ),
    "env-newline-in-name": (
        _step_field("env", ["X\nY=1"]),
        "malformed job payload: dockerSteps.0.env: entry 0 has a line break in its name",
    ),
    "env-empty-name": (
        _step_field("env", ["=1"]),
        "malformed job payload: dockerSteps.0.env: entry 0 has an empty name",
    ),
    "nul-in-image": (
        _step_field("image", "executor-busybox:latest\x00x"),
        "malformed job payload: dockerSteps.0.image: contains a NUL byte",
    ),
    "nul-in-command": (
        _step_field("commands", ["true", "echo \x00"]),
        "malformed job payload: dockerSteps.0.commands.1: contains a NUL byte",
    ),
    "nul-in-dir": (
        _step_field("dir", "a\x00b"),
        "malformed job payload: dockerSteps.0.dir: contains a NUL byte",
    ),
    "nul-in-file-key": (_nul_file_key, "malformed job payload: files: a key: contains a NUL"),
    "nul-in-secret": (_nul_secret, "malformed job payload: redactedValues: a key: contains a NUL"),
}


@pytest.mark.parametrize(("corrupt", "expected"), CASES.values(), ids=CASES.keys())
def test_malformed_job_is_marked_failed_and_the_daemon_keeps_serving(
    sandbox: Sandbox,
    proxy: _CorruptingProxy,
    daemon_factory: Any,
    corrupt: Corruption,
    expected: str,
) -> None:
    proxy.corruptions.append(corrupt)
    bad = sandbox.enqueue(_bad_job())
    good = sandbox.enqueue({})  # no repository, no steps: completes without Docker
    daemon = daemon_factory(frontend=proxy)
    job = sandbox.wait_state(bad, FINAL, timeout=60)
    assert job["state"] == "failed", (job, daemon.log_text[-3000:])
    message = job["failure_message"] or ""
    assert message.startswith(expected), message
    done = sandbox.wait_state(good, FINAL, timeout=60)
    assert done["state"] == "completed", (done, daemon.log_text[-3000:])
    assert daemon.proc.poll() is None, daemon.log_text[-3000:]
    logs = daemon.log_text
    assert "job payload is malformed; marking it failed" in logs
    for text in (message, logs):
        assert SECRET not in text and sandbox.token not in text
    assert not proxy.corruptions


def test_queue_client_raises_malformed_job_with_its_identity(
    sandbox: Sandbox, proxy: _CorruptingProxy
) -> None:
    proxy.corruptions.append(_step_list_is_a_string)
    bad = sandbox.enqueue(_bad_job())

    async def scenario() -> None:
        client = QueueClient(
            frontend_url=proxy.url,
            token=sandbox.token,
            executor_name="malformed-probe",
            queues=["batches"],
            version="5.3.0",
        )
        await client.ping()
        with pytest.raises(MalformedJob) as caught:
            await client.dequeue()
        err = caught.value
        assert err.job.id == bad and len(err.job.token) == 40
        assert err.reason == "dockerSteps: Input should be a valid list"
        await client.mark_failed(err.job, f"malformed job payload: {err.reason}")
        await client.aclose()

    asyncio.run(scenario())
    job = sandbox.job(bad)
    assert job["state"] == "failed" and "dockerSteps" in job["failure_message"]


def test_multi_queue_client_refuses_to_guess_the_queue(
    sandbox: Sandbox, proxy: _CorruptingProxy
) -> None:
    """IDs overlap across queues: without a readable `queue` the job cannot be marked safely."""

    def drop_queue(job: dict[str, Any]) -> dict[str, Any]:
        return _step_list_is_a_string({**job, "queue": None})

    proxy.corruptions.append(drop_queue)
    bad = sandbox.enqueue(_bad_job())

    async def scenario() -> None:
        client = QueueClient(
            frontend_url=proxy.url,
            token=sandbox.token,
            executor_name="malformed-probe",
            queues=["batches", "codeintel"],
            version="5.3.0",
        )
        await client.ping()
        with pytest.raises(ApiDecodeError, match="malformed job payload: dockerSteps"):
            await client.dequeue()
        await client.aclose()

    asyncio.run(scenario())
    assert wait_for(lambda: sandbox.job(bad)["state"] == "processing", 5)
