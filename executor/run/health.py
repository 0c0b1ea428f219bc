"""`GET /healthz` on `EXECUTOR_HEALTH_SERVER_ADDR`, answered from the event loop itself.

Sourcegraph's Helm chart (`charts/sourcegraph-executor/dind/templates/_helpers.tpl`) sets
`EXECUTOR_HEALTH_SERVER_ADDR=:8080` and probes `GET /healthz`. Served here by an
`asyncio.start_server` on the daemon's own loop, not a thread: a loop that is wedged (a blocking
call, a step that could stall it) answers nothing, so the probe times out and fails. A loop that
runs but has stopped talking to the frontend answers 503: the worker's `health()` says whether
the last answered heartbeat and dequeue attempt are within its bound. The body is JSON facts
(ages in seconds, running jobs), no secret. `/metrics` stays on its own port.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

__all__ = ["HealthServer", "parse_addr"]

#: Longest request head we read before answering 400: probes send a few hundred bytes.
_MAX_HEAD = 8192


def parse_addr(addr: str) -> tuple[str, int]:
    """Go's `host:port` listen address (`:8080` = every interface) as (host, port)."""
    host, colon, port = addr.rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"invalid listen address {addr!r}: want host:port, such as :8080")
    return (host.strip("[]") or "0.0.0.0"), int(port)


class HealthServer:
    """Answers `/healthz` with `health()`'s verdict; anything else is 404."""

    def __init__(self, health: Callable[[], tuple[bool, dict[str, object]]]) -> None:
        self._health = health
        self._server: asyncio.Server | None = None

    async def start(self, addr: str) -> int:
        """Listen on `addr`; returns the bound port (useful with port 0)."""
        host, port = parse_addr(addr)
        self._server = await asyncio.start_server(self._serve, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        request = head[:_MAX_HEAD].split(b"\r\n", 1)[0].split()
        method, path = [*request, b"", b""][:2]
        if method not in (b"GET", b"HEAD"):
            status, body = "405 Method Not Allowed", b""
        elif path.split(b"?")[0] != b"/healthz":
            status, body = "404 Not Found", b""
        else:
            healthy, facts = self._health()
            status = "200 OK" if healthy else "503 Service Unavailable"
            body = json.dumps({"healthy": healthy, **facts}).encode() + b"\n"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + (body if method != b"HEAD" else b"")
        )
        try:
            await writer.drain()
        finally:
            writer.close()
