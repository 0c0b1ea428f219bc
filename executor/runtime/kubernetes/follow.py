"""Following one container's output live (`pods/log?follow=true`) into its log entry.

Sourcegraph reads a container's log once, after it terminated; here it is followed from the
moment the container runs, so its lines reach the job's log entry while the step runs, through
the same `PieceSink` as a Docker step's pipes (`executor.runtime.stream`: whole lines as blocks,
a long unfinished line in pieces; the entry prefixes, redacts and bounds them). The API merges
stdout and stderr: every line is `stdout:` (as in Sourcegraph).

**A silent step is not a finished step** (a followed stream can be cut by an idle timeout or
an API server restart, and end while the container still runs): the end of a stream means
nothing by itself. Only the container's status (`terminated`) ends the following; otherwise the
log is opened again. Lines come with the kubelet's timestamps (`timestamps=true`); a reopened
stream starts a few seconds before the last line seen (`sinceSeconds`) and every line not later
than it is dropped, so nothing is lost or shown twice.

Memory: one read (at most `READ_CHUNK`) and at most `MAX_HOLD` of an unfinished line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from executor.runtime.stream import PieceSink

__all__ = ["MAX_HOLD", "TimestampedLines", "follow_container"]

MAX_HOLD = 1024 * 1024
_READ = 64 * 1024
_MAX_STAMP = 64
_SKEW = 5  # seconds of clock difference a reopened stream allows for

_log = structlog.get_logger(__name__)


def stamp_key(stamp: bytes) -> str:
    """`2026-12-03T14:00:00.1234Z` → a key that sorts as time (nine fraction digits)."""
    text = stamp.decode("ascii", errors="replace").rstrip("Z")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction[:9]:0<9}"


class TimestampedLines:
    """Splits `<timestamp> <line>\\n` output: lines go to `sink`, timestamps are remembered."""

    def __init__(self, sink: PieceSink, *, after: str | None = None) -> None:
        self._sink = sink
        self._after = after  #: lines stamped at or before this were delivered already
        self.last_key = after
        self._stamp = bytearray()
        self._in_line = False  # the stamp is read; content follows
        self._skip = False
        self._pending = bytearray()  # the line's content so far (not yet delivered)
        self._partial = False  # part of this line went out with write_partial

    def feed(self, data: bytes) -> None:
        out = bytearray()
        pos, size = 0, len(data)
        while pos < size:
            if not self._in_line:
                pos = self._read_stamp(data, pos, out)
                continue
            newline = data.find(b"\n", pos)
            end = size if newline < 0 else newline + 1
            piece = data[pos:end]
            pos = end
            if self._skip:
                if newline >= 0:
                    self._in_line = False
                continue
            if newline < 0:
                self._pending += piece
                if len(self._pending) > MAX_HOLD:
                    self._flush(out)
                    self._sink.write_partial("stdout", bytes(self._pending))
                    self._pending.clear()
                    self._partial = True
                continue
            if self._partial:
                self._flush(out)
                self._sink.write_block("stdout", bytes(self._pending) + piece)
                self._partial = False
            else:
                out += self._pending
                out += piece
            self._pending.clear()
            self._in_line = False
        self._flush(out)

    def _read_stamp(self, data: bytes, pos: int, out: bytearray) -> int:
        space = data.find(b" ", pos)
        newline = data.find(b"\n", pos)
        stop = min(i for i in (space, newline, len(data)) if i >= 0)
        self._stamp += data[pos:stop]
        if stop == len(data) and len(self._stamp) <= _MAX_STAMP:
            return stop  # the stamp continues in the next read
        stamp = bytes(self._stamp)
        self._stamp.clear()
        self._in_line = True
        if len(stamp) > _MAX_STAMP or stop == newline or not stamp[:1].isdigit():
            # Not a timestamp (cannot happen with timestamps=true): keep the text as output.
            self._skip = False
            self._pending += stamp
            return stop
        key = stamp_key(stamp)
        self._skip = self._after is not None and key <= self._after
        if not self._skip:
            self.last_key = key
        return stop + 1  # past the space

    def _flush(self, out: bytearray) -> None:
        if out:
            self._sink.write_block("stdout", bytes(out))
            out.clear()

    def close(self) -> None:
        """The stream ended: deliver an unfinished last line."""
        if self._in_line and not self._skip and (self._pending or self._partial):
            self._sink.write_block("stdout", bytes(self._pending) + b"\n")
        self._pending.clear()
        self._partial = False
        self._in_line = False
        self._stamp.clear()


def _since_seconds(last_key: str | None) -> int | None:
    if last_key is None:
        return None
    try:
        stamp = dt.datetime.fromisoformat(last_key[:19]).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    age = (dt.datetime.now(dt.UTC) - stamp).total_seconds()
    return max(1, math.ceil(age) + _SKEW)


async def follow_container(
    open_log: Callable[[int | None], Awaitable[Any]],
    sink: PieceSink,
    *,
    terminated: Callable[[], bool],
    changed: Callable[[float], Awaitable[None]],
) -> None:
    """Follow one container's log into `sink` until it has terminated and all is read.

    `open_log(since_seconds)` opens the followed stream (an aiohttp response);
    `terminated()` says whether the pod's status shows the container terminated;
    `changed(timeout)` waits for the next pod status (or the timeout).
    """
    last_key: str | None = None
    while True:
        try:
            response = await open_log(_since_seconds(last_key))
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - the API refuses a log until the container runs
            if terminated():
                _log.warning("cannot read a container's log", error=str(err)[:200])
                return
            await changed(0.5)
            continue
        lines = TimestampedLines(sink, after=last_key)
        try:
            while data := await response.content.read(_READ):
                lines.feed(data)
        except Exception as err:  # noqa: BLE001 - aiohttp's payload errors too: reopen
            _log.info("log stream cut; reopening", error=str(err)[:200])
        finally:
            lines.close()
            response.release()
        last_key = lines.last_key
        if terminated():
            return
        # The stream ended but the container was not (yet) seen terminated: wait for news.
        await changed(0.5)
