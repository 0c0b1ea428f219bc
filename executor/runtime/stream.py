"""Line splitting for a child's stdout/stderr pipes, with bounded memory and lossy decoding.

`asyncio.StreamReader.readline` fails on lines longer than its buffer limit, and raising the limit
to the largest line we accept would let every pipe hold that much. Instead the pipe is read in
chunks and split here: a line longer than `MAX_LINE_BYTES` is emitted in pieces of that size, so a
step that prints a gigabyte without a newline costs at most one piece of memory.

Three kinds of sink. An `OutputSink` gets one decoded line at a time. A `BlockSink` gets raw
blocks of whole lines (each ending in a newline) as they come off the pipe: a step printing
hundreds of megabytes then costs one call per read instead of one per line, and the sink can do
its per-line work (prefixing, redaction, counting) with C-speed `bytes`/`str` methods over the
block. Both see exactly the same lines: `pump_lines` is `pump_blocks` split into lines.

A `PieceSink` (the execution log) also takes the pieces of a line that has not ended yet
(`pump_pieces`): no line is cut with a newline that the step never printed, the pump holds at
most `READ_CHUNK` of an unfinished line, and the sink decides what to keep of a long line (its
head) while the rest is only counted, so a line of any length costs bounded memory on both
sides, and a secret in it is never split in two stored lines.

Bytes that are not UTF-8 are decoded with U+FFFD replacement characters: a step may print
anything, and its log must still be text. Decoding a block at once gives the same text as
decoding its lines one by one, because a newline can never be part of a multi-byte sequence.
This module knows nothing of Docker or jobs.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

__all__ = [
    "MAX_LINE_BYTES",
    "READ_CHUNK",
    "BlockSink",
    "OutputSink",
    "PieceSink",
    "pump",
    "pump_blocks",
    "pump_lines",
    "pump_pieces",
]

#: The longest line passed to a sink in one piece (100 MiB).
MAX_LINE_BYTES = 100 * 1024 * 1024

#: The most read from a pipe at once (what is there, up to this).
READ_CHUNK = 1024 * 1024


class OutputSink(Protocol):
    """Receives a step's output, one line at a time, in arrival order."""

    def write(self, stream: str, line: str) -> None:
        """`stream` is "stdout" or "stderr"; `line` has no trailing newline."""


@runtime_checkable
class BlockSink(Protocol):
    """Receives a step's output as raw blocks of whole lines, in arrival order."""

    def write_block(self, stream: str, data: bytes) -> None:
        """`data` is one or more lines, each ending in b"\\n", not yet decoded.

        A line the step did not end (the last one before EOF, or a piece of a line cut at
        `MAX_LINE_BYTES`) arrives with a newline added, as `OutputSink` would see it.
        """


@runtime_checkable
class PieceSink(BlockSink, Protocol):
    """A `BlockSink` that also receives the pieces of a line still arriving."""

    def write_partial(self, stream: str, data: bytes) -> None:
        """`data` (no newline) continues the current unfinished line; the first line of the
        next `write_block` ends it (at EOF, a block of just the rest and b"\\n")."""


async def pump(
    reader: asyncio.StreamReader, stream: str, sink: OutputSink | BlockSink | PieceSink
) -> None:
    """Read `reader` to EOF into `sink`: with pieces, in blocks, or line by line."""
    if isinstance(sink, PieceSink):
        await pump_pieces(reader, stream, sink)
    elif isinstance(sink, BlockSink):
        await pump_blocks(reader, stream, sink)
    else:
        await pump_lines(reader, stream, sink)


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
    await pump_blocks(reader, stream, _LineSplitter(sink), max_line=max_line)


async def pump_blocks(
    reader: asyncio.StreamReader,
    stream: str,
    sink: BlockSink,
    *,
    max_line: int = MAX_LINE_BYTES,
    chunk: int = READ_CHUNK,
) -> None:
    """Read `reader` to EOF and hand its whole lines to `sink.write_block(stream, data)`.

    Holds back only the unfinished last line (at most `max_line` bytes). Runs until EOF; cancel
    it to stop early.
    """
    buf = bytearray()  # the unfinished last line; never holds a newline
    while data := await reader.read(chunk):
        end = data.rfind(b"\n") + 1
        if end:
            block = _whole_lines(buf, data, end)
            if len(block) > max_line:  # only then can a line in it be too long
                block = _cut_long_lines(block, max_line)
            sink.write_block(stream, block)
        buf += data[end:] if end else data
        if len(buf) > max_line:
            whole = len(buf) - len(buf) % max_line
            sink.write_block(stream, _pieces(bytes(buf[:whole]), max_line))
            del buf[:whole]
    if buf:
        sink.write_block(stream, _pieces(bytes(buf), max_line))


def _whole_lines(buf: bytearray, data: bytes, end: int) -> bytes:
    """The whole lines that the held-back `buf` and `data[:end]` make (`end` > 0: just past
    `data`'s last newline); empties `buf`. Without a held-back part, `data` is not copied."""
    if not buf:
        return data if end == len(data) else data[:end]
    buf += data[:end]
    block = bytes(buf)
    buf.clear()
    return block


async def pump_pieces(
    reader: asyncio.StreamReader,
    stream: str,
    sink: PieceSink,
    *,
    chunk: int = READ_CHUNK,
    max_hold: int = READ_CHUNK,
) -> None:
    """Read `reader` to EOF into `sink`: whole lines as blocks, and an unfinished line longer
    than `max_hold` bytes as pieces (`write_partial`) as it arrives."""
    buf = bytearray()  # the unfinished last line (or its latest part); never holds a newline
    partial = False  # part of the unfinished line went out as pieces already
    while data := await reader.read(chunk):
        end = data.rfind(b"\n") + 1
        if end:
            block = _whole_lines(buf, data, end)
            sink.write_block(stream, block)
            partial = False
        buf += data[end:] if end else data
        if len(buf) > max_hold:
            sink.write_partial(stream, bytes(buf))
            buf.clear()
            partial = True
    if buf or partial:
        sink.write_block(stream, bytes(buf) + b"\n")


def _pieces(line: bytes, size: int) -> bytes:
    """One line without its newline, as lines of at most `size` bytes, each ending in b"\\n"."""
    if len(line) <= size:
        return line + b"\n"
    return b"".join(line[i : i + size] + b"\n" for i in range(0, len(line), size))


def _cut_long_lines(block: bytes, size: int) -> bytes:
    """`block` (whole lines) with every line longer than `size` cut into lines of `size`."""
    lines = block[:-1].split(b"\n")
    return b"".join(_pieces(line, size) for line in lines)


class _LineSplitter:
    """Adapts an `OutputSink` to blocks: decodes a block and writes its lines one by one."""

    def __init__(self, sink: OutputSink) -> None:
        self._sink = sink

    def write_block(self, stream: str, data: bytes) -> None:
        write = self._sink.write
        for line in data[:-1].decode("utf-8", errors="replace").split("\n"):
            write(stream, line)
