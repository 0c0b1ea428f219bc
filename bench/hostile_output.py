"""Hostile output: the daemon's peak RSS while one step prints each of the shapes that used to
bypass the log budget (issue "trust boundary", deliverable 3), one job each, in one run:

- 300,000 short lines that look like JSON events (`{"operation":…}`);
- 100 event lines of 1 MB each;
- one 1 GB line without a newline;
- 500 MB of ordinary output.

For each: the daemon's VmHWM before and after (it only grows, so each case runs in a fresh
daemon), the stored entry's size (bounded by `EXECUTOR_LOG_ENTRY_MAX_BYTES`, default 16M, plus
the marker), and the goal: peak within idle + 64 MiB. `--quick` divides every size by 10.

    .venv/bin/python -m bench.hostile_output [--quick]
"""

from __future__ import annotations

import argparse
import time

from bench._common import daemon, proc_status_kb, report, sandbox, step_job, wait_until

GOAL_KB = 64 * 1024


def cases(scale: int) -> dict[str, str]:
    event = '{"operation":"EXECUTING_TASK","timestamp":"2024-01-01T00:00:00Z","status":"PROGRESS"}'
    big = 1_000_000 // scale
    return {
        "300k event lines": f"yes '{event}' | head -n {300_000 // scale}",
        "100 x 1 MB event lines": (
            f'i=0; while [ $i -lt 100 ]; do printf \'{{"operation":"X","metadata":"\'; '
            f"head -c {big} /dev/zero | tr '\\0' a; echo '\"}}'; i=$((i+1)); done"
        ),
        "1 GB line, no newline": f"head -c {1024**3 // scale} /dev/zero | tr '\\0' x",
        "500 MB ordinary output": f"yes 0123456789abcdef | head -c {500 * 1024**2 // scale}",
    }


def run_case(script: str) -> dict[str, object]:
    with sandbox() as box, daemon(box, maximum_num_jobs="1") as proc:
        warm = box.enqueue(step_job("", "", "echo warm"))
        wait_until(lambda: box.record(warm).state == "completed", 60)
        idle = proc_status_kb(proc.pid, "VmHWM")
        job_id = box.enqueue(step_job("", "", script))
        deadline = time.monotonic() + 900
        while box.record(job_id).state in ("queued", "processing"):
            if time.monotonic() > deadline:
                raise TimeoutError("the job did not finish in 900 s")
            time.sleep(0.5)
        peak = proc_status_kb(proc.pid, "VmHWM")
        record = box.record(job_id)
    entry = next(e for e in record.execution_logs if e["key"] == "step.docker.0")
    return {
        "state": record.state,
        "idle_hwm_kb": idle,
        "peak_hwm_kb": peak,
        "above_idle_kb": peak - idle,
        "within_goal": peak - idle <= GOAL_KB,
        "stored_out_bytes": len(entry.get("out", "").encode()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every size / 10")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    results = {name: run_case(script) for name, script in cases(scale).items()}
    rows = []
    for name, r in results.items():
        rows.append((f"{name}: state", r["state"]))
        above, stored = float(str(r["above_idle_kb"])), float(str(r["stored_out_bytes"]))
        rows.append((f"{name}: daemon MiB above idle", round(above / 1024, 1)))
        rows.append((f"{name}: stored entry MiB", round(stored / 2**20, 1)))
        rows.append((f"{name}: within idle + 64 MiB", r["within_goal"]))
    report("hostile_output", rows, {"scale": scale, "cases": results})


if __name__ == "__main__":
    main()
