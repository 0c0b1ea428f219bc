"""The bounded text of one execution log entry: head, dropped middle, tail.

`BoundedOutput` keeps at most `max_bytes` (UTF-8) of an entry's output however much a step
prints: the first half of the budget fills with the head, the second half always holds the
latest lines (the tail), and what falls out of the tail in between is replaced by one marker
line per run of dropped lines: `stdout: … N bytes (M lines) omitted by the executor …`. Lines
that are JSON log events on stdout (`stdout: {"operation":…`) are kept when they fall out of the
tail, since the frontend parses them out of `out` (spec §8.7), but within a budget of their own
that is part of the entry's: at most `max_events` of them and half the tail's bytes (what they
take, the tail gives up), so one budget bounds the entry, events included. Events past that are
counted in the marker (`… K JSON events …`). A single line longer than the tail's budget, event
or not, is clipped to half of it, with a note of what was cut.

It works on blocks of whole lines (as they come off a pipe), not line by line: appending a
block, trimming the tail and counting what was dropped use C-speed `str` methods, so a step that
prints hundreds of megabytes costs a few calls per read, and memory stays at the budget plus one
block. The result is the same as feeding the block's lines one at a time.

It stores what it is given: prefixing and redaction happen before
(`executor.logstream.logger`). This module knows nothing of jobs, HTTP or Docker.
"""

from __future__ import annotations

import collections
import re
from typing import AnyStr

__all__ = ["MAX_EVENTS", "BoundedOutput", "is_json_event", "utf8_size"]

#: The most JSON events kept from the dropped middle of one entry.
MAX_EVENTS = 10_000

# What the frontend parses out of `out`: `ParseJSONLogsFromOutput` (spec §8.7).
_JSON_EVENT = re.compile(r'stdout: \{\s*"operation"\s*:')
_EVENT_START = "stdout: {"


def is_json_event(line: str) -> bool:
    """Whether `line` (one line, with or without its newline) is a JSON log event on stdout."""
    return _JSON_EVENT.match(line) is not None


def utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8 (`str.isascii` is O(1), so ASCII text costs nothing)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", errors="surrogatepass"))


class _Gap:
    """A run of dropped lines between the head and the tail."""

    __slots__ = ("events", "lines", "size")

    def __init__(self) -> None:
        self.size = 0
        self.lines = 0
        self.events = 0

    def marker(self) -> str:
        events = f", {self.events} JSON events" if self.events else ""
        return (
            f"stdout: … {self.size} bytes ({self.lines} lines{events}) omitted by the executor …\n"
        )


class BoundedOutput:
    """Accumulated output of one entry, bounded by `max_bytes` (plus markers), events included."""

    def __init__(self, max_bytes: int, *, max_events: int = MAX_EVENTS) -> None:
        self.head_budget = max_bytes // 2
        self.tail_budget = max(max_bytes - self.head_budget, 1)
        #: The longest line stored whole; longer ones keep their first `line_max` bytes.
        self.line_max = max(self.tail_budget // 2, 1)
        self.event_budget = self.tail_budget // 2
        self.max_events = max_events
        self._event_bytes = 0
        self._events = 0
        self._head: list[str] = []
        self._head_size = 0
        self._head_full = False
        self._middle: list[str | _Gap] = []
        self._tail: collections.deque[tuple[str, int]] = collections.deque()
        self._tail_size = 0

    @property
    def kept_bytes(self) -> int:
        """UTF-8 bytes of head and tail (markers and kept events not counted)."""
        return self._head_size + self._tail_size

    def append(self, text: str) -> None:
        """Add `text`: one or more whole lines, each ending in "\\n"."""
        if not text:
            return
        size = utf8_size(text)
        if not self._head_full:
            room = self.head_budget - self._head_size
            if size <= room:
                self._head.append(text)
                self._head_size += size
                return
            # The head takes the lines that fit; the first that does not closes it.
            head, text = _split_lines(text, room)
            if head:
                head_size = utf8_size(head)
                self._head.append(head)
                self._head_size += head_size
                size -= head_size
            self._head_full = True
        if size > self.tail_budget:
            text, size = self._clip_long_lines(text)
        self._tail.append((text, size))
        self._tail_size += size
        if self._tail_size > self.tail_budget - self._event_bytes:
            self._evict()

    def parts(self, extra: str = "") -> list[str]:
        """The whole entry as the pieces it is kept in (markers in place), then `extra`.

        Never joined here: a 16 MiB entry joined is a second 16 MiB string (32 MiB when one
        character in it, such as the marker's `…`, is not Latin-1), and an upload can send
        the pieces as they are. The pieces are immutable, so the list stays what it was while
        more output arrives.
        """
        parts = list(self._head)
        parts.extend(p.marker() if isinstance(p, _Gap) else p for p in self._middle)
        parts.extend(block for block, _ in self._tail)
        if extra:
            parts.append(extra)
        return parts

    def text(self, extra: str = "") -> str:
        """The whole entry as one string (markers in place), followed by `extra`."""
        return "".join(self.parts(extra))

    def _evict(self) -> None:
        """Drop the oldest tail lines until the tail fits (it always keeps its last line)."""
        excess = self._tail_size - (self.tail_budget - self._event_bytes)
        while excess > 0:
            block, size = self._tail[0]
            only = len(self._tail) == 1
            if size <= excess and not only:
                self._tail.popleft()
                self._tail_size -= size
                excess -= size
                excess += self._drop(block)
                continue
            # Whole lines from the front worth at least `excess` bytes; never the last line.
            dropped, rest = _split_lines(block, excess - 1, at_least=True, keep_last=only)
            if dropped:
                dropped_size = utf8_size(dropped)
                self._tail[0] = (rest, size - dropped_size)
                self._tail_size -= dropped_size
                excess += self._drop(dropped) - dropped_size
                if excess <= 0:
                    return
                continue
            return

    def _drop(self, text: str) -> int:
        """Move dropped lines out of the tail: JSON events to the middle while their budget
        lasts, the rest counted. Returns the bytes of events kept (the tail gives them up)."""
        start = search = 0
        kept = 0
        while (i := text.find(_EVENT_START, search)) != -1:
            end = text.find("\n", i) + 1
            if (i == 0 or text[i - 1] == "\n") and _JSON_EVENT.match(text, i, end):
                event = text[i:end]
                size = utf8_size(event)
                if self._events < self.max_events and self._event_bytes + size <= self.event_budget:
                    if i > start:
                        self._count(text[start:i])
                    self._middle.append(event)
                    self._events += 1
                    self._event_bytes += size
                    kept += size
                    start = end
                else:
                    self._count(text[start:end])
                    self._middle_gap().events += 1
                    start = end
            search = end
        if start < len(text):
            self._count(text[start:] if start else text)
        return kept

    def _middle_gap(self) -> _Gap:
        gap = self._middle[-1] if self._middle else None
        if not isinstance(gap, _Gap):
            gap = _Gap()
            self._middle.append(gap)
        return gap

    def _count(self, text: str) -> None:
        gap = self._middle_gap()
        gap.size += utf8_size(text)
        gap.lines += text.count("\n")

    def _clip_long_lines(self, text: str) -> tuple[str, int]:
        """Clip every line longer than the tail's budget (JSON events too) to `line_max`."""
        lines = [line + "\n" for line in text[:-1].split("\n")]
        for n, line in enumerate(lines):
            if utf8_size(line) > self.tail_budget:
                raw = line.encode("utf-8", errors="replace")
                keep = raw[: self.line_max].decode("utf-8", errors="ignore")
                dropped = len(raw) - len(keep.encode())
                lines[n] = f"{keep} … {dropped} bytes omitted by the executor …\n"
        text = "".join(lines)
        return text, utf8_size(text)


def _split_lines(
    text: str, nbytes: int, *, at_least: bool = False, keep_last: bool = False
) -> tuple[str, str]:
    """Split `text` (whole lines) after a line end, counting `nbytes` in UTF-8 bytes.

    By default the first part is as many whole lines as fit in `nbytes`; with `at_least`, it is
    the fewest whole lines ending at or after byte `nbytes`. With `keep_last` the last line
    always stays in the second part.
    """
    nbytes = max(nbytes, 0)
    if text.isascii():
        cut = _cut(text, "\n", nbytes, at_least, keep_last)
        return text[:cut], text[cut:]
    data = text.encode("utf-8", errors="surrogatepass")
    cut = _cut(data, b"\n", nbytes, at_least, keep_last)
    return (
        data[:cut].decode("utf-8", errors="surrogatepass"),
        data[cut:].decode("utf-8", errors="surrogatepass"),
    )


def _cut(data: AnyStr, newline: AnyStr, nbytes: int, at_least: bool, keep_last: bool) -> int:
    cut = data.find(newline, nbytes) + 1 if at_least else data.rfind(newline, 0, nbytes) + 1
    if keep_last:
        cut = min(cut, data.rfind(newline, 0, len(data) - 1) + 1)
    return cut
