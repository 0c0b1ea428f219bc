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
- Output kept per entry is bounded by `max_bytes`, JSON events (`stdout: {"operation":…`, which
  the server parses out of `out`, §8.7) included: `executor.logstream.output.BoundedOutput`.

Cost, for steps that print a lot: a handle is a `PieceSink` (`executor.runtime.stream`), so the
runtime hands it whole blocks of lines as read from the pipe, and a line longer than a read in
pieces, of which only the head is kept. Each block is decoded, prefixed, redacted and stored
with a handful of C-speed string operations; lines are redacted once, as they are stored, so an
upload only joins the kept text. Memory per entry is the budget, one block, the lines held back
for redaction and the `out` string of the update in flight, whatever the step printed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping
from typing import Protocol

import structlog

from executor.errors import LogFlushFailed
from executor.logstream.output import BoundedOutput
from executor.redaction import SECRET_REMOVED, apply_spans
from executor.redaction import Redactor as BaseRedactor
from executor.wire import ExecutionLogEntry, Job

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SECRET_REMOVED",
    "ExecutionLogger",
    "LogEntryHandle",
    "LogSink",
    "Redactor",
]

DEFAULT_MAX_BYTES = 16 * 1024 * 1024

_LINE_PREFIXES = ("stdout: ", "stderr: ")

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


class Redactor(BaseRedactor):
    """The log's redactor: `executor.redaction.Redactor` joining lines across their
    `stdout: `/`stderr: ` prefixes, so a secret broken over lines is found too."""

    def __init__(self, replacements: Mapping[str, str]) -> None:
        super().__init__(replacements, line_prefixes=_LINE_PREFIXES)

    @classmethod
    def for_job(cls, job: Job, executor_token: str) -> Redactor:
        """The executor token becomes `SECRET_REMOVED`; the job's `redactedValues` override."""
        table = {executor_token: SECRET_REMOVED} if executor_token else {}
        table.update(job.redacted_values)
        return cls(table)


class LogEntryHandle:
    """One command's (or pseudo-step's) log entry, written to while the command runs.

    🚨 SECURITY: text is redacted before it is stored, so raw secrets never sit in memory past
    the few lines held back at the end (`_held`): a secret (or its base64 wrapped at 76
    columns) may continue in the next block, so the last lines wait, raw, until enough text
    follows them to see any secret they start whole (the redactor's longest key, with room
    for line prefixes). `out` redacts the held lines on their own, for uploads in between.
    """

    def __init__(
        self, logger: ExecutionLogger, key: str, command: list[str] | None, max_bytes: int
    ) -> None:
        self.key = key
        self.command = list(command) if command is not None else None
        self.start_time = dt.datetime.now(dt.UTC)
        self._start_mono = time.monotonic()
        self._logger = logger
        self._output = BoundedOutput(max_bytes)
        redactor = logger.redactor
        self._reserve = 10 * redactor.longest + 16 if redactor else 0
        self._held = ""  # raw whole lines at the end, not yet stored (see the class docstring)
        self._pending = ""  # write_text's unfinished last line, raw until completed
        # A line still arriving in pieces (`write_partial`): its first `line_max` bytes plus
        # enough to see a secret that starts before the cut, raw; the rest is only counted.
        self._line = bytearray()
        self._line_stream = "stdout"
        self._line_dropped = 0
        self._line_cap = self._output.line_max + 4 * redactor.longest + 16
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

        Embedded newlines are split so every stored line keeps its prefix.
        """
        if self.closed:
            return
        prefix = f"{stream}: "
        self._append(prefix + line.replace("\n", "\n" + prefix) + "\n")

    def write_block(self, stream: str, data: bytes) -> None:
        """Append raw output, whole lines each ending in b"\\n", as `<stream>: <line>\\n`.

        The runtime's fast path (`executor.runtime.stream.BlockSink`): the same result as
        `write` for each line of `data` decoded with U+FFFD replacement, without per-line work.
        If a line is arriving in pieces (`write_partial`), the first line of `data` ends it.
        """
        if self.closed or not data:
            return
        if self._line or self._line_dropped:
            end = data.find(b"\n") + 1
            self._add_piece(data[: end - 1])
            self._end_line()
            data = data[end:]
            if not data:
                return
        text = data.decode("utf-8", errors="replace")
        prefix = f"{stream}: "
        self._append(prefix + text[:-1].replace("\n", "\n" + prefix) + "\n")

    def write_partial(self, stream: str, data: bytes) -> None:
        """Append a piece of a line that has not ended yet (no newline in `data`).

        Memory stays bounded whatever the line's length: past `line_max` (and a little more,
        to redact a secret cut there) its bytes are only counted.
        """
        if self.closed or not data:
            return
        self._line_stream = stream
        self._add_piece(data)

    def _add_piece(self, data: bytes) -> None:
        room = self._line_cap - len(self._line)
        if room > 0:
            self._line += data[:room]
        self._line_dropped += max(len(data) - max(room, 0), 0)

    def _end_line(self) -> None:
        """Store the line `write_partial` was building, clipped to `line_max` bytes."""
        raw, dropped = bytes(self._line), self._line_dropped
        self._line.clear()
        self._line_dropped = 0
        prefix = f"{self._line_stream}: "
        limit = self._output.line_max - len(prefix)
        if len(raw) + dropped <= limit:
            self._append(prefix + raw.decode("utf-8", errors="replace") + "\n")
            return
        # 🚨 SECURITY: redact with what follows the cut in view, and keep a secret that
        # starts before the cut whole (replaced), so no half of one is stored.
        kept = raw[:limit].decode("utf-8", errors="ignore")
        text = prefix + raw.decode("utf-8", errors="ignore")
        cut = len(prefix) + len(kept)
        spans = self._logger.redactor.spans(text)
        before = [sp for sp in spans if sp[0] < cut]
        if before:
            cut = max(cut, before[-1][1])
        line = apply_spans(text, before, end=cut)
        omitted = len(raw) + dropped - len(text[len(prefix) : cut].encode("utf-8"))
        self._append(f"{line} … {omitted} bytes omitted by the executor …\n")

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

    def _append(self, lines: str, *, final: bool = False) -> None:
        # 🚨 SECURITY: whole lines are redacted before they are stored (see the class
        # docstring); stored text needs no second pass at upload.
        window = self._held + lines if self._held else lines
        self._version += 1
        if not window:
            return
        redactor = self._logger.redactor
        spans = redactor.spans(window)
        cut = len(window)
        if self._reserve and not final:
            cut = window.rfind("\n", 0, max(len(window) - self._reserve, 0)) + 1
            for start, stop, _ in reversed(spans):  # never cut through a secret
                if stop <= cut:
                    break
                if start < cut:
                    cut = window.rfind("\n", 0, start) + 1
        if cut:
            self._output.append(apply_spans(window, [sp for sp in spans if sp[1] <= cut], cut))
        self._held = window[cut:]

    def _flush(self) -> None:
        """Store everything held back (the entry is closing)."""
        if self._line or self._line_dropped:
            self._end_line()
        self._append("", final=True)

    def finalize(self, exit_code: int) -> None:
        """Record the exit code and duration and close the entry (idempotent)."""
        if self.closed:
            return
        self._flush()
        self.exit_code = exit_code
        self.duration_ms = int((time.monotonic() - self._start_mono) * 1000)
        self._version += 1
        self._closed.set()

    def _close(self) -> None:
        """Close without an exit code (the entry was abandoned, e.g. on cancellation)."""
        if not self.closed:
            self._flush()
        self._closed.set()

    @property
    def out(self) -> str:
        """The output as it would be uploaded now (redacted)."""
        # Stored lines are redacted already; held lines and the unfinished one are redacted now.
        return self._output.text(self._logger.redactor.redact(self._held + self._pending))

    def _snapshot(self) -> tuple[ExecutionLogEntry, int]:
        # 🚨 SECURITY: everything uploaded is built here: the command is redacted now, the
        # output was redacted as it was stored (see _append and out).
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

    def close_open(self, exit_code: int) -> None:
        """Finalize every entry still open with `exit_code` (the job failed under it)."""
        for handle in self._handles:
            if not handle.closed:
                handle.finalize(exit_code)

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
