"""Read timeouts for the sandbox's HTTP server: a half-sent request cannot hold a connection.

uvicorn has a keep-alive timeout between requests but none while a request arrives: a client
that opens a connection and sends half a request line, half its headers, or a `Content-Length`
body it never finishes keeps the connection, its buffers and (for bodies) a task forever; a
few thousand such clients use up `limit_concurrency`. Go's `http.Server` has
`ReadHeaderTimeout` and `ReadTimeout` for this; here, two pieces:

* `TimedH11Protocol`, uvicorn's h11 protocol with a **header timeout**: from the moment a
  connection opens, or the first byte of a next request on a kept-alive one, the request line
  and headers must be complete within `header_timeout` seconds. Otherwise the connection gets a
  `408 Request Timeout` (nothing has been answered on it for this request yet, so one can still
  be sent) and is closed. It relies on uvicorn's `H11Protocol` (`conn`, `transport`, `loop`);
  `tests/integration/test_sandbox_timeouts.py` holds it to that over a raw socket.
* `BodyTimeout`, an ASGI middleware with a **body timeout**: while the request body is not
  complete, each `receive()` must bring the next piece within `body_timeout` seconds. Otherwise
  the client gets a 408 with a one-line reason if no response has started, the application sees
  `http.disconnect` (what it sees when a client goes away), and the connection is closed
  (`Connection: close`). Once the body is complete `receive()` passes through untouched, so
  long responses that wait for a disconnect are not cut.

Knows HTTP and uvicorn; nothing of the queue.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

__all__ = ["BODY_TIMEOUT", "HEADER_TIMEOUT", "BodyTimeout", "TimedH11Protocol", "timed_protocol"]

#: Seconds for the request line and headers (Go servers commonly use 5-10 s).
HEADER_TIMEOUT = 10.0
#: Seconds between two pieces of a request body (a 128 MiB body on a slow link still moves).
BODY_TIMEOUT = 30.0

_REASON = b"request headers not received in time\n"
_RAW_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: " + str(len(_REASON)).encode() + b"\r\n\r\n" + _REASON
)


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request's line and headers."""

    header_timeout = HEADER_TIMEOUT

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is timed out too

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the head is complete: the body timeout takes over
        elif self.conn.trailing_data[0]:
            self._arm()  # part of a (next) request head is buffered

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Between requests uvicorn's keep-alive timeout applies; ours restarts with new bytes.
        self._disarm()

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.our_state is h11.IDLE:  # nothing answered for this request yet
            self.transport.write(_RAW_408)
        self.transport.close()


def timed_protocol(header_timeout: float) -> type[TimedH11Protocol]:
    """`TimedH11Protocol` with another header timeout (for uvicorn's `http=` option)."""
    return type("TimedH11Protocol", (TimedH11Protocol,), {"header_timeout": header_timeout})


class BodyTimeout:
    """ASGI middleware: a request body that stalls for `timeout` seconds ends with a 408."""

    def __init__(self, app: Any, timeout: float = BODY_TIMEOUT) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        complete = False
        started = False
        timed_out = False

        async def timed_receive() -> dict[str, Any]:
            nonlocal complete, timed_out
            if complete or timed_out:
                return dict(await receive()) if not timed_out else {"type": "http.disconnect"}
            try:
                message = dict(await asyncio.wait_for(receive(), self.timeout))
            except TimeoutError:
                timed_out = True
                if not started:
                    await _answer_408(send, self.timeout)
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if timed_out:
                return  # the 408 (or the started response, now cut) is all the client gets
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not timed_out:
                raise  # an application error; after a timeout, its disconnect handling


async def _answer_408(send: Any, timeout: float) -> None:
    body = f"request body not received: no data for {timeout:g}s\n".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 408, "headers": headers})
    await send({"type": "http.response.body", "body": body})
