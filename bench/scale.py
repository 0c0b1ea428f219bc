"""Scale: N queued jobs without steps (no repository, no docker step) drained by D daemons
against one sandbox. Figures: jobs/s (from the daemons' start to the last job's `finished_at`,
so the daemons' startup counts against them), daemon CPU per job (utime+stime of every daemon
over the run / N), and lost and duplicated jobs, both of which must be 0:

- lost: a job not `completed`, or completed without a `worker_hostname`;
- duplicated: a job reset or failed on the way (`num_resets`, `num_failures`), or more jobs
  handled by the daemons (sum of their `executor_jobs_total`, scraped from `/metrics`) than
  were enqueued.

The jobs are enqueued straight into the sandbox's store before the daemons start.

    .venv/bin/python -m bench.scale [--jobs 20000] [--daemons 4] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import time

import httpx

from bench._common import Bench, Daemon, cpu_seconds, daemon, report, sandbox, step_job

COUNTER = "executor_jobs_total"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def handled(port: int) -> int:
    """Jobs finished by one daemon (all outcomes), from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(COUNTER + "{")
        )
    )


def enqueue_all(box: Bench, n: int) -> float:
    """Enqueue `n` jobs without steps; seconds it took."""
    store = box.store
    body = step_job("", "")
    start = time.perf_counter()
    for _ in range(n):
        store.enqueue("batches", body)
    return time.perf_counter() - start


def drain(box: Bench, n: int, timeout: float) -> None:
    store = box.store
    deadline = time.monotonic() + timeout
    while store.queued_count("batches") or _processing(box):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the queue did not drain in {timeout:.0f} s")
        time.sleep(0.5)


def _processing(box: Bench) -> int:
    return len(box.store.list_jobs(state="processing"))


def audit(box: Bench, n: int, handled_total: int) -> dict[str, int]:
    records = box.records()
    lost = sum(1 for r in records if r.state != "completed" or not r.worker_hostname)
    retried = sum(1 for r in records if r.num_resets or r.num_failures)
    return {
        "jobs_in_store": len(records),
        "lost": lost + (n - len(records)),
        "duplicated": retried + max(0, handled_total - n),
        "handled_by_daemons": handled_total,
        "executors": len({r.worker_hostname for r in records}),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--daemons", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="2,000 jobs, 2 daemons")
    args = parser.parse_args(argv)
    n, d = (2000, 2) if args.quick else (args.jobs, args.daemons)
    with sandbox() as box, contextlib.ExitStack() as stack:
        enqueue_s = enqueue_all(box, n)
        ports = [free_port() for _ in range(d)]
        start = time.time()
        procs: list[Daemon] = [
            stack.enter_context(daemon(box, f"bench-{i}", metrics_port=str(port)))
            for i, port in enumerate(ports)
        ]
        drain(box, n, timeout=max(600.0, n / 5))
        cpu = sum(cpu_seconds(p.pid) for p in procs)
        handled_total = sum(handled(port) for port in ports)
        end = max(r.finished_at or 0 for r in box.records())
        counts = audit(box, n, handled_total)
    elapsed = end - start
    result = {
        "jobs": n,
        "daemons": d,
        "enqueue_s": enqueue_s,
        "drain_s": elapsed,
        "jobs_per_s": n / elapsed,
        "daemon_cpu_s": cpu,
        "daemon_cpu_ms_per_job": 1000 * cpu / n,
        **counts,
    }
    rows = [
        ("jobs / daemons", f"{n} / {d}"),
        ("drain s (daemons start → last finished)", elapsed),
        ("jobs/s", n / elapsed),
        ("daemon CPU s (all daemons, incl. startup)", cpu),
        ("daemon CPU ms per job", 1000 * cpu / n),
        ("lost jobs", counts["lost"]),
        ("duplicated jobs", counts["duplicated"]),
        ("jobs handled by daemons (metrics)", handled_total),
        ("distinct worker_hostname", counts["executors"]),
    ]
    report("scale", rows, result)
    if counts["lost"] or counts["duplicated"]:
        raise SystemExit("lost or duplicated jobs")


if __name__ == "__main__":
    main()
