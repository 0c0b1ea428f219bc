"""Line splitting for a child's stdout/stderr pipes, with bounded memory and lossy decoding.

`asyncio.StreamReader.readline` fails on lines longer than its buffer limit, and raising the limit
to the largest line we accept would let every pipe hold that much. Instead the pipe is read in
chunks and split here: a line longer than `MAX_LINE_BYTES` is emitted in pieces of that size, so a
step that prints a gigabyte without a newline costs at most one piece of memory.

Bytes that are not UTF-8 are decoded with U+FFFD replacement characters: a step may print
anything, and its log must still be text. This module knows nothing of Docker or jobs.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["MAX_LINE_BYTES", "OutputSink", "pump_lines"]

#: The longest line passed to a sink in one piece (100 MiB).
MAX_LINE_BYTES = 100 * 1024 * 1024

_CHUNK = 64 * 1024


class OutputSink(Protocol):
    """Receives a step's output, one line at a time, in arrival order."""

    def write(self, stream: str, line: str) -> None:
        """`stream` is "stdout" or "stderr"; `line` has no trailing newline."""


async def pump_lines(
    reader: asyncio.StreamReader,
    stream: str,
    sink: OutputSink,
    *,
    max_line: int = MAX_LINE_BYTES,
) -> None:
    """Read `reader` to EOF and hand every line to `sink.write(stream, line)`.

    A final line without a newline is still delivered. Runs until EOF; cancel it to stop early.
    """
    buf = bytearray()
    while chunk := await reader.read(_CHUNK):
        # Only the new bytes can hold a newline: the leftover had none.
        search_from = len(buf)
        buf += chunk
        start = 0
        while (newline := buf.find(b"\n", search_from)) != -1:
            _emit(sink, stream, buf, start, newline, max_line)
            start = search_from = newline + 1
        del buf[:start]
        if len(buf) > max_line:
            whole = len(buf) - len(buf) % max_line
            _emit(sink, stream, buf, 0, whole, max_line)
            del buf[:whole]
    if buf:
        _emit(sink, stream, buf, 0, len(buf), max_line)


def _emit(sink: OutputSink, stream: str, buf: bytearray, start: int, end: int, size: int) -> None:
    """Write `buf[start:end]` as one line, or as lines of `size` bytes when it is longer."""
    for piece in range(start, end, size) if end - start > size else (start,):
        data = bytes(buf[piece : min(piece + size, end)])
        sink.write(stream, data.decode("utf-8", errors="replace"))
