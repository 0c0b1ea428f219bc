"""Soak: N jobs through one daemon with random cancels and timeouts; the daemon's RSS and open
file descriptors must stay flat, and nothing may be left behind.

One sandbox (in-process) and one `executor run` daemon (subprocess, real Docker, two slots,
`EXECUTOR_MAXIMUM_RUNTIME_PER_JOB=6s`). The jobs come in a seeded random order of kinds
(`--seed` replays a run):

- `ok`: clone a small repository, one step `cat README.md; ls src | wc -l` → completed;
- `norepo`: no repository, one step `true` → completed;
- `fail`: one step `echo failing; exit 3` → failed (exit code 3);
- `cancel`: `echo started; sleep 60`, cancelled through the sandbox's admin cancel
  (`POST /.sandbox/jobs/ID/cancel`, the frontend's cancel flag: the next heartbeat answer lists
  the job in `cancelIds`) 0.3 to 2 s after it was seen processing → canceled;
- `timeout`: `sleep 60`, outlives the runtime limit → failed with Sourcegraph's message.

The first `--warmup` share of them is enqueued and drained first (the warm-up), then the rest,
all at once.
Every `--interval` seconds: the daemon's VmRSS (/proc/PID/status) and open descriptors
(/proc/PID/fd) — **the daemon process only**, children excluded: its `docker run`/`git`
children live only while a step or a fetch runs, so their memory would measure the work in
flight, not a leak; their number is sampled instead (`children`, zombies included) and must be
0 once the queue is drained. Flat means:

- RSS: every sample taken after the warm-up is within 10 % of the first of them;
- descriptors: the count when idle at the end is within 10 % (at least one descriptor) of
  the count when idle right after the warm-up (idle: the queue drained and 7 s of quiet, so
  the HTTP client's keep-alive connections have expired, then the fewest of ten looks over
  2 s, so a poll or heartbeat in flight does not count). A busy sample also counts the
  pipes and sockets of the (up to two) jobs in flight, which swing it by ±40 % from one
  sample to the next, so the busy series is printed (range, drift) but judged idle to idle,
  like with like. A leak of one descriptor per hundred jobs moves the idle count by 10 (of
  about 11) over 1,000 jobs.

After the queue drains the daemon gets SIGTERM (exit code 0 expected), then the leftovers are
listed: containers carrying our labels (the daemon's `executor.lock` under its TMPDIR, or its
`executor.name`), docker networks created meanwhile that carry an `executor.*` label or the
daemon's name, and anything at all left in the daemon's TMPDIR (workspaces, lock files, docker
config directories). Exit status 1 if not flat, if anything is left, or if a job did not end
the way its kind says.

    .venv/bin/python -m bench.soak [--jobs 1000] [--interval 10] [--seed S] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._common import (
    Bench,
    Daemon,
    children_of,
    daemon,
    fd_targets,
    make_repo,
    proc_status_kb,
    report,
    sandbox,
    step_job,
    tmpdir_left,
)

__all__ = [
    "KINDS",
    "Sample",
    "drift",
    "expected",
    "job_body",
    "leftovers",
    "main",
    "network_ids",
    "plan",
    "run",
    "sample",
    "verdict",
]

REPO = "github.com/bench/soak"
RUNTIME = "6s"
KINDS = {"ok": 0.70, "norepo": 0.16, "fail": 0.04, "cancel": 0.06, "timeout": 0.04}
FLAT = 0.10
# Quiet time before an idle sample: longer than httpcore's 5 s keep-alive expiry, so the
# client's pool is back to the connection or two that polling and heartbeats use.
SETTLE = 7.0


@dataclass(frozen=True)
class Sample:
    """One look at the daemon: seconds since start, jobs finished, and its resources."""

    t: float
    done: int
    rss_kb: int
    fds: int
    sockets: int
    threads: int
    children: int
    running: int


def sample(pid: int, start: float, done: int, running: int) -> Sample:
    targets = fd_targets(pid)
    return Sample(
        t=round(time.monotonic() - start, 1),
        done=done,
        rss_kb=proc_status_kb(pid, "VmRSS"),
        fds=len(targets),
        sockets=sum(1 for t in targets if t.startswith("socket:")),
        threads=proc_status_kb(pid, "Threads"),
        children=len(children_of(pid)),
        running=running,
    )


def drift(values: list[int]) -> float:
    """Largest relative deviation of `values` from the first one (0.05 = 5 %)."""
    if not values or not values[0]:
        return 0.0
    return max(abs(v - values[0]) for v in values) / values[0]


def plan(n: int, rng: random.Random, shares: dict[str, float] = KINDS) -> list[str]:
    """`n` job kinds in random order, in `shares` (default `KINDS`; at least one of each)."""
    counts = {k: max(1, round(n * share)) for k, share in shares.items()}
    counts["ok"] += n - sum(counts.values())
    kinds = [k for k, c in counts.items() for _ in range(c)]
    rng.shuffle(kinds)
    return kinds


def job_body(kind: str, head: str) -> dict[str, Any]:
    if kind == "ok":
        return step_job(REPO, head, "cat README.md", "ls src | wc -l")
    script = {
        "norepo": ["true"],
        "fail": ["echo failing", "exit 3"],
        "cancel": ["echo started", "sleep 60"],
        "timeout": ["sleep 60"],
    }[kind]
    return step_job("", "", *script)


def expected(kind: str, state: str, message: str | None, runtime: str = RUNTIME) -> bool:
    """Whether a job of `kind` ended as it should (`runtime`: the daemon's per-job deadline)."""
    if kind in ("ok", "norepo"):
        return state == "completed"
    if kind == "cancel":
        return state == "canceled"
    if kind == "fail":
        return state == "failed" and "exit code 3" in (message or "")
    return state == "failed" and f"maximum execution time of {runtime}" in (message or "")


def _docker_lines(*args: str) -> list[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    return done.stdout.split("\n") if done.returncode == 0 else []


def network_ids() -> set[str]:
    return {line for line in _docker_lines("network", "ls", "-q", "--no-trunc") if line}


def leftovers(root: Path, names: set[str], networks_before: set[str]) -> dict[str, list[str]]:
    """Containers with our labels, executor networks created meanwhile, entries under `root`."""
    rows = _docker_lines(
        "ps",
        "-a",
        "--filter",
        "label=executor.job",
        "--format",
        '{{.ID}}\t{{.Label "executor.lock"}}\t{{.Label "executor.name"}}',
    )
    containers = [
        cid
        for cid, lock, name in (r.split("\t") for r in rows if r.count("\t") == 2)
        if lock.startswith(str(root)) or name in names
    ]
    networks = []
    for net in sorted(network_ids() - networks_before):
        text = "".join(_docker_lines("network", "inspect", net))
        if '"executor.' in text or any(name in text for name in names):
            networks.append(net)
    entries = tmpdir_left(root)
    return {"containers": containers, "networks": networks, "tmpdir_entries": entries}


def _idle_sample(pid: int, start: float, done: int) -> Sample:
    """The fewest descriptors of ten looks over 2 s: a poll or heartbeat in flight is no leak."""
    looks = []
    for _ in range(10):
        looks.append(sample(pid, start, done, 0))
        time.sleep(0.2)
    return min(looks, key=lambda s: s.fds)


def _state_counts(box: Bench) -> tuple[int, int]:
    store = box.store
    return store.queued_count("batches"), len(store.list_jobs(state="processing"))


def run(jobs: int, interval: float, warmup: float, seed: int, slots: int) -> dict[str, Any]:
    """The whole soak; returns the JSON result (see the module docstring)."""
    rng = random.Random(seed)
    kinds = plan(jobs, rng)
    warm_n = max(1, round(warmup * jobs))
    with sandbox(stalled_max_age=60.0) as box:
        repo, head = make_repo(box.scratch, files=10)
        box.add_repo(REPO, repo)
        nets_before = network_ids()
        overrides = {
            "maximum_num_jobs": str(slots),
            "maximum_runtime_per_job": RUNTIME,
            "cleanup_task_interval": "10s",
        }
        with daemon(box, "soak", **overrides) as proc:
            root = box.scratch / "ws-soak"
            start = time.monotonic()
            ids: dict[int, str] = {}
            samples: list[Sample] = []
            idle: list[Sample] = []
            for phase in (kinds[:warm_n], kinds[warm_n:]):
                ids.update({box.enqueue(job_body(kind, head)): kind for kind in phase})
                _drive(box, proc, ids, rng, start, interval, samples)
                time.sleep(SETTLE)
                idle.append(_idle_sample(proc.pid, start, len(ids)))
                print(json.dumps({"idle": asdict(idle[-1])}), flush=True)
            elapsed = time.monotonic() - start
            proc.stop()
            exit_code = proc.proc.returncode
            names = {r.worker_hostname for r in box.records() if r.worker_hostname}
            left = leftovers(root, names, nets_before)
        records = {r.id: r for r in box.records()}
    outcomes: dict[str, int] = {}
    wrong = []
    for job_id, kind in ids.items():
        record = records[job_id]
        key = f"{kind}:{record.state}"
        outcomes[key] = outcomes.get(key, 0) + 1
        if not expected(kind, record.state, record.failure_message):
            wrong.append({"id": job_id, "kind": kind, "state": record.state})
    post = [s for s in samples if s.done > warm_n] or samples[-1:]
    return {
        "jobs": jobs,
        "warmup_jobs": warm_n,
        "seed": seed,
        "interval_s": interval,
        "slots": slots,
        "elapsed_s": round(elapsed, 1),
        "jobs_per_s": round(jobs / elapsed, 2),
        "samples": [asdict(s) for s in samples],
        "idle_samples": [asdict(s) for s in idle],
        "post_warmup_samples": len(post),
        "rss_first_post_warmup_kb": post[0].rss_kb,
        "rss_max_kb": max(s.rss_kb for s in samples),
        "rss_drift": round(drift([s.rss_kb for s in post]), 4),
        "rss_idle_drift": round(drift([s.rss_kb for s in idle]), 4),
        "fds_busy_range": [min(s.fds for s in post), max(s.fds for s in post)],
        "fds_busy_drift": round(drift([s.fds for s in post]), 4),
        "fds_idle_drift": round(drift([s.fds for s in idle]), 4),
        "children_idle_end": idle[-1].children,
        "outcomes": outcomes,
        "unexpected": wrong,
        "daemon_exit": exit_code,
        "leftovers": left,
    }


def _drive(
    box: Bench,
    proc: Daemon,
    ids: dict[int, str],
    rng: random.Random,
    start: float,
    interval: float,
    samples: list[Sample],
) -> None:
    """Sample every `interval` and cancel `cancel` jobs while they run, until none is left
    queued or processing."""
    seen: dict[int, float] = {}
    canceled: set[int] = set()
    next_sample = time.monotonic()
    while True:
        queued, running = _state_counts(box)
        now = time.monotonic()
        if now >= next_sample:
            samples.append(sample(proc.pid, start, len(ids) - queued - running, running))
            print(json.dumps(asdict(samples[-1])), flush=True)
            next_sample = now + interval
        if not queued and not running:
            return
        if proc.proc.poll() is not None:
            raise SystemExit(f"the daemon died: exit {proc.proc.returncode}")
        for record in box.store.list_jobs(state="processing"):
            if ids.get(record.id) != "cancel" or record.id in canceled:
                continue
            due = seen.setdefault(record.id, now + rng.uniform(0.3, 2.0))
            if now >= due:
                box.client.post(f"/.sandbox/jobs/{record.id}/cancel").raise_for_status()
                canceled.add(record.id)
        time.sleep(0.2)


def verdict(result: dict[str, Any]) -> list[str]:
    """Every reason the soak failed (empty: it passed)."""
    problems = []
    if result["rss_drift"] > FLAT:
        problems.append(f"RSS drifted {result['rss_drift']:.1%} after warm-up")
    warm_fds, end_fds = (s["fds"] for s in result["idle_samples"])
    if end_fds > max(warm_fds * (1 + FLAT), warm_fds + 1):
        problems.append(f"idle descriptors grew from {warm_fds} to {end_fds}")
    if result["children_idle_end"]:
        problems.append(f"{result['children_idle_end']} child processes left while idle")
    for what, items in result["leftovers"].items():
        if items:
            problems.append(f"left behind: {what} {items[:5]}")
    if result["unexpected"]:
        problems.append(f"{len(result['unexpected'])} jobs ended unexpectedly")
    if result["daemon_exit"] != 0:
        problems.append(f"daemon exit code {result['daemon_exit']} after SIGTERM")
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=0.2, help="share of jobs of warm-up")
    parser.add_argument("--slots", type=int, default=2, help="EXECUTOR_MAXIMUM_NUM_JOBS")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="100 jobs, a sample every 2 s")
    args = parser.parse_args(argv)
    jobs, interval = (100, 2.0) if args.quick else (args.jobs, args.interval)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"soak: {jobs} jobs, sample every {interval} s, seed {seed}", flush=True)
    result = run(jobs, interval, args.warmup, seed, args.slots)
    problems = verdict(result)
    result["problems"] = problems
    rss = [s["rss_kb"] for s in result["samples"]]
    idle_fds = [s["fds"] for s in result["idle_samples"]]
    idle_rss = [s["rss_kb"] for s in result["idle_samples"]]
    post_rss = int(result["rss_first_post_warmup_kb"])
    rows = [
        ("jobs / seed", f"{jobs} / {seed}"),
        ("elapsed s / jobs per s", f"{result['elapsed_s']} / {result['jobs_per_s']}"),
        ("samples (post warm-up)", f"{len(rss)} ({result['post_warmup_samples']})"),
        ("RSS MiB first / first post-warm-up / max", _mib(rss[0], post_rss, max(rss))),
        ("RSS drift after warm-up", f"{result['rss_drift']:.1%}"),
        ("fds busy (post warm-up) min-max", "-".join(map(str, result["fds_busy_range"]))),
        ("fds idle after warm-up / at the end", "{} / {}".format(*idle_fds)),
        ("RSS MiB idle after warm-up / at the end", _mib(*idle_rss)),
        ("children while idle at the end", result["children_idle_end"]),
        ("outcomes", ", ".join(f"{k}={v}" for k, v in sorted(result["outcomes"].items()))),
        ("unexpected outcomes", len(result["unexpected"])),
        ("daemon exit after SIGTERM", result["daemon_exit"]),
        ("leftovers", ", ".join(f"{k}={len(v)}" for k, v in result["leftovers"].items())),
        ("verdict", "; ".join(problems) or "flat, nothing left"),
    ]
    report("soak", rows, result)
    if problems:
        raise SystemExit(1)


def _mib(*kb: int) -> str:
    return " / ".join(f"{k / 1024:.1f}" for k in kb)


if __name__ == "__main__":
    main()
