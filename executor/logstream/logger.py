"""Execution log streaming: one entry per command, redacted, throttled, bounded in memory.

Owns `ExecutionLogger` (the single choke point through which every byte of step output reaches
the frontend) and `Redactor`. Talks to a `LogSink` Protocol, which the API client implements;
knows no HTTP and no Docker (Sourcegraph: `cmd/executor/internal/worker/cmdlogger/logger.go`).

Behaviour (spec §5):
- `open()` creates an entry (start time now) and schedules its `add` in the background. Adds are
  sent strictly in open order: each entry's task waits for the previous entry's add.
- The add carries the entry's current state (as Sourcegraph's, whose single add goroutine may
  reach an entry late) and goes out when the entry closes or `add_delay` (default: `interval`)
  after it opened, whichever comes first. A short command (most git commands, `setup.fs.extras`,
  `teardown.fs`) is then one add with its output and exit code instead of an add and an update:
  half the requests, and one round trip less between the last entry and the mark. A running
  entry still reaches the frontend within one interval, as its later output does.
- After its add, each entry has a task that sends `update` at most once per `interval`, and only
  when `out`, `exitCode` or `durationMs` changed since the last successful send. Every update
  carries the full accumulated `out`. Closing the entry (`finalize`) wakes the task, which sends
  a final update at once if anything changed (so the final one may follow the previous update
  sooner than `interval`; all intermediate updates are at least `interval` apart).
- `flush()` waits for all adds and final updates and raises `LogFlushFailed` if an add or a final
  update failed. Failed intermediate updates are only logged, as in Sourcegraph.
- Output kept per entry is bounded by `max_bytes`: the head and the tail are kept, with a marker
  line counting what was dropped in between. Lines that are JSON log events on stdout
  (`stdout: {"operation":…`) are never dropped: the server parses them out of `out` (§8.7).
  The store is `executor.logstream.output.BoundedOutput`.

Cost, for steps that print a lot: a handle is a `BlockSink` (`executor.runtime.stream`), so the
runtime hands it whole blocks of lines as read from the pipe. Each block is decoded, prefixed,
redacted and stored with a handful of C-speed string operations, never line by line; lines are
redacted once, as they arrive, and never again, so an upload only joins the kept text (at most
`max_bytes`), whatever the step printed. Memory per entry is the budget, one block and the
`out` string of the update in flight.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import time
import urllib.parse
from collections.abc import Mapping
from typing import Protocol

import structlog

from executor.errors import LogFlushFailed
from executor.logstream.output import BoundedOutput
from executor.wire import ExecutionLogEntry, Job

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SECRET_REMOVED",
    "ExecutionLogger",
    "LogEntryHandle",
    "LogSink",
    "Redactor",
]

SECRET_REMOVED = "SECRET_REMOVED"
DEFAULT_MAX_BYTES = 16 * 1024 * 1024

# Lines of a multi-line secret shorter than this are not redacted on their own (see Redactor).
_MIN_SECRET_LINE = 8

# Beyond this many distinct keys one regex pass is cheaper than a substring search per key.
_MAX_NEEDLES = 24

_log = structlog.get_logger(__name__)


class LogSink(Protocol):
    """Where entries go: the queue API's add/update execution log entry endpoints."""

    async def add_execution_log_entry(self, job: Job, entry: ExecutionLogEntry) -> int:
        """Store a new entry for the job; return its entry ID."""
        ...

    async def update_execution_log_entry(
        self, job: Job, entry_id: int, entry: ExecutionLogEntry
    ) -> None:
        """Replace the entry `entry_id` of the job with `entry`."""
        ...


class Redactor:
    """Replace every secret by its replacement, in a single left-to-right pass.

    🚨 SECURITY: this is what keeps the executor token and the job's `redactedValues` out of
    everything uploaded. At any position the longest matching secret wins (one regex
    alternation sorted by length, descending; Python tries alternatives left to right), matches
    never overlap, and replaced text is not scanned again. Empty keys are skipped: they would
    match everywhere.

    A secret containing newlines (a PEM key, say) never appears verbatim in `out`, because every
    line there carries a `stdout: ` prefix. So each line of such a secret that is at least
    8 characters long is redacted on its own as well, unless it is itself an explicit key.
    """

    def __init__(self, replacements: Mapping[str, str]) -> None:
        table = {k: v for k, v in replacements.items() if k}
        # 🚨 SECURITY: a step that prints a secret base64- or URL-encoded leaks it just as
        # well, so those encodings of each secret are redacted too (standard base64 with and
        # without padding, and percent-encoding). Only the secret encoded on its own is caught:
        # base64 of a longer text shifts with the secret's offset and cannot be matched.
        for secret, replacement in list(table.items()):
            encoded = base64.b64encode(secret.encode()).decode()
            for form in (encoded, encoded.rstrip("="), urllib.parse.quote(secret, safe="")):
                if len(form) >= _MIN_SECRET_LINE:
                    table.setdefault(form, replacement)
        for secret, replacement in list(table.items()):
            if "\n" in secret:
                for part in secret.splitlines():
                    part = part.strip()
                    if len(part) >= _MIN_SECRET_LINE:
                        table.setdefault(part, replacement)
        self._table = table
        keys = sorted(table, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(k) for k in keys)) if keys else None
        # Most text holds no secret. Finding each key with `in` (a fast substring search) is
        # several times quicker than the regex over large blocks, so the regex runs only where
        # some key occurs. A key containing another key needs no search of its own.
        needles = [k for k in keys if not any(o != k and o in k for o in keys)]
        self._needles = needles if len(needles) <= _MAX_NEEDLES else None

    @classmethod
    def for_job(cls, job: Job, executor_token: str) -> Redactor:
        """The executor token becomes `SECRET_REMOVED`; the job's `redactedValues` override."""
        table = {executor_token: SECRET_REMOVED} if executor_token else {}
        table.update(job.redacted_values)
        return cls(table)

    def redact(self, text: str) -> str:
        """`text` with every secret replaced."""
        if self._pattern is None or not text:
            return text
        if self._needles is not None and not any(k in text for k in self._needles):
            return text
        return self._pattern.sub(lambda m: self._table[m.group(0)], text)


class LogEntryHandle:
    """One command's (or pseudo-step's) log entry, written to while the command runs."""

    def __init__(
        self, logger: ExecutionLogger, key: str, command: list[str] | None, max_bytes: int
    ) -> None:
        self.key = key
        self.command = list(command) if command is not None else None
        self.start_time = dt.datetime.now(dt.UTC)
        self._start_mono = time.monotonic()
        self._logger = logger
        self._output = BoundedOutput(max_bytes)
        self._pending = ""  # write_text's unfinished last line, raw until completed
        self.exit_code: int | None = None
        self.duration_ms: int | None = None
        self._version = 0  # bumped on every change; compared with what was last sent
        self._closed = asyncio.Event()
        self._added = asyncio.Event()
        self.error: BaseException | None = None

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def write(self, stream: str, line: str) -> None:
        """Append one line of a process's output as `<stream>: <line>\\n`.

        `line` carries no newline: the runtime splits output on newlines, so a secret inside
        one line of output is always whole when it arrives here, however the process's writes
        were chunked. Embedded newlines are split so every stored line keeps its prefix.
        """
        if self.closed:
            return
        prefix = f"{stream}: "
        self._append(prefix + line.replace("\n", "\n" + prefix) + "\n")

    def write_block(self, stream: str, data: bytes) -> None:
        """Append raw output, whole lines each ending in b"\\n", as `<stream>: <line>\\n`.

        The runtime's fast path (`executor.runtime.stream.BlockSink`): the same result as
        `write` for each line of `data` decoded with U+FFFD replacement, without per-line work.
        """
        if self.closed or not data:
            return
        text = data.decode("utf-8", errors="replace")
        prefix = f"{stream}: "
        self._append(prefix + text[:-1].replace("\n", "\n" + prefix) + "\n")

    def write_text(self, text: str) -> None:
        """Append free text (pseudo-steps: `Wrote … in …\\n`); a partial last line waits."""
        if self.closed or not text:
            return
        text = self._pending + text
        end = text.rfind("\n") + 1
        self._pending = text[end:]
        if end:
            self._append(text[:end])
        self._version += 1

    def _append(self, lines: str) -> None:
        # 🚨 SECURITY: redact whole lines before they are stored, so raw secrets never sit in
        # memory and stored text needs no second pass at upload. A secret never spans lines
        # in `out` (each line has its prefix; multi-line secrets are redacted line by line).
        self._output.append(self._logger.redactor.redact(lines))
        self._version += 1

    def finalize(self, exit_code: int) -> None:
        """Record the exit code and duration and close the entry (idempotent)."""
        if self.closed:
            return
        self.exit_code = exit_code
        self.duration_ms = int((time.monotonic() - self._start_mono) * 1000)
        self._version += 1
        self._closed.set()

    def _close(self) -> None:
        """Close without an exit code (the entry was abandoned, e.g. on cancellation)."""
        self._closed.set()

    @property
    def out(self) -> str:
        """The output as it would be uploaded now (redacted)."""
        # Stored lines are redacted already; only the unfinished line is redacted here.
        return self._output.text(self._logger.redactor.redact(self._pending))

    def _snapshot(self) -> tuple[ExecutionLogEntry, int]:
        # 🚨 SECURITY: everything uploaded is built here: the command is redacted now, the
        # output was redacted line by line as it was stored (see _append and out).
        redact = self._logger.redactor.redact
        entry = ExecutionLogEntry(
            key=self.key,
            command=[redact(c) for c in self.command] if self.command is not None else None,
            start_time=self.start_time,
            exit_code=self.exit_code,
            out=self.out,
            duration_ms=self.duration_ms,
        )
        return entry, self._version


class ExecutionLogger:
    """Streams a job's log entries to a `LogSink`; the only caller of add/update entry."""

    def __init__(
        self,
        sink: LogSink,
        job: Job,
        redactor: Redactor,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        interval: float = 1.0,
        add_delay: float | None = None,
    ) -> None:
        """`add_delay` (default `interval`) is how long an open entry's add may wait for it to
        close; 0 sends every add at once."""
        self._sink = sink
        self._job = job
        self.redactor = redactor
        self._max_bytes = max_bytes
        self._interval = interval
        self._add_delay = interval if add_delay is None else add_delay
        self._handles: list[LogEntryHandle] = []
        self._tasks: list[asyncio.Task[None]] = []

    def open(self, key: str, command: list[str] | None) -> LogEntryHandle:
        """Create an entry starting now; its add is sent in the background, in open order."""
        handle = LogEntryHandle(self, key, command, self._max_bytes)
        previous = self._handles[-1] if self._handles else None
        self._handles.append(handle)
        self._tasks.append(asyncio.get_running_loop().create_task(self._stream(handle, previous)))
        return handle

    async def _stream(self, handle: LogEntryHandle, previous: LogEntryHandle | None) -> None:
        try:
            if previous is not None:
                await previous._added.wait()
            await self._until_closed(handle, handle._start_mono + self._add_delay)
            entry, sent = handle._snapshot()
            try:
                entry_id = await self._sink.add_execution_log_entry(self._job, entry)
            except Exception as err:  # noqa: BLE001 - any sink failure is recorded for flush()
                handle.error = err
                self._warn("add", handle, err)
                return
            finally:
                handle._added.set()
            del entry  # an entry holds the whole `out`: do not keep it across intervals
            while True:
                await self._until_closed(handle, time.monotonic() + self._interval)
                # Nothing changes once closed: finalize() bumps the version before closing.
                final = handle.closed
                if handle._version != sent:
                    failure, sent = await self._update(handle, entry_id, sent)
                    if failure is not None and final:
                        handle.error = failure
                        return
                if final:
                    return
        except asyncio.CancelledError:
            handle.error = LogFlushFailed("log streaming was cancelled", job_id=self._job.id)
            raise
        finally:
            handle._added.set()

    @staticmethod
    async def _until_closed(handle: LogEntryHandle, deadline: float) -> None:
        """Wait until `handle` is closed or the monotonic `deadline` has passed."""
        remaining = deadline - time.monotonic()
        if handle.closed or remaining <= 0:
            return
        try:
            async with asyncio.timeout(remaining):
                await handle._closed.wait()
        except TimeoutError:
            pass

    async def _update(
        self, handle: LogEntryHandle, entry_id: int, sent: int
    ) -> tuple[Exception | None, int]:
        """Send the entry as it is now; return the error, if any, and the version now sent.

        The snapshot (and its `out`) is released on return, not held until the next update.
        """
        entry, version = handle._snapshot()
        try:
            await self._sink.update_execution_log_entry(self._job, entry_id, entry)
        except Exception as err:  # noqa: BLE001 - only the final update must succeed
            self._warn("update", handle, err)
            return err, sent
        return None, version

    def _warn(self, what: str, handle: LogEntryHandle, err: BaseException) -> None:
        _log.warning(
            f"failed to {what} execution log entry",
            job_id=self._job.id,
            step_key=handle.key,
            error=self.redactor.redact(f"{type(err).__name__}: {err}"),
        )

    async def flush(self) -> None:
        """Wait for every add and final update; raise `LogFlushFailed` if one failed.

        Entries still open are closed first (without an exit code) so flushing never hangs.
        Cancelling `flush()` does not cancel the uploads themselves.
        """
        for handle in self._handles:
            handle._close()
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            await asyncio.wait(tasks)
        failed = [h for h in self._handles if h.error is not None]
        if failed:
            detail = "; ".join(
                f"{h.key}: {self.redactor.redact(str(h.error) or type(h.error).__name__)}"
                for h in failed
            )
            raise LogFlushFailed(f"failed to upload execution logs: {detail}", job_id=self._job.id)
