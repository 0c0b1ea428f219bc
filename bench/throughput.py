"""Throughput: trivial jobs (no repository, one step `true`) through one daemon with two slots
(`EXECUTOR_MAXIMUM_NUM_JOBS=2`), against `docker run --rm executor-busybox:latest true` in a
shell loop at 2-way concurrency (`xargs -P2`), same count, same run.

Daemon time is from the first job's `queued_at` to the last job's `finished_at` (the jobs are
all enqueued at once, straight into the sandbox's store, once the daemon is polling).

    .venv/bin/python -m bench.throughput [--jobs 200] [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import time

from bench._common import FINAL, IMAGE, daemon, report, sandbox, step_job, wait_until


def docker_loop(n: int) -> float:
    """Seconds for `n` `docker run --rm IMAGE true`, two at a time."""
    script = f"seq {n} | xargs -P2 -I{{}} docker run --rm {IMAGE} true"
    start = time.perf_counter()
    subprocess.run(["sh", "-c", script], check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="40 jobs")
    args = parser.parse_args(argv)
    n = 40 if args.quick else args.jobs
    with sandbox() as box, daemon(box, maximum_num_jobs="2"):
        store = box.store
        wait_until(lambda: store.get_job(box.enqueue(step_job("", "", "true"))), 5)
        wait_until(lambda: all(r.state in FINAL for r in store.list_jobs()), 60, 0.05)
        warm = {r.id for r in store.list_jobs()}
        ids = [store.enqueue("batches", step_job("", "", "true")) for _ in range(n)]
        wait_until(
            lambda: all(r.state in FINAL for r in store.list_jobs() if r.id not in warm),
            n * 5,
            0.1,
        )
        records = [r for r in store.list_jobs() if r.id in set(ids)]
    states = {r.state for r in records}
    elapsed = max(r.finished_at or 0 for r in records) - min(r.queued_at for r in records)
    baseline = docker_loop(n)
    result = {
        "jobs": n,
        "states": sorted(states),
        "daemon_s": elapsed,
        "daemon_jobs_per_s": n / elapsed,
        "docker_loop_s": baseline,
        "docker_loop_jobs_per_s": n / baseline,
        "ratio_jobs_per_s": (n / elapsed) / (n / baseline),
    }
    rows = [
        ("jobs (2 slots / xargs -P2)", n),
        ("job states", ",".join(sorted(states))),
        ("daemon s", elapsed),
        ("daemon jobs/s", n / elapsed),
        ("docker run loop s", baseline),
        ("docker run loop jobs/s", n / baseline),
        ("ratio daemon / docker loop (jobs/s)", result["ratio_jobs_per_s"]),
    ]
    report("throughput", rows, result)


if __name__ == "__main__":
    main()
