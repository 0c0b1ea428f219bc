"""BoundedOutput: head, tail, markers and JSON events, whatever the blocks it is fed."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable

from executor.logstream.output import BoundedOutput, is_json_event, utf8_size


def _lines(rng: random.Random, n: int) -> list[str]:
    choices: list[Callable[[], str]] = [
        lambda: f"stdout: line {rng.randint(0, 10**6)} {'y' * rng.randint(0, 60)}\n",
        lambda: f"stderr: {'é€😀' * rng.randint(0, 20)}\n",
        lambda: "stdout: " + json.dumps({"operation": "STEP", "n": rng.randint(0, 9)}) + "\n",
        lambda: 'stdout: {  "operation" : 1}\n',
        lambda: "stderr: " + "x" * rng.randint(100, 3000) + "\n",
        lambda: "stdout: \n",
        lambda: 'stderr: {"operation": "not on stdout"}\n',
    ]
    return [rng.choice(choices)() for _ in range(n)]


def test_blocks_give_the_same_text_as_lines() -> None:
    rng = random.Random(3)
    for _ in range(300):
        budget = rng.choice([1, 40, 300, 1000, 5000, 1 << 20])
        lines = _lines(rng, rng.randint(0, 400))
        one_by_one, in_blocks = BoundedOutput(budget), BoundedOutput(budget)
        for line in lines:
            one_by_one.append(line)
        at = 0
        while at < len(lines):
            n = rng.randint(1, 50)
            in_blocks.append("".join(lines[at : at + n]))
            at += n
        assert in_blocks.text() == one_by_one.text()


def test_head_tail_marker_and_events() -> None:
    out = BoundedOutput(200)  # head 100 bytes, tail 100 bytes, of which events may take 50
    event = 'stdout: {"operation":"CACHE_AFTER_STEP_RESULT"}\n'
    lines = [f"stdout: line {i:03d}\n" for i in range(40)]  # 17 bytes each
    lines[20] = event
    out.append("".join(lines[:25]))
    out.append("".join(lines[25:]))
    text = out.text()
    kept = text.splitlines(keepends=True)
    assert kept[:5] == lines[:5]  # 85 bytes: a sixth line would not fit in 100
    # The kept event (49 bytes) is charged to the tail: 51 bytes are left, three lines.
    assert kept[-3:] == lines[-3:]
    assert event in kept
    markers = [line for line in kept if "omitted by the executor" in line]
    assert markers == [  # lines 5-19, then 21-36
        "stdout: … 255 bytes (15 lines) omitted by the executor …\n",
        "stdout: … 272 bytes (16 lines) omitted by the executor …\n",
    ]
    assert kept.index(event) == 6  # between the two gaps, in order
    assert out.kept_bytes == 5 * 17 + 3 * 17


def test_the_tail_keeps_its_last_line_even_when_it_is_too_big() -> None:
    out = BoundedOutput(200)  # head 100 bytes, tail 100 bytes
    event = "stdout: " + json.dumps({"operation": "X", "diff": "d" * 50}) + "\n"
    out.append("stdout: a\nstdout: b\nstdout: c\n" + "stdout: " + "h" * 80 + "\n" + event)
    assert out.text().endswith(event)  # longer than the head's room: the tail's, whole
    out.append("stdout: " + "z" * 150 + "\n")
    last = out.text().splitlines()[-1]
    assert last.startswith("stdout: zz") and len(last.encode()) < 100
    assert re.search(r"… \d+ bytes omitted by the executor …$", last)
    assert event not in out.text()  # 88 bytes: over the events' 50


def test_events_are_clipped_counted_and_bounded() -> None:
    out = BoundedOutput(1000, max_events=3)  # tail 500: events keep at most 250 bytes
    big = "stdout: " + json.dumps({"operation": "X", "diff": "d" * 2000}) + "\n"
    out.append(big)
    clipped = out.text().splitlines()[-1]
    assert clipped.startswith('stdout: {"operation"') and clipped.endswith("by the executor …")
    assert len(clipped.encode()) < 300
    small = [f'stdout: {{"operation":"E{i}"}}\n' for i in range(100)]
    out.append("".join(small) + "stdout: filler\n" * 100)
    text = out.text()
    assert [e for e in small if e in text] == small[:3]  # the first three, in order
    assert re.search(r"\(\d+ lines, 97 JSON events\) omitted", text)
    assert len(text.encode()) < 1000 + 3 * 100  # the budget plus markers


def test_non_ascii_cuts_on_whole_lines() -> None:
    out = BoundedOutput(60)
    lines = [f"stderr: {i} é€😀\n" for i in range(10)]  # 20 bytes each
    out.append("".join(lines))
    text = out.text()
    assert text.startswith(lines[0])  # the head holds one line (30 bytes of room)
    assert text.endswith(lines[-1])
    assert utf8_size(lines[0]) == 20
    assert "\ufffd" not in text


def test_is_json_event() -> None:
    assert is_json_event('stdout: {"operation":"A"}')
    assert is_json_event('stdout: { "operation" : 1}\n')
    assert not is_json_event('stderr: {"operation":"A"}')
    assert not is_json_event('stdout: x {"operation":"A"}')
