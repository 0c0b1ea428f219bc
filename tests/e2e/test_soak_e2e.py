"""Soak, CI-sized: ~80 jobs with random cancels and timeouts through one daemon; its memory and
descriptors stay flat and nothing is left behind (issue 6 item 5; the full 1,000-job run is
`.venv/bin/python -m bench.soak`, results in docs/performance.md).

The daemon (two slots, `EXECUTOR_MAXIMUM_RUNTIME_PER_JOB=5s`) gets, in a seeded random order
(`SOAK_SEED=N` replays, `SOAK_JOBS=N` resizes): clone + `cat` steps (completed), steps without a
repository (completed), failing steps (failed), `sleep 60` steps cancelled through the sandbox's
admin cancel while they run (canceled), and `sleep 60` steps that outlive the deadline (failed).
The first quarter of the jobs is a warm-up, enqueued and drained first.

Measured on the daemon process alone (its `docker`/`git` children come and go with the work):
VmRSS every second, and open descriptors when idle (the queue drained, 7 s of quiet so the
HTTP client's keep-alive connections have expired, the fewest of ten looks over 2 s): after
the warm-up and at the end.

Checks: every job ended as its kind says; every RSS sample after the warm-up within 10 % of the
first; idle descriptors at the end within 10 % (at least one descriptor of slack) of those after
the warm-up, and no child process left; after SIGTERM (exit 0) no container with a lock label
under the daemon's TMPDIR, no new executor network, and an empty TMPDIR.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from leftovers import container_ids, network_ids

from bench._common import children_of, fd_targets, proc_status_kb, tmpdir_left
from bench.soak import expected, plan

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "executor-busybox:latest"
JOBS = int(os.environ.get("SOAK_JOBS", "80"))
SEED = int(os.environ.get("SOAK_SEED", str(random.randrange(1 << 30))))
SHARES = {"ok": 0.65, "norepo": 0.15, "fail": 0.05, "cancel": 0.08, "timeout": 0.07}
RUNTIME = "5s"
SETTLE = 7.0  # > httpcore's 5 s keep-alive expiry


def _job(kind: str, repo: Any) -> dict[str, Any]:
    script = {
        "ok": ["cat README.md", "ls src | wc -l"],
        "norepo": ["true"],
        "fail": ["echo failing", "exit 3"],
        "cancel": ["echo started", "sleep 60"],
        "timeout": ["sleep 60"],
    }[kind]
    step = {"key": "", "image": IMAGE, "commands": script, "dir": ".", "env": []}
    with_repo = kind == "ok"
    return {
        "repositoryName": repo.name if with_repo else "",
        "commit": repo.head if with_repo else "",
        "shallowClone": True,
        "dockerSteps": [step],
    }


@pytest.mark.timeout(300)
def test_soak_stays_flat_and_leaves_nothing(
    sandbox_factory: Any, sample_repo: Any, daemon_factory: Any
) -> None:
    print(f"soak: {JOBS} jobs, SOAK_SEED={SEED}")
    rng = random.Random(SEED)
    kinds = plan(JOBS, rng, SHARES)
    warm = JOBS // 4
    box = sandbox_factory(stalled_max_age=60.0)
    box.add_repo(sample_repo.name, sample_repo.path)
    root: Path = daemon_factory.workspace_root
    networks_before = network_ids()
    daemon = daemon_factory(
        box,
        maximum_num_jobs="2",
        maximum_runtime_per_job=RUNTIME,
        cleanup_task_interval="2s",
        log_level="warn",
    )
    pid = daemon.proc.pid
    kind_of: dict[int, str] = {}
    rss: list[tuple[int, int]] = []  # (jobs finished, VmRSS kB)
    idle: list[tuple[int, int]] = []  # (descriptors, children)
    started = time.monotonic()
    for phase in (kinds[:warm], kinds[warm:]):
        kind_of.update({box.enqueue(_job(kind, sample_repo)): kind for kind in phase})
        cancel_at: dict[int, float] = {}
        next_sample = 0.0
        while True:
            assert daemon.proc.poll() is None, daemon.log_text[-3000:]
            assert time.monotonic() - started < 240, "the soak did not drain in time"
            queued = box.store.queued_count("batches")
            running = box.store.list_jobs(state="processing")
            now = time.monotonic()
            if now >= next_sample:
                rss.append((len(kind_of) - queued - len(running), proc_status_kb(pid, "VmRSS")))
                next_sample = now + 1.0
            if not queued and not running:
                break
            for record in running:
                if kind_of.get(record.id) != "cancel" or record.cancel:
                    continue
                if now >= cancel_at.setdefault(record.id, now + rng.uniform(0.3, 1.5)):
                    box.cancel(record.id)
            time.sleep(0.1)
        time.sleep(SETTLE)
        # The fewest over 2 s: a poll or heartbeat in flight is not a leak.
        looks = []
        for _ in range(10):
            looks.append((len(fd_targets(pid)), len(children_of(pid))))
            time.sleep(0.2)
        idle.append(min(looks))

    wrong = {}
    for job_id, kind in kind_of.items():
        job = box.job(job_id)
        if not expected(kind, job["state"], job["failure_message"], RUNTIME):
            wrong[job_id] = (kind, job["state"], job["failure_message"])
    assert not wrong, wrong

    post = [kb for done, kb in rss if done >= warm]
    assert len(post) >= 10, rss
    drift = max(abs(kb - post[0]) for kb in post) / post[0]
    print(f"soak: RSS {post[0]} -> {post[-1]} kB (drift {drift:.1%}), idle (fds, children) {idle}")
    assert drift <= 0.10, f"RSS drifted {drift:.1%} after warm-up: {post}"
    (warm_fds, _), (end_fds, end_children) = idle
    assert end_fds <= max(warm_fds * 1.10, warm_fds + 1), idle
    assert end_children == 0, idle

    daemon.signal(signal.SIGTERM)
    assert daemon.wait(60) == 0, daemon.log_text[-3000:]
    assert not container_ids(root)
    assert network_ids() <= networks_before
    assert tmpdir_left(root) == [], (
        "the TMPDIR should be empty once the daemon is gone (but the repo cache)"
    )
