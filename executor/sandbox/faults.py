"""Fault injection for the sandbox: an ASGI middleware that makes chosen routes misbehave.

Off by default: `SandboxSettings.faults` is empty and the app is served unwrapped. A rule picks
requests by route name or by path regex (and, with `jobs`, only those of some job IDs, read from
the `X-Sourcegraph-Job-ID` header), and gives each matching request, independently:

- `latency` (seconds, or a Go duration `300ms`): added before the handler runs. A client that
  goes away meanwhile cancels the request, as on a Go frontend (uvicorn then hands the app a
  disconnect instead of the body: the handler fails, nothing changes);
- `hold` (seconds or a duration): the handler runs at once (state changed), its answer is held
  back that long: the window in which an executor can die with its call done but unanswered;
- `error` (share 0..1): answer `status` (503 unless set) **before the handler runs**, so no
  state changed. A client may retry any such answer safely. With `retry_after` (seconds, a
  whole number) the answer carries that `Retry-After` header (a throttling 429 or 503);
- `drop` (share): close the connection **before the handler runs** (no state changed);
- `lost` (share): run the handler (state changed) and then lose its answer: the connection is
  closed instead. This is the fault that exposes double marks and duplicated log entries, since
  a retry finds the work already done;
- `truncate` (share): run the handler, send its status and headers and only half of its body,
  then close. The state changed, too.

How a connection is "closed": ASGI gives an app no socket, so the middleware sends a status
line whose declared body never comes and returns; uvicorn then closes the transport. An HTTP
client sees the peer close mid-response (httpx: `RemoteProtocolError`), which is what a reset
connection or a crashed proxy looks like. `error` and `drop` draw from one number, so their
shares add up (error first); `lost` and `truncate` likewise (lost first).

Route names: the last path segment (`dequeue`, `heartbeat`, `addExecutionLogEntry`,
`updateExecutionLogEntry`, `markComplete`, `markErrored`, `markFailed`, …) or a group: `queue`
(everything under `/.executors/queue/`), `marks`, `logs`, `git` (`/.executors/git/`), `files`
(`/.executors/files/`), `*` (every path). The first matching rule applies.

Spec (`executor sandbox serve --faults SPEC`): JSON, an object or a list of objects with the
keys above plus `route` or `path`; or rules separated by `;`, each `key=value` pairs separated
by `,`, e.g. `route=queue,error=0.3,latency=2s;route=marks,lost=0.2`. `jobs` is a list of job
IDs (JSON) or IDs separated by `|` (`route=marks,latency=1s,jobs=3|7`); empty means every job.

Every request under a configured middleware is recorded in `faults.db` beside the store (table
`fault_audit`: path, route, job ID, the handler's status or NULL if it never ran, the fault), so
a test can count how many mark calls each job's handler really accepted.

Knows ASGI and SQL; nothing of the store or of the executor.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from executor.sandbox.compat import parse_duration

__all__ = [
    "AuditRow",
    "FaultMiddleware",
    "FaultRule",
    "FaultSpecError",
    "accepted_marks",
    "parse_faults",
    "read_audit",
]

AUDIT_FILE = "faults.db"
_MARKS = ("markComplete", "markErrored", "markFailed")
_LOGS = ("addExecutionLogEntry", "updateExecutionLogEntry")
_GROUPS: dict[str, Callable[[str, str], bool]] = {
    "*": lambda path, last: True,
    "queue": lambda path, last: path.startswith("/.executors/queue/"),
    "git": lambda path, last: path.startswith("/.executors/git/"),
    "files": lambda path, last: path.startswith("/.executors/files/"),
    "marks": lambda path, last: path.startswith("/.executors/queue/") and last in _MARKS,
    "logs": lambda path, last: path.startswith("/.executors/queue/") and last in _LOGS,
}
_SHARES = ("error", "drop", "lost", "truncate")


class FaultSpecError(ValueError):
    """A `--faults` spec that does not parse; the message says which part."""


@dataclass(frozen=True)
class FaultRule:
    """Which requests misbehave (`route` or `path`), and how (see the module docstring)."""

    route: str | None = None
    path: str | None = None
    error: float = 0.0
    status: int = 503
    retry_after: int = 0
    latency: float = 0.0
    hold: float = 0.0
    drop: float = 0.0
    lost: float = 0.0
    truncate: float = 0.0
    jobs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if (self.route is None) == (self.path is None):
            raise FaultSpecError("a fault rule needs exactly one of `route` or `path`")
        if self.path is not None:
            try:
                re.compile(self.path)
            except re.error as err:
                raise FaultSpecError(f"path {self.path!r}: {err}") from None
        for name in _SHARES:
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise FaultSpecError(f"{name}={share}: a share is between 0 and 1")
        if self.error + self.drop > 1.0 or self.lost + self.truncate > 1.0:
            raise FaultSpecError("error+drop and lost+truncate must each be at most 1")
        if not 500 <= self.status <= 599 and self.status != 429:
            raise FaultSpecError(f"status={self.status}: use a 5xx or 429")
        if self.latency < 0 or self.hold < 0 or self.retry_after < 0:
            raise FaultSpecError("latency, hold and retry_after must not be negative")

    def matches(self, path: str, job_id: int | None = None) -> bool:
        """Whether a request for `path` (with `job_id` from its header, if any) is picked."""
        if self.jobs and job_id not in self.jobs:
            return False
        last = path.rstrip("/").rsplit("/", 1)[-1]
        if self.path is not None:
            return re.search(self.path, path) is not None
        group = _GROUPS.get(self.route or "")
        return group(path, last) if group else last == self.route


def _rule(raw: dict[str, Any]) -> FaultRule:
    known = {f.name for f in fields(FaultRule)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise FaultSpecError(f"unknown fault key(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    try:
        for key, value in raw.items():
            if key in ("route", "path"):
                values[key] = str(value)
            elif key in ("status", "retry_after"):
                values[key] = int(value)
            elif key in ("latency", "hold"):
                values[key] = parse_duration(str(value))
            elif key == "jobs":
                items = value if isinstance(value, list) else str(value).split("|")
                values[key] = tuple(int(str(i).strip()) for i in items if str(i).strip())
            else:
                values[key] = float(value)
    except ValueError as err:
        raise FaultSpecError(f"{key}={value!r}: {err}") from None
    return FaultRule(**values)


def parse_faults(spec: str) -> tuple[FaultRule, ...]:
    """The rules of a `--faults` spec (JSON, or `k=v,k=v;k=v` rules); raises FaultSpecError."""
    text = spec.strip()
    if not text:
        return ()
    if text[0] in "[{":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise FaultSpecError(f"faults JSON: {err}") from None
        items = data if isinstance(data, list) else [data]
        if not all(isinstance(item, dict) for item in items):
            raise FaultSpecError("faults JSON must be an object or a list of objects")
        return tuple(_rule(item) for item in items)
    rules = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        raw: dict[str, Any] = {}
        for pair in filter(None, (p.strip() for p in part.split(","))):
            key, sep, value = pair.partition("=")
            if not sep:
                raise FaultSpecError(f"{pair!r} is not key=value")
            raw[key.strip()] = value.strip()
        rules.append(_rule(raw))
    return tuple(rules)


@dataclass(frozen=True)
class AuditRow:
    """One request seen by the middleware: `status` is None when the handler never ran; `at`
    is when it was recorded (Unix seconds), i.e. once the handler had answered; `executor` the
    caller's `X-Sourcegraph-Executor-Name` header (job-token calls carry it)."""

    path: str
    route: str
    job_id: int | None
    status: int | None
    fault: str
    at: float = 0.0
    executor: str = ""


class _Audit:
    """The `fault_audit` table, written from the event loop thread only."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS fault_audit (id INTEGER PRIMARY KEY, at REAL NOT NULL,"
            " path TEXT NOT NULL, route TEXT NOT NULL, job_id INTEGER, status INTEGER,"
            " fault TEXT NOT NULL, executor TEXT NOT NULL DEFAULT '')"
        )

    def record(self, scope: Scope, status: int | None, fault: str) -> None:
        path = scope["path"]
        route = path.rstrip("/").rsplit("/", 1)[-1]
        executor = _header(scope, b"x-sourcegraph-executor-name")
        self._conn.execute(
            "INSERT INTO fault_audit (at, path, route, job_id, status, fault, executor)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), path, route, _job_id(scope), status, fault, executor),
        )


def read_audit(data_dir: Path) -> list[AuditRow]:
    """Every request the middleware of the sandbox in `data_dir` recorded, oldest first."""
    with sqlite3.connect(data_dir / AUDIT_FILE) as conn:
        rows = conn.execute(
            "SELECT path, route, job_id, status, fault, at, executor FROM fault_audit ORDER BY id"
        ).fetchall()
    return [AuditRow(*row) for row in rows]


def accepted_marks(rows: list[AuditRow]) -> dict[int, int]:
    """Per job ID, how many mark calls its handler accepted (2xx): a job's state transitions
    to a final state. More than one means the job was run, or finished, twice."""
    counts: dict[int, int] = {}
    for row in rows:
        accepted = row.status is not None and 200 <= row.status < 300
        if row.route in _MARKS and row.job_id is not None and accepted:
            counts[row.job_id] = counts.get(row.job_id, 0) + 1
    return counts


def _header(scope: Scope, wanted: bytes) -> str:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return bytes(value).decode("latin-1")
    return ""


def _job_id(scope: Scope) -> int | None:
    try:
        return int(_header(scope, b"x-sourcegraph-job-id"))
    except ValueError:
        return None


_HANG_UP: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
}


class FaultMiddleware:
    """Wraps an ASGI app; see the module docstring for what each fault does."""

    def __init__(
        self,
        app: ASGIApp,
        rules: tuple[FaultRule, ...],
        audit_dir: Path | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.app = app
        self.rules = rules
        self._rng = rng or random.Random()
        self._audit = _Audit(audit_dir / AUDIT_FILE) if audit_dir is not None else None

    def _record(self, scope: Scope, status: int | None, fault: str) -> None:
        if self._audit is not None:
            self._audit.record(scope, status, fault)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        job_id = _job_id(scope)
        rule = next((r for r in self.rules if r.matches(scope["path"], job_id)), None)
        if rule is None:
            await self._passthrough(scope, receive, send)
            return
        if rule.latency:
            await asyncio.sleep(rule.latency)
        before, after = self._rng.random(), self._rng.random()
        if before < rule.error:
            self._record(scope, None, "error")
            body = b'{"error":"injected fault"}'
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            if rule.retry_after:
                headers.append((b"retry-after", str(rule.retry_after).encode()))
            await send({"type": "http.response.start", "status": rule.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if before < rule.error + rule.drop:
            self._record(scope, None, "drop")
            await send(_HANG_UP)  # and return: uvicorn closes the connection
            return
        if after >= rule.lost + rule.truncate:
            if rule.hold:
                await self._held(scope, receive, send, rule.hold)
            else:
                await self._passthrough(scope, receive, send)
            return
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, keep)
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        status = int(start["status"]) if start is not None else None
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        # A bodiless answer (204) cannot be cut short: it is lost instead.
        if after < rule.lost or start is None or status == 204 or not body:
            self._record(scope, status, "lost")
            await send(_HANG_UP)
            return
        self._record(scope, status, "truncate")
        headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )

    async def _held(self, scope: Scope, receive: Receive, send: Send, hold: float) -> None:
        """Run the handler, record it, then wait `hold` seconds before answering."""
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        status: int | None = None
        try:
            await self.app(scope, receive, keep)
            start = next((m for m in messages if m["type"] == "http.response.start"), None)
            status = int(start["status"]) if start is not None else None
        finally:
            self._record(scope, status, "hold")
        await asyncio.sleep(hold)
        for message in messages:
            await send(message)

    async def _passthrough(self, scope: Scope, receive: Receive, send: Send) -> None:
        status: int | None = None

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self._record(scope, status, "")
