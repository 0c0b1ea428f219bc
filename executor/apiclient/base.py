"""The HTTP edge shared by every frontend call: URL joining, retries, status mapping.

Sourcegraph's `cmd/executor/internal/apiclient/baseclient.go` in spirit. Retries happen here
and only here (STYLE.md rule 5): connection errors, timeouts, 429 and 5xx are retried with
capped, jittered exponential backoff that honours `Retry-After`; 401/403 raise
`ApiUnauthorized` at once; other non-2xx raise `ApiRejected`; a 2xx body that is not JSON
raises `ApiDecodeError`.

SECURITY: headers (tokens) never reach an exception message, a log line or a metric label.
Knows nothing of the queue API's meaning.

On the wire every request is what Sourcegraph's Go client (`baseclient.go`, Go's `net/http`)
writes, byte for byte, with one deliberate exception:
- headers in Go's order: `Host`, `Content-Length` (only with a body), the request's own headers
  in sorted order (`Authorization`, `Content-Type`, `X-Sourcegraph-Executor-Name`,
  `X-Sourcegraph-Job-Id`: Go canonicalises `Job-ID` so), then `Accept-Encoding: gzip` (Go's
  transport adds it to everything but HEAD). No `User-Agent`: `BaseClientOptions.UserAgent` is
  never filled in and Go omits an empty one; no `Accept`, no `Connection`.
- bodies as Go's `json.Marshal` writes them: no whitespace, UTF-8 (not ASCII escapes), `<`, `>`,
  `&`, U+2028 and U+2029 escaped, a lone surrogate (invalid UTF-8 to Go) as the escape of U+FFFD.
- the exception: GET and HEAD carry no body and no `Content-Type`. Go's `Do` sets
  `Content-Type: application/json` on every request and `validate` sends `null` as the body of
  `GET /.executors/test/auth`; RFC 9110 §9.3.1 warns that a body on GET may be rejected by
  intermediaries (a request-smuggling risk), and a strict frontend or load balancer does.

A large body (a log entry's `out` of up to 16 MiB, re-sent every second) is encoded and sent
in pieces of `_PIECE` characters rather than built whole: building it whole costs the JSON
text, its bytes and the HTTP stack's copies at once, and blocks the event loop while it is done.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from executor.errors import (
    ApiDecodeError,
    ApiError,
    ApiRejected,
    ApiUnauthorized,
    ApiUnavailable,
)

__all__ = [
    "BaseClient",
    "JsonString",
    "Observer",
    "RetryPolicy",
    "decode_json",
    "first_error",
    "go_json",
    "is_transient",
    "never_sent",
]

# op, seconds, failed: the metrics module plugs in here without this module importing it.
Observer = Callable[[str, float, bool], None]


class RetryPolicy:
    """How hard to try a transient failure before giving up.

    The defaults are those of the Go executor's client (`httpcli.NewInternalClientFactory`:
    `SRC_HTTP_CLI_INTERNAL_RETRY_MAX_ATTEMPTS` 20, delay base 50ms, max 1s), bounded by a
    deadline of ours. Six attempts were too few: at a 30 % error rate one call in ~1,400 still
    failed, and a job makes ~15 calls, so a 20-job chaos run lost a job's log ~1 time in 5.
    """

    def __init__(
        self, *, attempts: int = 20, deadline: float = 30.0, base: float = 0.05, cap: float = 1.0
    ) -> None:
        self.attempts = attempts
        self.deadline = deadline
        self.base = base
        self.cap = cap


def _verify(base: str) -> ssl.SSLContext | bool:
    """httpx's default verification (the CA bundle; `SSL_CERT_FILE` and `SSL_CERT_DIR`
    honoured) for an https frontend. For a plain http one, whose client never speaks TLS
    (redirects are not followed), a context that trusts no certificate instead: loading the
    bundle costs an idle daemon ~2 MiB (`bench.idle`), and a TLS connection it did try would
    fail rather than go unverified."""
    if base.lower().startswith("https:"):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def is_transient(err: BaseException) -> bool:
    return isinstance(err, ApiUnavailable)


def never_sent(err: BaseException) -> bool:
    return isinstance(err, ApiUnavailable) and err.status is None and "connect" in str(err)


class BaseClient:
    """One pooled `httpx.AsyncClient` and the call/retry/status plumbing."""

    def __init__(
        self,
        *,
        frontend_url: str,
        retry: RetryPolicy | None = None,
        observe: Observer | None = None,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base = frontend_url.rstrip("/")
        self._retry = retry or RetryPolicy()
        self._observe = observe
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
            verify=_verify(self._base),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )
        for default in ("Accept", "Accept-Encoding", "Connection", "User-Agent"):
            del self._http.headers[default]  # httpx's own defaults: Go sends none of them

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self,
        op: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Any,
        *,
        retry: bool = True,
        retry_if: Callable[[BaseException], bool] = is_transient,
        before: Callable[[RetryCallState], None] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        policy = self._retry
        attempts = policy.attempts if retry else 1
        started = time.monotonic()
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(retry_if),
                stop=stop_after_attempt(attempts) | stop_after_delay(policy.deadline),
                wait=_RetryAfterWait(policy),
                reraise=True,
                before=before or _no_op,
            ):
                with attempt:
                    return await self._send(op, method, path, headers, body, timeout)
        except ApiError:
            self._record(op, started, failed=True)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        op: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Any,
        timeout: float | None = None,
    ) -> httpx.Response:
        content: bytes | _JsonPieces | None = None
        length: str | None = None
        wire = dict(headers)
        if method not in ("GET", "HEAD") or body is not None:
            wire["Content-Type"] = "application/json"
            if _is_large(body):
                content = _JsonPieces(body)
                length = str(await content.length())
            else:
                content = go_json(body)
                length = str(len(content))
        ordered = [("Content-Length", length)] if length is not None else []
        ordered += sorted((_canonical(k), v) for k, v in wire.items())
        if method != "HEAD":
            ordered.append(("Accept-Encoding", "gzip"))
        request = self._http.build_request(
            method,
            self._base + path,
            content=content,
            headers=ordered,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout),
        )
        started = time.monotonic()
        try:
            response = await self._http.send(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            raise ApiUnavailable(
                op, f"connect: cannot reach the frontend ({type(err).__name__})"
            ) from None
        except httpx.TimeoutException as err:
            raise ApiUnavailable(op, f"timeout ({type(err).__name__})") from None
        except httpx.TransportError as err:
            raise ApiUnavailable(op, f"transport error ({type(err).__name__})") from None
        status = response.status_code
        if status in (200, 204):
            self._record(op, started, failed=False)
            return response
        text = response.text
        if status == 429 or status >= 500:
            raise ApiUnavailable(
                op,
                f"unexpected status code {status}: {text.strip()[:300]}",
                status=status,
                retry_after=_retry_after(response),
            )
        if status in (401, 403):
            raise ApiUnauthorized(op, status, text)
        raise ApiRejected(op, status, text)

    def _record(self, op: str, started: float, *, failed: bool) -> None:
        if self._observe is not None:
            self._observe(op, time.monotonic() - started, failed)


class _RetryAfterWait:
    """Jittered exponential backoff, but never sooner than a server's `Retry-After`."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._jitter = wait_random_exponential(multiplier=policy.base, max=policy.cap)
        self._cap = policy.cap

    def __call__(self, state: RetryCallState) -> float:
        delay = float(self._jitter(state))
        outcome = state.outcome
        err = outcome.exception() if outcome is not None else None
        hinted = err.retry_after if isinstance(err, ApiUnavailable) else None
        if hinted is not None:
            delay = max(delay, min(hinted, 30.0))
        return delay


def _no_op(_: RetryCallState) -> None:
    return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def decode_json(response: httpx.Response, op: str) -> Any:
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("content-type", "unknown content type")
        raise ApiDecodeError(
            op, f"response is not JSON ({kind}): {response.text.strip()[:120]!r}"
        ) from None


def _canonical(name: str) -> str:
    """Go's `textproto.CanonicalMIMEHeaderKey`: `x-sourcegraph-job-id` → `X-Sourcegraph-Job-Id`."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


# Characters Go's encoder escapes that Python's `ensure_ascii=False` leaves as they are; none
# of them can occur outside a string in JSON text, so escaping them in the whole text is exact.
_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_ESCAPE_RE = re.compile("[<>&\u2028\u2029\ud800-\udfff]")


def _go_escape(match: re.Match[str]) -> str:
    return _GO_ESCAPES.get(match.group(0), "\\ufffd")


def _go_text(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if text.isascii():  # O(1) for a str; then only `<`, `>` and `&` can need escaping
        # A substring test is a memchr, ~200 times faster than the regex's scan: a 16 MiB
        # log entry is encoded twice for every update (its length, then its bytes).
        if "<" in text or ">" in text or "&" in text:
            text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        return text
    return _GO_ESCAPE_RE.sub(_go_escape, text)


def go_json(value: Any) -> bytes:
    """`json.Marshal(value)` as Go writes it, for values whose dicts are in Go field order."""
    return _go_text(value).encode("utf-8")


def first_error(err: ValueError) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return f"{loc}: {first.get('msg')}"
    return str(err)


# Bodies holding a string longer than _STREAM_OVER are streamed, in pieces of about _PIECE.
_STREAM_OVER = 1024 * 1024
_PIECE = 64 * 1024


class JsonString:
    """One JSON string value given as the pieces it is made of, sent without joining them
    (a large log entry's `out`, kept in pieces by the execution log). Always streamed; plain
    `json` cannot encode it, so it can never go out as anything but one string."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[str, ...]) -> None:
        self.parts = parts


def _is_large(value: Any) -> bool:
    if isinstance(value, JsonString):
        return True
    if isinstance(value, str):
        return len(value) > _STREAM_OVER
    if isinstance(value, dict):
        return any(_is_large(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_is_large(v) for v in value)
    return False


def _json_pieces(value: Any) -> Iterator[str]:
    """`_go_text(value)` as a sequence of short strings.

    Escaping is per code point, so a string escaped in slices is the string escaped whole.
    """
    if isinstance(value, JsonString):
        yield '"'
        for part in value.parts:
            for i in range(0, len(part), _PIECE):
                yield _go_text(part[i : i + _PIECE])[1:-1]
        yield '"'
    elif isinstance(value, str):
        if len(value) <= _PIECE:
            yield _go_text(value)
            return
        yield '"'
        for i in range(0, len(value), _PIECE):
            yield _go_text(value[i : i + _PIECE])[1:-1]
        yield '"'
    elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
        yield "{"
        for n, (key, item) in enumerate(value.items()):
            yield f"{',' if n else ''}{_go_text(key)}:"
            yield from _json_pieces(item)
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for n, item in enumerate(value):
            if n:
                yield ","
            yield from _json_pieces(item)
        yield "]"
    else:
        yield _go_text(value)


class _JsonPieces:
    """A JSON request body produced piece by piece while it is sent (httpx `content=`).

    Sent once: the body is let go as soon as its last piece is out. The response keeps the
    request, and tenacity's retry state keeps the response until the cyclic GC runs, which
    would otherwise keep every large body sent so far alive for a while.
    """

    def __init__(self, body: Any) -> None:
        self._body: Any = body

    async def length(self) -> int:
        """Bytes of the body (UTF-8), yielding to the loop meanwhile."""
        total = 0
        for n, piece in enumerate(_json_pieces(self._body)):
            total += len(piece) if piece.isascii() else len(piece.encode("utf-8"))
            if n % 16 == 15:
                await asyncio.sleep(0)
        return total

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body, self._body = self._body, None
        for piece in _json_pieces(body):
            yield piece.encode("utf-8")
