"""Repository cache: jobs on a large repository over a slow link, with and without the cache.

A generated repository of about 200 MB (`--mb`: many files of incompressible bytes, a few
commits of history) is hosted by the sandbox, and the daemons reach the sandbox only through a
throttling TCP proxy the bench starts on loopback: 50 Mbit/s per direction shared by every
connection, and 10 ms each way (20 ms round trip) before a chunk is delivered. Every job is a
shallow clone (as batch changes fetch) with no step.

One daemon with the cache off runs the cold reference job; a second daemon with the cache on
(an empty cache directory) runs 10 jobs one after the other: 5 on the commit C1 (the first
fills the cache), then a commit C2 one change newer (one file rewritten) is pushed and 5 run on
C2 (the first fetches the delta). Figure per job: the git phase (first `setup.git.*` entry's
start to the last one's end, which includes the cache's own fetch), as a ratio to the cold
reference; and the job's time from dequeue to finished, likewise.

    .venv/bin/python -m bench.repocache [--mb 200] [--jobs 10] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench._common import Bench, daemon, git, report, sandbox, step_job, wait_until
from bench.overhead import _parse_time

RATE_BPS = 50_000_000
ONE_WAY_S = 0.010
REPO = "github.com/bench/monorepo"


class _Link:
    """One direction of the link: a serialisation clock shared by all connections."""

    def __init__(self, rate_bps: int, delay: float) -> None:
        self.rate = rate_bps / 8
        self.delay = delay
        self.free_at = 0.0
        self.bytes = 0

    def schedule(self, size: int, arrived: float) -> float:
        """When a chunk of `size` bytes that arrived at `arrived` is delivered."""
        start = max(arrived, self.free_at)
        self.free_at = start + size / self.rate
        self.bytes += size
        return self.free_at + self.delay


class Throttle:
    """A TCP proxy on 127.0.0.1 in front of `target_port`, in its own thread and loop."""

    def __init__(self, target_port: int, rate_bps: int = RATE_BPS, delay: float = ONE_WAY_S):
        self.target_port = target_port
        self.up = _Link(rate_bps, delay)
        self.down = _Link(rate_bps, delay)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, host="127.0.0.1", port=0)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> Throttle:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer, self.up),
            self._pipe(up_reader, writer, self.down),
            return_exceptions=True,
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                at, chunk = await queue.get()
                if not chunk:
                    break
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while chunk := await reader.read(16 * 1024):
                queue.put_nowait((link.schedule(len(chunk), time.monotonic()), chunk))
                # Back-pressure: don't read far ahead of what the link has delivered.
                while queue.qsize() > 64:
                    await asyncio.sleep(0.005)
        finally:
            queue.put_nowait((0.0, b""))
            await asyncio.gather(sender, return_exceptions=True)
            writer.close()


@contextmanager
def throttled(box: Bench) -> Iterator[Throttle]:
    link = Throttle(box.server.port).start()
    try:
        yield link
    finally:
        link.stop()


def make_big_repo(where: Path, mb: int) -> tuple[Path, str]:
    """About `mb` MB of incompressible files in 40 directories, 4 commits; (path, head)."""
    path = where / "monorepo"
    path.mkdir()
    git(path, "init", "--quiet", "--initial-branch=main")
    size = 64 * 1024
    count = mb * 1024 * 1024 // size
    for i in range(count):
        folder = path / f"dir{i % 40:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"file{i:05d}.bin").write_bytes(os.urandom(size))
    (path / "README.md").write_text("# monorepo\n")
    git(path, "add", ".")
    git(path, "commit", "--quiet", "-m", "import")
    for rev in range(3):  # some history: a few files rewritten per commit
        for i in range(rev, count, count // 10):
            (path / f"dir{i % 40:02d}" / f"file{i:05d}.bin").write_bytes(os.urandom(size))
        git(path, "commit", "--quiet", "-am", f"rev {rev}")
    return path, git(path, "rev-parse", "HEAD")


def one_change(path: Path) -> str:
    (path / "dir00" / "file00000.bin").write_bytes(os.urandom(64 * 1024))
    git(path, "commit", "--quiet", "-am", "one change")
    return git(path, "rev-parse", "HEAD")


def run_job(box: Bench, commit: str, timeout: float) -> dict[str, float]:
    job_id = box.enqueue(step_job(REPO, commit))
    record = wait_until(
        lambda: (r := box.record(job_id)).state in ("completed", "errored", "failed") and r,
        timeout=timeout,
        interval=0.2,
    )
    if record.state != "completed":
        raise RuntimeError(f"job {job_id} {record.state}: {record.failure_message}")
    git_entries = [e for e in record.execution_logs if e["key"].startswith("setup.git.")]
    starts = [_parse_time(e["startTime"]) for e in git_entries]
    ends = [s + e.get("durationMs", 0) / 1000 for s, e in zip(starts, git_entries, strict=True)]
    fetch = next(e for e in git_entries if e["key"] == "setup.git.fetch")
    return {
        "git_s": max(ends) - min(starts),
        "job_s": (record.finished_at or 0) - (record.started_at or 0),
        "from_cache": float(any(a.startswith("file://") for a in fetch["command"])),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="40 MB, 6 jobs")
    args = parser.parse_args(argv)
    mb, jobs = (40, 6) if args.quick else (args.mb, args.jobs)
    timeout = 60 + mb * 2.0
    with sandbox() as box, throttled(box) as link:
        t0 = time.perf_counter()
        path, c1 = make_big_repo(box.scratch, mb)
        generate_s = time.perf_counter() - t0
        box.add_repo(REPO, path, mode="register")
        url = f"http://127.0.0.1:{link.port}"
        with daemon(box, "cold", repo_cache_size="0", frontend_url=url):
            before = link.down.bytes
            cold = run_job(box, c1, timeout)
            cold_bytes = link.down.bytes - before
        runs: list[dict[str, Any]] = []
        cache_dir = box.scratch / "repo-cache"
        with daemon(
            box, "warm", repo_cache_size="5G", repo_cache_dir=str(cache_dir), frontend_url=url
        ):
            commit, kind = c1, "fill"
            for i in range(jobs):
                if i == jobs // 2:
                    commit, kind = one_change(path), "newer"
                before = link.down.bytes
                got = run_job(box, commit, timeout)
                runs.append({**got, "kind": kind, "down_bytes": link.down.bytes - before})
                kind = "same"
    same = [r for r in runs if r["kind"] == "same"]
    newer = next(r for r in runs if r["kind"] == "newer")
    fill = runs[0]
    same_ratio = statistics.median(r["git_s"] for r in same) / cold["git_s"]
    result = {
        "mb": mb,
        "generate_s": generate_s,
        "link": {"mbit_s": RATE_BPS / 1e6, "one_way_ms": ONE_WAY_S * 1000},
        "cold": {**cold, "down_bytes": cold_bytes},
        "runs": runs,
        "ratio_same_commit_git": same_ratio,
        "ratio_same_commit_job": statistics.median(r["job_s"] for r in same) / cold["job_s"],
        "ratio_newer_commit_git": newer["git_s"] / cold["git_s"],
        "ratio_newer_commit_job": newer["job_s"] / cold["job_s"],
        "ratio_fill_git": fill["git_s"] / cold["git_s"],
    }
    rows: list[tuple[str, Any]] = [
        ("repository MB / link", f"{mb} / 50 Mbit/s, 20 ms RTT"),
        ("cold (cache off) git s / job s", f"{cold['git_s']:.2f} / {cold['job_s']:.2f}"),
        ("cold bytes over the link MB", round(cold_bytes / 1e6, 1)),
    ]
    for i, r in enumerate(runs, 1):
        rows.append(
            (
                f"job {i} ({r['kind']}) git s / job s / MB over link",
                f"{r['git_s']:.2f} / {r['job_s']:.2f} / {r['down_bytes'] / 1e6:.2f}",
            )
        )
    rows += [
        ("ratio fill / cold (git)", result["ratio_fill_git"]),
        ("ratio same commit / cold (git, median)", same_ratio),
        ("ratio same commit / cold (job, median)", result["ratio_same_commit_job"]),
        ("ratio newer commit / cold (git)", result["ratio_newer_commit_git"]),
        ("ratio newer commit / cold (job)", result["ratio_newer_commit_job"]),
    ]
    report("repocache", rows, result)


if __name__ == "__main__":
    main()
