"""ExecutionLogger and Redactor against an in-memory LogSink that records every call."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from executor.errors import LogFlushFailed
from executor.logstream.logger import (
    JOIN_MAX,
    SECRET_REMOVED,
    ExecutionLogger,
    LogSink,
    Redactor,
)
from executor.runtime.stream import pump
from executor.wire import ExecutionLogEntry, Job

TOKEN = "exec-token-0123456789"


@dataclass
class Call:
    kind: str  # "add" or "update"
    entry_id: int
    entry: ExecutionLogEntry
    at: float


@dataclass
class RecordingSink:
    """A real LogSink: stores entries like the frontend does (1-based IDs), records calls."""

    calls: list[Call] = field(default_factory=list)
    entries: dict[int, ExecutionLogEntry] = field(default_factory=dict)
    add_delay: Callable[[ExecutionLogEntry], float] = lambda e: 0.0
    fail_add: Callable[[ExecutionLogEntry], bool] = lambda e: False
    fail_update: Callable[[ExecutionLogEntry], bool] = lambda e: False

    async def add_execution_log_entry(self, job: Job, entry: ExecutionLogEntry) -> int:
        await asyncio.sleep(self.add_delay(entry))
        if self.fail_add(entry):
            raise RuntimeError("add refused")
        entry_id = len(self.entries) + 1
        self.entries[entry_id] = entry
        self.calls.append(Call("add", entry_id, entry, time.monotonic()))
        return entry_id

    async def update_execution_log_entry(
        self, job: Job, entry_id: int, entry: ExecutionLogEntry
    ) -> None:
        await asyncio.sleep(0)
        if self.fail_update(entry):
            raise RuntimeError(f"update refused (contains {TOKEN})")
        self.entries[entry_id] = entry
        self.calls.append(Call("update", entry_id, entry, time.monotonic()))

    def updates(self, entry_id: int) -> list[Call]:
        return [c for c in self.calls if c.kind == "update" and c.entry_id == entry_id]


_sink_conforms: type[LogSink] = RecordingSink


def make_job(**redacted: str) -> Job:
    return Job(id=42, token="jobtoken", redactedValues=redacted or None)


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro_fn())  # type: ignore[arg-type]


def new_logger(
    sink: RecordingSink, job: Job | None = None, *, max_bytes: int = 1 << 20, interval: float = 0.2
) -> ExecutionLogger:
    job = job or make_job()
    return ExecutionLogger(
        sink, job, Redactor.for_job(job, TOKEN), max_bytes=max_bytes, interval=interval
    )


# --- Redactor -------------------------------------------------------------------------------


def test_redactor_longest_match_first_single_pass_and_empty_key() -> None:
    r = Redactor({"abc": "X", "abcdef": "LONG", "": "EMPTY", "X": "never-rescanned"})
    assert r.redact("abcdef abc abcde") == "LONG X Xde"
    assert Redactor({}).redact("abc") == "abc"


def test_redactor_for_job_executor_token_and_job_override() -> None:
    job = make_job(
        **{"hunter2": "${{ secrets.PW }}", f"token-executor {TOKEN}": "token-executor R"}
    )
    r = Redactor.for_job(job, TOKEN)
    assert r.redact(f"a {TOKEN} b hunter2") == f"a {SECRET_REMOVED} b ${{{{ secrets.PW }}}}"
    assert r.redact(f"Authorization: token-executor {TOKEN}") == "Authorization: token-executor R"
    overriding = Redactor.for_job(make_job(**{TOKEN: "MINE"}), TOKEN)
    assert overriding.redact(TOKEN) == "MINE"


def test_redactor_multiline_secret_lines() -> None:
    key = "-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\nEEEEFFFFGGGG\n-----END KEY-----"
    r = Redactor({key: "KEY"})
    out = "stdout: -----BEGIN KEY-----\nstdout: AAAABBBBCCCCDDDD\nstdout: EEEEFFFFGGGG\n"
    redacted = r.redact(out)
    assert "AAAABBBB" not in redacted and "EEEEFFFF" not in redacted
    assert r.redact(key) == "KEY"


# --- ExecutionLogger --------------------------------------------------------------------------


def test_adds_in_open_order_and_final_flush() -> None:
    async def main() -> None:
        # The first add is slow: later entries must still be added after it.
        sink = RecordingSink(add_delay=lambda e: 0.2 if e.key == "a" else 0.0)
        logger = new_logger(sink)
        handles = [logger.open(k, ["echo", k]) for k in ("a", "b", "c")]
        for h in handles:
            h.write("stdout", f"hello {h.key}")
            h.finalize(0)
        await logger.flush()
        adds = [c for c in sink.calls if c.kind == "add"]
        assert [c.entry.key for c in adds] == ["a", "b", "c"]
        assert [c.entry_id for c in adds] == [1, 2, 3]
        for i, key in enumerate(["a", "b", "c"], start=1):
            stored = sink.entries[i]
            assert stored.exit_code == 0
            assert stored.duration_ms is not None and stored.duration_ms >= 0
            assert stored.out == f"stdout: hello {key}\n"
            assert stored.command == ["echo", key]
        wire = sink.entries[1].to_wire()
        assert list(wire) == ["key", "command", "startTime", "exitCode", "out", "durationMs"]

    run(main)


def test_updates_throttled_and_only_on_change() -> None:
    interval = 0.2

    async def main() -> None:
        sink = RecordingSink()
        logger = new_logger(sink, interval=interval)
        h = logger.open("step.docker.0", ["sh"])
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < 1.0:
            h.write("stdout" if n % 2 == 0 else "stderr", f"line {n}")
            n += 1
            await asyncio.sleep(0.005)
        updates_while_busy = len(sink.updates(1))
        # The last lines go out within one interval; after that nothing changes, nothing is sent.
        await asyncio.sleep(1.5 * interval)
        settled = len(sink.updates(1))
        assert settled <= updates_while_busy + 1
        await asyncio.sleep(4 * interval)
        assert len(sink.updates(1)) == settled
        h.finalize(3)
        await logger.flush()
        updates = sink.updates(1)
        assert 3 <= updates_while_busy <= int(1.0 / interval) + 1
        gaps = [b.at - a.at for a, b in itertools.pairwise(updates[:-1])]
        assert all(g >= interval * 0.9 for g in gaps), gaps
        final = updates[-1].entry
        assert final.exit_code == 3
        expected = "".join(f"{'stdout' if i % 2 == 0 else 'stderr'}: line {i}\n" for i in range(n))
        assert final.out == expected
        # Every update carries the whole output so far, not a delta.
        assert all(expected.startswith(u.entry.out) for u in updates)

    run(main)


def test_no_update_when_unchanged_after_add() -> None:
    async def main() -> None:
        sink = RecordingSink()
        logger = new_logger(sink, interval=0.05)
        h = logger.open("setup.fs.extras", None)
        h.write_text("Wrote /x in 1ms\n")
        h.finalize(0)  # before the add ran: the add carries the final state
        await asyncio.sleep(0.3)
        await logger.flush()
        assert [c.kind for c in sink.calls] == ["add"]
        assert sink.entries[1].exit_code == 0 and sink.entries[1].command is None

        idle = logger.open("idle", ["sleep"])
        await asyncio.sleep(0.3)
        assert sink.updates(2) == []
        idle.finalize(0)
        await logger.flush()
        assert len(sink.updates(2)) == 1

    run(main)


def test_final_update_failure_raises_log_flush_failed_redacted() -> None:
    async def main() -> None:
        sink = RecordingSink(fail_update=lambda e: e.exit_code is not None)
        logger = new_logger(sink, interval=0.05)
        h = logger.open("step.docker.0", ["sh"])
        h.write("stdout", "x")
        await asyncio.sleep(0.2)  # an intermediate update succeeds
        h.finalize(0)
        with pytest.raises(LogFlushFailed) as info:
            await logger.flush()
        assert "step.docker.0" in str(info.value)
        assert TOKEN not in str(info.value)
        assert info.value.job_id == 42

    run(main)


def test_add_failure_raises_and_intermediate_failure_does_not() -> None:
    async def main() -> None:
        sink = RecordingSink(fail_add=lambda e: e.key == "bad")
        logger = new_logger(sink)
        logger.open("bad", None).finalize(0)
        logger.open("good", None).finalize(0)
        with pytest.raises(LogFlushFailed, match="bad"):
            await logger.flush()
        assert [c.entry.key for c in sink.calls] == ["good"]

        sink2 = RecordingSink(fail_update=lambda e: e.exit_code is None)
        logger2 = new_logger(sink2, interval=0.05)
        h = logger2.open("k", None)
        h.write("stdout", "x")
        await asyncio.sleep(0.2)
        h.finalize(0)
        await logger2.flush()  # only intermediate updates failed
        assert sink2.entries[1].exit_code == 0

    run(main)


def test_flush_closes_abandoned_entries() -> None:
    async def main() -> None:
        sink = RecordingSink()
        logger = new_logger(sink, interval=10)
        h = logger.open("step.docker.0", ["sh"])
        h.write("stdout", "partial")
        await asyncio.wait_for(logger.flush(), 2)
        assert sink.entries[1].out == "stdout: partial\n"
        assert sink.entries[1].exit_code is None

    run(main)


def test_redaction_of_command_and_output_including_split_writes() -> None:
    secret = "s3cr3t-value"
    job = make_job(**{secret: "${{ secrets.S }}", secret + "-longer": "LONG"})

    async def main() -> None:
        sink = RecordingSink()
        logger = new_logger(sink, job, interval=0.05)
        h = logger.open("step.docker.0", ["docker", "run", "-e", f"S={secret}", f"-t={TOKEN}"])
        for i in range(200):
            h.write("stdout", f"{i} {secret} {secret}-longer {TOKEN}")
        # write_text chunks may split a secret: the fragment is redacted once completed.
        h.write_text(f"Wrote {secret[:4]}")
        await asyncio.sleep(0.15)
        h.write_text(f"{secret[4:]} in 1ms\n")
        h.finalize(0)
        await logger.flush()
        for call in sink.calls:
            blob = json.dumps(call.entry.to_wire())
            assert secret not in blob.replace(secret + "-longer", "")
            assert secret not in blob and TOKEN not in blob
        final = sink.entries[1]
        assert final.command == ["docker", "run", "-e", "S=${{ secrets.S }}", "-t=SECRET_REMOVED"]
        assert final.out.count("stdout: 7 ${{ secrets.S }} LONG SECRET_REMOVED\n") == 1
        assert final.out.endswith("Wrote ${{ secrets.S }} in 1ms\n")

    run(main)


def test_memory_bounded_head_tail_marker_and_json_events_kept() -> None:
    max_bytes = 4000

    async def main() -> None:
        sink = RecordingSink()
        logger = new_logger(sink, max_bytes=max_bytes, interval=0.05)
        h = logger.open("step.docker.step.0.post", ["sh"])
        events = []
        total = 20000
        for i in range(total):
            if i % 2500 == 1234:
                ev = json.dumps({"operation": "CACHE_AFTER_STEP_RESULT", "n": i})
                events.append(f"stdout: {ev}\n")
                h.write("stdout", ev)
            else:
                h.write("stdout", f"line {i:05d} " + "x" * 20)
        h.write("stdout", "y" * 100000)  # a single huge line is clipped, not kept whole
        h.finalize(0)
        await logger.flush()
        out = sink.entries[1].out
        lines = out.splitlines(keepends=True)
        assert lines[0] == "stdout: line 00000 " + "x" * 20 + "\n"
        assert lines[-1].startswith("stdout: yyyy") and "bytes omitted by the executor" in lines[-1]
        # Every JSON event survives, in order.
        kept_events = [ln for ln in lines if ln.startswith('stdout: {"operation"')]
        assert kept_events == events
        markers = [ln for ln in lines if "omitted by the executor …" in ln and "lines)" in ln]
        assert markers
        counts = [re.search(r"\((\d+) lines\)", m) for m in markers]
        dropped_lines = sum(int(c.group(1)) for c in counts if c)
        plain_kept = [ln for ln in lines if ln.startswith("stdout: line ")]
        assert len(plain_kept) + dropped_lines == total - len(events)
        non_event_size = sum(len(ln.encode()) for ln in lines if ln not in events)
        assert non_event_size <= max_bytes + 200 * len(markers)

    run(main)


def test_redactor_skips_text_without_secrets_but_keeps_longest_match() -> None:
    r = Redactor({"abc": "A", "xabcx": "B", "hunter2hunter2": "H"})
    text = "nothing to see " * 1000
    assert r.redact(text) is text  # no secret: the text is not even copied
    assert r.redact("xabcx abc hunter2hunter2") == "B A H"


def test_write_block_equals_write_per_line() -> None:
    secret = "s3cr3t-value"
    job = make_job(**{secret: "${{ secrets.S }}"})
    raw = (
        b"plain\n\xff\xfe not utf-8\n"
        + "é€😀\n".encode()
        + f"a {secret} b {TOKEN}\n".encode()
        + b'{"operation":"X"}\n\n'
    )

    async def main() -> tuple[str, str]:
        outs = []
        for by_block in (True, False):
            logger = new_logger(RecordingSink(), job, max_bytes=120)
            h = logger.open("k", None)
            if by_block:
                h.write_block("stdout", raw)
                h.write_block("stderr", b"last\n")
            else:
                for line in raw[:-1].decode("utf-8", errors="replace").split("\n"):
                    h.write("stdout", line)
                h.write("stderr", "last")
            h.finalize(0)  # the last lines are held back until then (a secret may go on)
            outs.append(h.out)
            await logger.flush()
        return outs[0], outs[1]

    by_block, by_line = asyncio.run(main())
    assert by_block == by_line
    assert secret not in by_block and TOKEN not in by_block
    assert by_block.startswith("stdout: plain\nstdout: \ufffd\ufffd not utf-8\n")
    assert "omitted by the executor" in by_block
    assert 'stdout: {"operation":"X"}\n' in by_block  # a JSON event survives the cap


def test_memory_stays_bounded_whatever_the_output_size() -> None:
    """A step printing 32 MiB through the runtime's block pump, with a 1 MiB cap.

    Traced memory at its peak is the kept output (1 MiB), what the tail evicted while an
    update held its pieces, and a few blocks; it does not grow with what the step prints.
    (Before blocks, it was ~6.4 MiB for the same run; with the update's `out` joined, a
    2-byte-per-character string because of the marker's `…`, ~3.3 MiB.)
    """
    cap = 1 << 20
    chunk = (b"0123456789abcdef" * 3 + b"x" * 15 + b"\n") * 1000  # 64-byte lines, 64 KB reads

    class SizeSink(RecordingSink):
        longest = 0
        marked = False

        async def add_execution_log_entry(self, job: Job, entry: ExecutionLogEntry) -> int:
            # The add may carry output already (it waits up to an interval): keep none of it.
            self.longest = max(self.longest, sum(map(len, entry.output_parts)))
            await asyncio.sleep(0)
            return 1

        async def update_execution_log_entry(
            self, job: Job, entry_id: int, entry: ExecutionLogEntry
        ) -> None:
            # Keeps no entry and joins nothing: only what the test checks.
            parts = entry.output_parts
            self.longest = max(self.longest, sum(map(len, parts)))
            self.marked = any("omitted by the executor" in p for p in parts)
            empty = ExecutionLogEntry(key=entry.key, start_time=entry.start_time)
            self.calls.append(Call("update", entry_id, empty, 0.0))
            await asyncio.sleep(0)

    async def run_step(mib: int) -> tuple[int, int]:
        sink = SizeSink()
        logger = new_logger(sink, max_bytes=cap, interval=0.005)
        handle = logger.open("step.docker.0", ["sh"])
        reader = asyncio.StreamReader()
        pumping = asyncio.create_task(pump(reader, "stdout", handle))
        tracemalloc.start()
        try:
            for _ in range(mib * 2**20 // len(chunk)):
                reader.feed_data(chunk)
                await asyncio.sleep(0)  # the pump reads it, as from a pipe
            reader.feed_eof()
            await pumping
            handle.finalize(0)
            await logger.flush()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert sink.marked
        # head + marker + tail, and while the step runs the few lines held back for redaction
        assert cap - 200 <= sink.longest <= cap + 200 + 2048
        return peak, len(sink.updates(1))

    small, _ = asyncio.run(run_step(4))
    large, updates = asyncio.run(run_step(32))
    assert updates >= 3  # updates streamed while the step ran
    assert large < 2 * cap, f"peak {large / 2**20:.1f} MiB for a 1 MiB cap"
    assert abs(large - small) < cap // 4, (small, large)


def test_short_entry_is_one_add_carrying_its_final_state() -> None:
    """A command that ends within `add_delay` of its start costs one request, not two."""

    async def main() -> None:
        sink = RecordingSink()
        logger = new_logger(sink, interval=10)  # add_delay defaults to the interval
        for key in ("setup.git.init", "setup.git.fetch", "teardown.fs"):
            h = logger.open(key, None if key == "teardown.fs" else ["git", key])
            await asyncio.sleep(0)  # the add task runs, and must wait for the close
            h.write("stderr", f"{key} done")
            await asyncio.sleep(0.01)
            h.finalize(0)
        await asyncio.wait_for(logger.flush(), 5)  # closed entries never wait for the delay
        assert [(c.kind, c.entry.key) for c in sink.calls] == [
            ("add", "setup.git.init"),
            ("add", "setup.git.fetch"),
            ("add", "teardown.fs"),
        ]
        for i, c in enumerate(sink.calls, start=1):
            assert c.entry_id == i and c.entry.exit_code == 0
            assert c.entry.out == f"stderr: {c.entry.key} done\n"
            assert c.entry.duration_ms is not None

    run(main)


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


def test_open_entry_is_added_after_add_delay_with_its_output_so_far() -> None:
    async def main() -> None:
        sink = RecordingSink()
        logger = ExecutionLogger(sink, make_job(), Redactor({}), interval=10, add_delay=0.05)
        h = logger.open("step.docker.0", ["sh"])
        h.write("stdout", "started")
        await asyncio.wait_for(_until(lambda: bool(sink.calls)), 5)  # the step keeps running
        [add] = sink.calls
        assert add.kind == "add" and add.entry.exit_code is None
        assert add.entry.out == "stdout: started\n"
        h.finalize(0)
        await asyncio.wait_for(logger.flush(), 5)
        assert [c.kind for c in sink.calls] == ["add", "update"]
        assert sink.entries[1].exit_code == 0

    run(main)


def test_add_delay_zero_adds_at_once() -> None:
    async def main() -> None:
        sink = RecordingSink()
        logger = ExecutionLogger(sink, make_job(), Redactor({}), interval=10, add_delay=0)
        h = logger.open("setup.git.init", ["git", "init"])
        await asyncio.wait_for(_until(lambda: bool(sink.calls)), 5)
        assert sink.calls[0].entry.exit_code is None and sink.calls[0].entry.out == ""
        h.finalize(0)
        await logger.flush()
        assert [c.kind for c in sink.calls] == ["add", "update"]

    run(main)


def test_a_large_entry_reaches_the_sink_in_pieces_that_make_its_text() -> None:
    """Above `JOIN_MAX` the sink gets the kept pieces (never joined in the executor): their
    concatenation is the entry's text, marker and redaction included; a small one gets `out`."""
    sink = RecordingSink()

    async def main() -> None:
        logger = new_logger(sink, max_bytes=1 << 20, interval=0.05)
        big = logger.open("step.docker.0", ["sh"])
        small = logger.open("step.docker.1", ["sh"])
        block = f"line with {TOKEN} in it\n".encode() * 5000  # ~170 KB a block
        for _ in range(20):
            big.write_block("stdout", block)
            await asyncio.sleep(0)
        small.write("stdout", "hello")
        big.finalize(0)
        small.finalize(0)
        await logger.flush()
        assert sink.entries[1].output == big.out

    run(main)
    large, short = sink.entries[1], sink.entries[2]
    assert len(large.output_parts) > 1 and large.out == ""
    assert sum(map(len, large.output_parts)) > JOIN_MAX
    assert TOKEN not in large.output and "omitted by the executor" in large.output
    assert large.output.startswith(f"stdout: line with {SECRET_REMOVED} in it\n")
    assert short.output_parts == (short.out,) and short.out == "stdout: hello\n"
