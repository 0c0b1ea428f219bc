"""Large request bodies: streamed in pieces, yet byte for byte Go's `json.Marshal`, with a
Content-Length.

A real HTTP server on loopback records what arrives; the real QueueClient sends log entries.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import http.server
import itertools
import ssl
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from executor.apiclient.base import RetryPolicy, go_json
from executor.apiclient.queue import QueueClient
from executor.wire import ExecutionLogEntry, Job
from executor.wire.requests import UpdateExecutionLogEntryRequest

JOB = Job(id=42, token="ab" * 20)
START = dt.datetime(2026, 11, 21, 6, 0, tzinfo=dt.UTC)


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    statuses: list[int] = []
    requests: list[tuple[dict[str, str], bytes]] = []
    keep = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        cls = type(self)
        cls.requests.append((dict(self.headers), body if cls.keep else b""))
        status = cls.statuses.pop(0) if cls.statuses else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def recorder() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"statuses": [], "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _client(url: str) -> QueueClient:
    return QueueClient(
        frontend_url=url,
        token="tok3n",
        executor_name="test-executor",
        queues=["batches"],
        version="5.3.0",
        retry=RetryPolicy(attempts=3, deadline=10.0, base=0.01, cap=0.05),
    )


def _entry(out: str) -> ExecutionLogEntry:
    return ExecutionLogEntry(key="step.docker.0", command=["sh"], start_time=START, out=out)


def _in_pieces(out: str) -> ExecutionLogEntry:
    """The same entry with its output in irregular pieces, as the execution log keeps it."""
    cuts = [0, 1, 8, 70_000, 70_001, 200_003, len(out) - 5, len(out)]
    pieces = [out[a:b] for a, b in itertools.pairwise(cuts)]
    assert "".join(pieces) == out
    return ExecutionLogEntry.with_output_parts(
        pieces, key="step.docker.0", command=["sh"], start_time=START
    )


@pytest.mark.parametrize("pieces", [False, True], ids=["one-string", "in-pieces"])
def test_a_large_entry_arrives_as_go_marshals_it_with_content_length(
    recorder: tuple[str, type[_Recorder]], pieces: bool
) -> None:
    """Also when its output is handed over in pieces (never joined in the executor)."""
    url, handler = recorder
    handler.statuses = [503, 204]  # the retry sends the whole body again
    line = 'stdout: "quoted" \\ tab\t ctl\x01 é€😀 \u2028\n'
    out = line * 40000 + "stdout: … 123 bytes (4 lines) omitted by the executor …\n"
    expected = go_json(
        UpdateExecutionLogEntryRequest(
            executor_name="test-executor", job_id=42, entry_id=7, entry=_entry(out)
        ).to_wire()
    )
    assert b"\\u2028" in expected and "é€😀".encode() in expected
    assert len(expected) > 1 << 20

    async def scenario() -> None:
        client = _client(url)
        try:
            entry = _in_pieces(out) if pieces else _entry(out)
            await client.update_execution_log_entry(JOB, 7, entry)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert len(handler.requests) == 2
    for headers, body in handler.requests:
        assert body == expected
        assert headers["Content-Length"] == str(len(expected))
        assert "Transfer-Encoding" not in headers


def test_small_bodies_are_unchanged(recorder: tuple[str, type[_Recorder]]) -> None:
    url, handler = recorder

    async def scenario() -> None:
        client = _client(url)
        try:
            await client.update_execution_log_entry(JOB, 1, _entry("stdout: hi\n"))
        finally:
            await client.aclose()

    asyncio.run(scenario())
    (headers, body), *_ = handler.requests
    assert body == (
        b'{"executorName":"test-executor","jobId":42,"entryId":1,"key":"step.docker.0",'
        b'"command":["sh"],"startTime":"2026-11-21T06:00:00Z","out":"stdout: hi\\n"}'
    )
    assert headers["Content-Length"] == str(len(body))


def test_sent_bodies_are_not_kept_alive(recorder: tuple[str, type[_Recorder]]) -> None:
    """Responses keep their request and tenacity's retry state keeps the response in a
    reference cycle: without care, every 4 MiB body sent would live until the cyclic GC."""
    url, handler = recorder
    handler.keep = False
    size = 4 << 20

    async def scenario() -> int:
        client = _client(url)
        try:
            await client.update_execution_log_entry(JOB, 1, _entry("warm-up"))
            before = tracemalloc.get_traced_memory()[0]
            for n in range(4):
                await client.update_execution_log_entry(JOB, 1, _entry(str(n) * size))
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            await client.aclose()

    gc.disable()
    tracemalloc.start()
    try:
        grown = asyncio.run(scenario())
    finally:
        tracemalloc.stop()
        gc.enable()
    assert len(handler.requests) == 5
    assert grown < size, f"{grown / 2**20:.1f} MiB still held after sending 4 bodies of 4 MiB"


@pytest.mark.parametrize(("scheme", "bundle_loads"), [("https", 1), ("http", 0)])
def test_the_ca_bundle_is_loaded_only_for_an_https_frontend(
    monkeypatch: pytest.MonkeyPatch, scheme: str, bundle_loads: int
) -> None:
    """~2 MiB of an idle daemon's RSS; a plain http frontend's client never speaks TLS."""
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)

    async def scenario() -> None:
        await _client(f"{scheme}://127.0.0.1:9").aclose()

    asyncio.run(scenario())
    assert len(loads) == bundle_loads


def _go_string(text: str) -> str:
    """Go's `json.Marshal` of a string, character by character (`encode.go` `appendString`;
    `\\b` and `\\f` since Go 1.22)."""
    named = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    named.update({"\b": "\\b", "\f": "\\f"})
    out = []
    for ch in text:
        if ch in named:
            out.append(named[ch])
        elif ch < " " or ch in "<>&\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        elif "\ud800" <= ch <= "\udfff":
            out.append("\\ufffd")  # a lone surrogate is invalid UTF-8 to Go
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@example("lone \ud800 \u2028 <é> \x7f")
@given(st.text(alphabet=st.characters(codec=None, categories=None), max_size=60))
def test_strings_are_escaped_as_go_escapes_them(text: str) -> None:
    """The ASCII fast path (substring tests instead of the regex) and the general one."""
    assert go_json(text) == _go_string(text).encode("utf-8")
    assert go_json({"out": text}) == b'{"out":' + go_json(text) + b"}"
