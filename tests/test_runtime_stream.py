"""Pipe pumping in blocks (`pump_blocks`) and as lines (`pump_lines`): same lines, any chunking."""

from __future__ import annotations

import asyncio
import random

from executor.runtime.stream import BlockSink, pump, pump_blocks, pump_lines


class BlockList:
    def __init__(self) -> None:
        self.blocks: list[tuple[str, bytes]] = []

    def write_block(self, stream: str, data: bytes) -> None:
        self.blocks.append((stream, data))


class LineList:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, stream: str, line: str) -> None:
        self.lines.append(line)


_conforms: type[BlockSink] = BlockList


async def _feed(reader: asyncio.StreamReader, data: bytes, sizes: list[int]) -> None:
    at = 0
    for size in sizes:
        reader.feed_data(data[at : at + size])
        at += size
        await asyncio.sleep(0)  # let the pump read what is there
    if at < len(data):
        reader.feed_data(data[at:])
    reader.feed_eof()


def _blocks(data: bytes, sizes: list[int], max_line: int = 1 << 20) -> list[bytes]:
    async def go() -> list[bytes]:
        reader = asyncio.StreamReader()
        sink = BlockList()
        task = asyncio.create_task(pump_blocks(reader, "stdout", sink, max_line=max_line))
        await _feed(reader, data, sizes)
        await task
        return [block for _, block in sink.blocks]

    return asyncio.run(go())


def _lines(data: bytes, sizes: list[int], max_line: int = 1 << 20) -> list[str]:
    async def go() -> list[str]:
        reader = asyncio.StreamReader()
        sink = LineList()
        task = asyncio.create_task(pump_lines(reader, "stdout", sink, max_line=max_line))
        await _feed(reader, data, sizes)
        await task
        return sink.lines

    return asyncio.run(go())


def test_blocks_hold_whole_lines_and_the_last_line_gets_a_newline() -> None:
    blocks = _blocks(b"one\ntw" + b"o\nthree\n\nfour", [6, 2, 3])
    assert all(b.endswith(b"\n") for b in blocks)
    assert b"".join(blocks) == b"one\ntwo\nthree\n\nfour\n"
    assert blocks[0] == b"one\n"  # "tw" waited for the rest of its line


def test_blocks_cut_long_lines_like_lines_do() -> None:
    data = b"x" * 25 + b"\nok\n" + b"y" * 9
    assert b"".join(_blocks(data, [1] * 40, max_line=10)) == (
        b"x" * 10 + b"\n" + b"x" * 10 + b"\n" + b"x" * 5 + b"\nok\n" + b"y" * 9 + b"\n"
    )
    assert b"".join(_blocks(data, [len(data)], max_line=10)).split(b"\n")[:3] == [b"x" * 10] * 2 + [
        b"x" * 5
    ]


def test_one_call_per_read_not_per_line() -> None:
    data = b"0123456789abcdef\n" * 10000
    blocks = _blocks(data, [len(data) // 4] * 4)
    assert len(blocks) <= 5
    assert b"".join(blocks) == data


def _expected_lines(data: bytes, max_line: int) -> list[str]:
    """Split on newlines, cut every line into `max_line` pieces, decode each piece."""
    raws = data.split(b"\n")
    if raws[-1] == b"":
        raws.pop()
    out: list[str] = []
    for raw in raws:
        pieces = [raw[i : i + max_line] for i in range(0, len(raw), max_line)] or [b""]
        out.extend(p.decode("utf-8", errors="replace") for p in pieces)
    return out


def test_lines_and_blocks_for_any_chunking() -> None:
    rng = random.Random(7)
    pieces = [b"plain", b"", b"\xff\xfe not utf-8", "é€😀".encode(), b"z" * 300, b"x\r y"]
    for _ in range(100):
        data = b"\n".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        if rng.random() < 0.5:
            data += b"\n"
        sizes = [rng.randint(1, 400) for _ in range(rng.randint(0, 30))]
        expected = _expected_lines(data, 64)
        # Reads that cut a multi-byte character do not change the text.
        assert _lines(data, sizes, max_line=64) == expected
        text = b"".join(_blocks(data, sizes, max_line=64)).decode("utf-8", errors="replace")
        assert text == "".join(line + "\n" for line in expected)


def test_pump_picks_blocks_when_the_sink_takes_them() -> None:
    async def go() -> tuple[list[tuple[str, bytes]], list[str]]:
        blocks, lines = BlockList(), LineList()
        for sink in (blocks, lines):
            reader = asyncio.StreamReader()
            reader.feed_data(b"a\nb\n")
            reader.feed_eof()
            await pump(reader, "stderr", sink)
        return blocks.blocks, lines.lines

    blocks, lines = asyncio.run(go())
    assert blocks == [("stderr", b"a\nb\n")]
    assert lines == ["a", "b"]
