"""A per-job local git proxy that authenticates to the frontend so git never sees a token.

Listens on `127.0.0.1:<random port>` while one job's repository is fetched and forwards
`/<repositoryName>/…` to `<frontend_url>/.executors/git/<repositoryName>/…` (spec §4.2), adding:

    Host: <upstream host>                      (httpx sets it from the URL)
    Authorization: Bearer <job token>          (`token-executor <executor token>` without one)
    X-Sourcegraph-Actor-UID: internal
    X-Sourcegraph-Job-ID: <job id>
    X-Sourcegraph-Executor-Name: <executor name>

Anything else gets 403. Bodies are streamed both ways, never buffered whole: git sends large
POSTs chunked and maybe gzipped (passed through untouched, `Content-Encoding` included), and
packfiles can be large (relayed raw, so a compressed response stays compressed).

Built on asyncio streams with `h11` for HTTP/1.1 framing (keep-alive, chunked bodies,
`Expect: 100-continue`) and `httpx` upstream. Not uvicorn: its `Server.serve` installs process
signal handlers and its default config rewrites logging, both of which belong to the daemon.

Knows HTTP; knows nothing of git commands, workspaces or Docker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import ssl
import urllib.parse
from collections.abc import AsyncIterator

import h11
import httpx
import structlog

from executor.wire import Job

__all__ = ["git_proxy"]

_log = structlog.get_logger(__name__)

_CHUNK = 64 * 1024

# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the proxy sets itself.
_DROP_REQUEST = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
        b"host",
        b"authorization",
        b"cookie",
        b"x-sourcegraph-actor-uid",
        b"x-sourcegraph-job-id",
        b"x-sourcegraph-executor-name",
    }
)
_DROP_RESPONSE = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"set-cookie",
    }
)


@functools.cache
def _tls_context(https: bool) -> ssl.SSLContext:
    """The upstream TLS settings, built once per process.

    For an https frontend, httpx's defaults: building them loads the whole CA bundle, 15-25 ms
    of CPU that `httpx.AsyncClient()` would otherwise spend on every job, before its first git
    command (found by timing each phase), and ~2 MiB that stay. Every client uses it the same
    way (no client certificate, HTTP/1.1 only), so one context serves every job's client. For
    a plain http frontend no TLS is ever spoken: a context that trusts no certificate (a
    connection that did try TLS would fail, never go unverified), without loading the bundle.
    """
    if https:
        return httpx.create_ssl_context(trust_env=False)
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


# Dot segments, and encoded dots or slashes, could walk out of `/<repo>/` upstream.
_TRAVERSAL = re.compile(r"(^|/)\.\.?(/|$)|%2e|%2f|%5c|\\", re.IGNORECASE)


class _Proxy:
    def __init__(self, job: Job, upstream: str, auth: str, executor_name: str) -> None:
        self._job = job
        self._upstream = upstream
        self._prefix = f"/{job.repository_name}/"
        # SECURITY: the credential lives only in these headers, added on the upstream side.
        self._headers = [
            ("Authorization", auth),
            ("X-Sourcegraph-Actor-UID", "internal"),
            ("X-Sourcegraph-Job-ID", str(job.id)),
            ("X-Sourcegraph-Executor-Name", executor_name),
        ]
        self.client = httpx.AsyncClient(
            # trust_env=False: no proxy variables or netrc from the daemon's environment.
            trust_env=False,
            verify=_tls_context(upstream.lower().startswith("https:")),
            follow_redirects=False,
            timeout=httpx.Timeout(60.0, read=600.0),
        )
        self.connections: set[asyncio.Task[None]] = set()

    def allowed(self, target: str) -> bool:
        path = target.split("?", 1)[0]
        if not self._job.repository_name or not path.startswith(self._prefix):
            return False
        return _TRAVERSAL.search(path) is None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = await _next_event(conn, reader)
                if not isinstance(event, h11.Request):
                    return
                await self._exchange(conn, reader, writer, event)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (h11.ProtocolError, ConnectionError) as err:
            _log.debug("git proxy connection ended", error=f"{type(err).__name__}: {err}")
        except Exception as err:  # noqa: BLE001 - one broken exchange must not go unreported
            _log.warning("git proxy exchange failed", error=f"{type(err).__name__}: {err}")
        except asyncio.CancelledError:
            # Only git_proxy() cancels these tasks, on exit. Ending normally keeps asyncio's
            # start_server callback from logging the cancellation as an error (Python 3.11).
            pass
        finally:
            if task is not None:
                self.connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _exchange(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: h11.Request,
    ) -> None:
        target = request.target.decode("ascii", errors="replace")
        if not self.allowed(target):
            await _drain_body(conn, reader)
            await _reply(conn, writer, 403, b"forbidden\n")
            return
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in request.headers.raw_items()
            if k.lower() not in _DROP_REQUEST
        ]
        headers.extend(self._headers)
        has_body = any(
            k == b"transfer-encoding" or (k == b"content-length" and v.strip() != b"0")
            for k, v in request.headers
        )
        content: AsyncIterator[bytes] | None = None
        if has_body:
            content = _body(conn, reader, writer)
        else:
            await _drain_body(conn, reader)
        upstream = httpx.Request(
            request.method.decode("ascii"),
            self._upstream + target,
            headers=headers,
            content=content,
        )
        try:
            response = await self.client.send(upstream, stream=True)
        except httpx.HTTPError as err:
            _log.warning("git proxy upstream failed", error=f"{type(err).__name__}: {err}")
            await _drain_body(conn, reader)
            await _reply(conn, writer, 502, b"bad gateway\n")
            return
        try:
            out_headers = [
                (k, v) for k, v in response.headers.raw if k.lower() not in _DROP_RESPONSE
            ]
            await _send(
                conn,
                writer,
                h11.Response(
                    status_code=response.status_code,
                    headers=out_headers,
                    reason=response.reason_phrase.encode("latin-1", errors="replace"),
                ),
            )
            # Raw bytes: no decompression, so Content-Length and Content-Encoding stay valid.
            async for chunk in response.aiter_raw(_CHUNK):
                await _send(conn, writer, h11.Data(data=chunk))
            await _send(conn, writer, h11.EndOfMessage())
        finally:
            await response.aclose()


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> object:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(_CHUNK))


async def _body(
    conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> AsyncIterator[bytes]:
    """The client's request body, chunk by chunk, as h11 de-frames it."""
    if conn.client_is_waiting_for_100_continue:
        await _send(conn, writer, h11.InformationalResponse(status_code=100, headers=[]))
    while True:
        event = await _next_event(conn, reader)
        if isinstance(event, h11.Data):
            yield bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return
        else:
            raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} in request body")


async def _drain_body(conn: h11.Connection, reader: asyncio.StreamReader) -> None:
    if conn.their_state is not h11.SEND_BODY:
        return
    if conn.client_is_waiting_for_100_continue:
        # Refusing before the body: the client will not send it, so don't wait for it. The
        # request stays unfinished, so the connection is closed after the reply.
        return
    while not isinstance(await _next_event(conn, reader), h11.EndOfMessage | h11.ConnectionClosed):
        pass


async def _reply(
    conn: h11.Connection, writer: asyncio.StreamWriter, status: int, body: bytes
) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await _send(conn, writer, h11.Response(status_code=status, headers=headers))
    await _send(conn, writer, h11.Data(data=body))
    await _send(conn, writer, h11.EndOfMessage())


async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, event: h11.Event) -> None:
    data = conn.send(event)
    if data:
        writer.write(data)
        await writer.drain()


@contextlib.asynccontextmanager
async def git_proxy(
    job: Job, *, frontend_url: str, executor_name: str, executor_token: str
) -> AsyncIterator[int]:
    """Serve the proxy for `job` while the block runs; yields the port on 127.0.0.1.

    The clone URL is `http://127.0.0.1:<port>/<repositoryName>`. On exit the listener and any
    open connections are closed.
    """
    # SECURITY: the job token (or the executor token for old servers) only ever leaves this
    # process in the upstream request's Authorization header; git gets a plain loopback URL.
    auth = f"Bearer {job.token}" if job.token else f"token-executor {executor_token}"
    parsed = urllib.parse.urlsplit(frontend_url)
    base = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))
    proxy = _Proxy(job, f"{base}/.executors/git", auth, executor_name)
    server = await asyncio.start_server(proxy.serve, host="127.0.0.1", port=0)
    try:
        port: int = server.sockets[0].getsockname()[1]
        yield port
    finally:
        server.close()
        for task in list(proxy.connections):
            task.cancel()
        if proxy.connections:
            await asyncio.wait(list(proxy.connections), timeout=5)
        await server.wait_closed()
        await proxy.client.aclose()
