"""Per-job overhead: a one-step job on a small repository, end to end through the daemon,
against the same work done by hand in the same run.

Daemon side (one job at a time, `EXECUTOR_MAXIMUM_NUM_JOBS=1`, poll interval 100 ms):
enqueue → dequeue → clone through the executor's git proxy from the sandbox → `docker run` of
the step → logs → mark complete. Measured as the sandbox's `finished_at - queued_at`, and
executor-side as the span of the job's execution log entries (first `startTime` to the last
entry's end), and split into phases from those entries (`phases`). The poll interval's share is
shown on its own: `poll wait` is enqueue → the dequeue that took the job (the sandbox's
`started_at`), and the end-to-end ratio is also given without it.

By hand: `git init` + `git fetch --depth=1 file://<repo> <commit>` + `git checkout`, then
`docker run --rm -v <dir>:/data -w /data executor-busybox:latest sh script` of the same script,
then removing the directory: the executor-side span ends with `teardown.fs`, the workspace's
removal, so the same work by hand includes it (its share is shown as `by hand rm`).

By hand, the executor's argv (`same argv`): the same git and removal, but the step is the very
`docker run` command the daemon logged for its `step.docker.0` entry (its CPU, memory and pids
limits, `--init`, `--security-opt`, environment, mount and script path), with the workspace
path swapped for the by-hand directory, a container name of its own and the executor's labels
left out (so the daemon's janitor cannot mistake the container for one of its jobs). Docker's
cost of those limits is then on both sides, and the ratio against it is the executor's own
overhead; both ratios are reported.

    .venv/bin/python -m bench.overhead [--jobs 10] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import (
    FINAL,
    IMAGE,
    Bench,
    daemon,
    git,
    make_repo,
    median,
    percentile,
    report,
    sandbox,
    step_job,
    wait_until,
)

REPO = "github.com/bench/overhead"
COMMANDS = ("cat README.md", "ls src | wc -l", "echo done")


def _parse_time(text: str) -> float:
    """An RFC 3339 (Go `RFC3339Nano`) UTC time as epoch seconds."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def executor_span(logs: list[dict[str, Any]]) -> float:
    """Seconds from the first log entry's start to the end of the last one."""
    starts = [_parse_time(e["startTime"]) for e in logs]
    ends = [_parse_time(e["startTime"]) + e.get("durationMs", 0) / 1000 for e in logs]
    return max(ends) - min(starts)


def phases(
    queued_at: float, started_at: float, finished_at: float, logs: list[dict[str, Any]]
) -> dict[str, float]:
    """Where one job's time went, in seconds, from its log entries and the sandbox's times.

    `poll wait` is enqueue → the dequeue that took the job (`started_at`); `pickup` the dequeue
    → the first entry's start (the answer's parsing, workspace creation); `git`
    the `setup.git.*` entries back to back; `files` git's end → the step's start (job files,
    scripts, `setup.fs.extras`); `step` the `docker run` entry; `teardown` the step's end → the
    end of `teardown.fs`; `flush+mark` the last entry's end → `finished_at`; `entry <key>` each
    log entry's own duration (`durationMs`).
    """
    spans = {e["key"]: (_parse_time(e["startTime"]), e.get("durationMs", 0) / 1000) for e in logs}
    git = [(start, start + length) for key, (start, length) in spans.items() if "git" in key]
    step_start, step_length = spans["step.docker.0"]
    teardown_start, teardown_length = spans["teardown.fs"]
    first = min(start for start, _ in spans.values())
    git_end = max(end for _, end in git)
    return {
        "poll wait": started_at - queued_at,
        "pickup": first - started_at,
        "git": git_end - min(start for start, _ in git),
        "files": step_start - git_end,
        "step": step_length,
        "teardown": teardown_start + teardown_length - (step_start + step_length),
        "flush+mark": finished_at - (teardown_start + teardown_length),
        **{f"entry {key}": length for key, (_, length) in spans.items()},
    }


def run_daemon_job(box: Bench, head: str) -> tuple[float, float, dict[str, float], list[str]]:
    """Enqueue one job, wait for it; (enqueue→finished s, executor-side s, phases, the logged
    `docker run` argv of its step)."""
    job_id = box.enqueue(step_job(REPO, head, *COMMANDS))
    record = wait_until(
        lambda: (r := box.record(job_id)).state in FINAL and r, timeout=120, interval=0.01
    )
    if record.state != "completed" or record.started_at is None:
        raise RuntimeError(f"job {job_id} ended {record.state}: {record.failure_message}")
    logs = record.execution_logs
    (step,) = (e for e in logs if e["key"] == "step.docker.0")
    return (
        record.finished_at - record.queued_at,
        executor_span(logs),
        phases(record.queued_at, record.started_at, record.finished_at, logs),
        list(step["command"]),
    )


def replay_argv(logged: list[str], work: Path, name: str) -> tuple[list[str], str]:
    """The logged `docker run` argv for a by-hand directory: (argv, the script's path relative
    to the workspace). The workspace is the host side of `-v HOST:/data`; `--name` becomes
    `name`; `--label` pairs are dropped."""
    argv: list[str] = []
    workspace = ""
    args = iter(logged)
    for arg in args:
        if arg == "--label":
            next(args)
            continue
        if arg == "--name":
            argv += [arg, name]
            next(args)
            continue
        if arg == "-v" and not workspace:
            value = next(args)
            workspace, _, target = value.rpartition(":")
            argv += [arg, f"{work}:{target}"]
            continue
        argv.append(arg)
    if not workspace:
        raise RuntimeError(f"no workspace mount in the logged command {logged!r}")
    script = argv[-1]
    if not script.startswith("/data/"):
        raise RuntimeError(f"the logged command does not end with a /data script: {script!r}")
    return argv, script.removeprefix("/data/")


def run_by_hand(
    repo: Path, head: str, scratch: Path, logged: list[str] | None = None
) -> tuple[float, float, float]:
    """git init + shallow fetch + checkout, docker run of the same script, removal; with
    `logged`, the step is that argv (`replay_argv`) instead of the minimal `docker run`.

    Returns (total seconds, of which git, of which the removal)."""
    work = Path(tempfile.mkdtemp(dir=scratch))
    start = time.perf_counter()
    git(work, "init", "--quiet")
    git(work, "-c", "protocol.version=2", "fetch", "--quiet", "--depth=1", f"file://{repo}", head)
    git(work, "checkout", "--quiet", "--force", head)
    git_done = time.perf_counter()
    text = "set -e\n" + "\n".join(COMMANDS) + "\n"
    if logged is None:
        (work / ".script.sh").write_text(text)
        argv = ["docker", "run", "--rm", "-v", f"{work}:/data", "-w", "/data", IMAGE]
        argv += ["sh", ".script.sh"]
    else:
        argv, script = replay_argv(logged, work, f"overhead-by-hand-{work.name}")
        (work / script).parent.mkdir(parents=True, exist_ok=True)
        (work / script).write_text(text)
    subprocess.run(argv, check=True, capture_output=True)
    run_done = time.perf_counter()
    shutil.rmtree(work)
    elapsed = time.perf_counter() - start
    return elapsed, git_done - start, elapsed - (run_done - start)


def summarize(values: list[float]) -> dict[str, float]:
    return {"median": median(values), "p90": percentile(values, 90)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="3 jobs")
    args = parser.parse_args(argv)
    n = 3 if args.quick else args.jobs
    with sandbox() as box:
        repo, head = make_repo(box.scratch)
        box.add_repo(REPO, repo)
        with daemon(box, maximum_num_jobs="1"):
            *_, logged = run_daemon_job(box, head)  # warm-up: first poll, image lookup
            run_by_hand(repo, head, box.scratch)
            run_by_hand(repo, head, box.scratch, logged)
            e2e, span, hand, same, e2e_no_poll = [], [], [], [], []
            parts: dict[str, list[float]] = {}
            for _ in range(n):  # interleaved, so load changes hit both sides alike
                total, executor, job_phases, logged = run_daemon_job(box, head)
                e2e.append(total)
                e2e_no_poll.append(total - job_phases["poll wait"])
                span.append(executor)
                for name, seconds in job_phases.items():
                    parts.setdefault(name, []).append(seconds)
                hand_total, hand_git, hand_rm = run_by_hand(repo, head, box.scratch)
                hand.append(hand_total)
                parts.setdefault("by hand git", []).append(hand_git)
                parts.setdefault("by hand rm", []).append(hand_rm)
                same.append(run_by_hand(repo, head, box.scratch, logged)[0])
    result = {
        "jobs": n,
        "daemon_e2e_s": summarize(e2e),
        "daemon_executor_side_s": summarize(span),
        "by_hand_s": summarize(hand),
        "by_hand_same_argv_s": summarize(same),
        "ratio_median": median(e2e) / median(hand),
        "ratio_without_poll_wait_median": median(e2e_no_poll) / median(hand),
        "ratio_executor_side_median": median(span) / median(hand),
        "ratio_executor_side_same_argv_median": median(span) / median(same),
        "phases_median_s": {name: median(v) for name, v in parts.items()},
    }
    same_key = "ratio_executor_side_same_argv_median"
    rows = [
        ("jobs", n),
        ("daemon enqueue→completed median s", median(e2e)),
        ("daemon enqueue→completed p90 s", percentile(e2e, 90)),
        ("daemon executor-side median s", median(span)),
        ("daemon executor-side p90 s", percentile(span, 90)),
        ("by hand (git fetch + docker run + rm) median s", median(hand)),
        ("by hand p90 s", percentile(hand, 90)),
        ("by hand, the executor's argv, median s", median(same)),
        ("ratio e2e / by hand (median)", result["ratio_median"]),
        ("ratio e2e without the poll wait / by hand", result["ratio_without_poll_wait_median"]),
        ("ratio executor-side / by hand (median)", result["ratio_executor_side_median"]),
        ("ratio executor-side / by hand, same argv", result[same_key]),
        *((f"phase {name} median s", median(v)) for name, v in parts.items()),
    ]
    report("overhead", rows, result)


if __name__ == "__main__":
    main()
