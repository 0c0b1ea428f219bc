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
    out = BoundedOutput(200)  # head 100 bytes, tail 100 bytes
    event = 'stdout: {"operation":"CACHE_AFTER_STEP_RESULT"}\n'
    lines = [f"stdout: line {i:03d}\n" for i in range(40)]  # 17 bytes each
    lines[20] = event
    out.append("".join(lines[:25]))
    out.append("".join(lines[25:]))
    text = out.text()
    kept = text.splitlines(keepends=True)
    assert kept[:5] == lines[:5]  # 85 bytes: a sixth line would not fit in 100
    assert kept[-5:] == lines[-5:]
    assert event in kept
    markers = [line for line in kept if "omitted by the executor" in line]
    assert markers == [  # lines 5-19, then 21-34
        "stdout: … 255 bytes (15 lines) omitted by the executor …\n",
        "stdout: … 238 bytes (14 lines) omitted by the executor …\n",
    ]
    assert kept.index(event) == 6  # between the two gaps, in order
    assert out.kept_bytes == 5 * 17 * 2


def test_the_tail_keeps_its_last_line_even_when_it_is_too_big() -> None:
    out = BoundedOutput(100)  # head 50 bytes, tail 50 bytes
    big_event = "stdout: " + json.dumps({"operation": "X", "diff": "d" * 100}) + "\n"
    out.append("stdout: a\nstdout: b\nstdout: c\n" + big_event)
    assert out.text() == "stdout: a\nstdout: b\nstdout: c\n" + big_event  # never clipped
    out.append("stdout: " + "z" * 100 + "\n")
    last = out.text().splitlines()[-1]
    assert last.startswith("stdout: zz")
    assert re.search(r"… \d+ bytes omitted by the executor …$", last)
    assert out.text() == "stdout: a\nstdout: b\nstdout: c\n" + big_event + last + "\n"


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
