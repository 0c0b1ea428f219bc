"""Crash recovery: `kill -9` the daemon at real points of a job's life, 20 times, restarting it
on the same TMPDIR each time; every job must end exactly once and nothing may be left behind.

Each of the 20 jobs is a victim, killed once, in one of three phases (seeded; the seed is
printed, `CRASH_SEED=N` replays it, `CRASH_KILLS=N` changes the count):

- **clone**: the sandbox delays every git request of the job (`route=git,jobs=…` fault); the
  kill comes while the daemon's `git fetch` child is running, seen in /proc. Left behind: the
  job's workspace.
- **step**: the step prints a line, then sleeps; the kill comes once that line was uploaded to
  the sandbox while the container still runs. Left behind: the running container (its
  `docker run` CLI sits in its own session and outlives the daemon), the workspace, and the
  job's docker config directory (these jobs carry registry credentials, `dockerAuthConfig`).
- **flush**, in one of two variants (seeded):
  - *in flight*: the sandbox delays the job's mark before handling it (`latency`); the kill
    comes once the final log flush was accepted (`teardown.fs` has its exit code), i.e. with
    the mark on the wire. The dead caller's request is cancelled, as on a Go frontend: the
    mark must not count, the job is requeued once stalled and run again;
  - *answered*: the sandbox handles the mark at once and holds the answer back (`hold`); the
    kill comes once the sandbox shows the job completed, before the daemon heard so. The mark
    counts; the job must never run again.

After a kill a new daemon starts at once (one slot; the last one two), with the same TMPDIR and
a new executor name (`<hostname>-<uuid>`, fixed per process as in Sourcegraph: there is no
variable to pin it). The sandbox requeues a stalled job after 2 s without heartbeats.

Checks: every job `completed` with exactly one accepted mark (`fault_audit`); resets as the
phase implies (one, except an *answered* flush kill: none); the janitors remove every
orphan while the last daemon runs; after it exits (status 0) there is no container carrying a
lock label under our TMPDIR, no process of the killed daemons (their `git` and `docker run`
children) still running, no new executor network, and nothing at all in the TMPDIR.
"""

from __future__ import annotations

import base64
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures_daemon import wait_for
from leftovers import (
    cmdline,
    container_ids,
    network_ids,
    processes_mentioning,
    running_containers,
)

from bench._common import children_of, tmpdir_left
from executor.sandbox.faults import FaultRule, accepted_marks, read_audit

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "executor-busybox:latest"
KILLS = int(os.environ.get("CRASH_KILLS", "20"))
SEED = int(os.environ.get("CRASH_SEED", str(random.randrange(1 << 30))))
STALLED = 2.0
MARK_DELAY = 2.0
FINAL = ("completed", "errored", "failed", "canceled")


def _plan(rng: random.Random) -> list[str]:
    """The phase of each victim, as even as the count allows; flush kills in two variants."""
    phases = [("clone", "step", "flush")[i % 3] for i in range(KILLS)]
    rng.shuffle(phases)
    return [p if p != "flush" else rng.choice(("flush-inflight", "flush-answered")) for p in phases]


def _job(repo: Any, n: int, phase: str) -> dict[str, Any]:
    script = [f"echo started-{n}"]
    if phase == "step":
        script += ["sleep 3", f"echo finished-{n}"]
    step = {"key": "", "image": IMAGE, "commands": script, "dir": ".", "env": []}
    body: dict[str, Any] = {
        "repositoryName": repo.name,
        "commit": repo.head,
        "shallowClone": True,
        "dockerSteps": [step],
    }
    if phase == "step":
        auth = base64.b64encode(f"crash:secret-{n}".encode()).decode()
        body["dockerAuthConfig"] = {"auths": {"registry.invalid": {"auth": auth}}}
    return body


def _logs(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A sandbox job's execution log entries by key."""
    return {e["key"]: e for e in job["execution_logs"]}


def _fetching(pid: int) -> bool:
    return any("fetch" in cmdline(child) for child in children_of(pid))


def _reached(box: Any, daemon: Any, root: Path, n: int, phase: str) -> bool:
    """Whether job `n` is in `phase` right now."""
    job = box.job(n)
    if phase == "flush-answered":
        return bool(job["state"] == "completed")
    if job["state"] != "processing":
        return False
    if phase == "clone":
        return _fetching(daemon.proc.pid)
    logs = _logs(job)
    if phase == "step":
        entry = logs.get("step.docker.0", {})
        return (
            f"stdout: started-{n}" in entry.get("out", "")
            and entry.get("exitCode") is None
            and bool(running_containers(root, n))
        )
    return logs.get("teardown.fs", {}).get("exitCode") is not None


@pytest.mark.timeout(600)
def test_kill_9_at_random_points_every_job_ends_once(
    sandbox_factory: Any, sample_repo: Any, daemon_factory: Any
) -> None:
    print(f"crash recovery: {KILLS} kills, CRASH_SEED={SEED}")
    rng = random.Random(SEED)
    plan = _plan(rng)
    ids = range(1, KILLS + 1)  # a fresh sandbox numbers jobs from 1
    by_phase = {
        key: tuple(i for i, phase in zip(ids, plan, strict=True) if phase == key)
        for key in ("clone", "flush-inflight", "flush-answered")
    }
    rules = [
        FaultRule(route="git", latency=0.5, jobs=by_phase["clone"]),
        FaultRule(route="marks", latency=MARK_DELAY, jobs=by_phase["flush-inflight"]),
        FaultRule(route="marks", hold=MARK_DELAY, jobs=by_phase["flush-answered"]),
    ]
    # A rule without jobs would pick every job: keep only the ones that have victims, plus an
    # inert one so the audit (which needs the middleware) is always on.
    faults = (*(r for r in rules if r.jobs), FaultRule(path="^/never$"))
    box = sandbox_factory(faults=faults, stalled_max_age=STALLED, resetter_interval=0.2)
    box.add_repo(sample_repo.name, sample_repo.path)
    enqueued = [box.enqueue(_job(sample_repo, n, p)) for n, p in zip(ids, plan, strict=True)]
    assert enqueued == list(ids)
    root: Path = daemon_factory.workspace_root
    networks_before = network_ids()
    # The clone phase is a fetch held up on the network (the git route's latency): with the
    # repository cache on, every clone after the first would be a local copy too quick to kill
    # in. A kill -9 in the middle of a cache fill is `tests/integration/test_repocache.py`'s.
    knobs = {"heartbeat_interval": "500ms", "cleanup_task_interval": "1s", "repo_cache_size": "0"}

    killed_at: dict[int, float] = {}
    victims: dict[int, str] = {}  # job ID -> name of the executor killed while running it
    daemon = daemon_factory(box, **knobs)
    for n, phase in zip(ids, plan, strict=True):

        def now_in_phase(d: Any = daemon, n: int = n, phase: str = phase) -> bool:
            return _reached(box, d, root, n, phase)

        reached = wait_for(now_in_phase, 90, 0.03)
        assert reached, (n, phase, box.job(n)["state"], daemon.log_text[-2000:])
        if phase == "flush-inflight":
            time.sleep(0.5)  # the mark leaves right after the flush; let it get on the wire
        victims[n] = box.job(n)["worker_hostname"]
        daemon.kill()
        killed_at[n] = time.time()
        if phase == "step":
            assert container_ids(root, n), "a killed daemon's step container should outlive it"
            assert list(root.glob("executor-docker-config-*")), "so should its docker config"
        if phase in ("clone", "step"):
            assert list(root.glob(f"workspace-{n}-*")), "the workspace should outlive the kill"
        last = n == KILLS
        daemon = daemon_factory(box, maximum_num_jobs="2" if last else "1", **knobs)

    def settled() -> bool:
        return all(j["state"] in FINAL for j in box.jobs())

    assert wait_for(settled, 240, 0.5), [(j["id"], j["state"]) for j in box.jobs()]

    def clean() -> bool:
        dirs = [*root.glob("workspace-*"), *root.glob("executor-docker-config-*")]
        dirs += [*root.glob(".workspace-*.owner"), *root.glob(".executor-docker-config-*.owner")]
        return not container_ids(root) and not dirs

    assert wait_for(clean, 30, 0.5), (container_ids(root), sorted(os.listdir(root)))
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(60) == 0, daemon.log_text[-2000:]

    audit = read_audit(box.settings.data_dir)
    assert accepted_marks(audit) == dict.fromkeys(ids, 1), accepted_marks(audit)
    for n, phase in zip(ids, plan, strict=True):
        job = box.job(n)
        assert job["state"] == "completed", (n, phase, job["state"], job["failure_message"])
        marks = [r for r in audit if r.job_id == n and r.route.startswith("mark")]
        dead = [r for r in marks if r.executor == victims[n]]
        if phase == "flush-inflight":
            # Sent before the kill, handled after it: cancelled with its caller, not applied.
            assert len(dead) == 1 and dead[0].at > killed_at[n], (killed_at[n], marks)
            assert dead[0].status == 499, marks
        elif phase == "flush-answered":
            # Applied before the kill, its answer held past it; nothing more was sent.
            assert marks == dead and [m.status for m in marks] == [204], marks
            assert killed_at[n] - dead[0].at < MARK_DELAY, (killed_at[n], marks)
        else:
            assert not dead, marks
        expected_resets = 0 if phase == "flush-answered" else 1
        assert job["num_resets"] == expected_resets, (n, phase, job["num_resets"])
        out = _logs(box.job(n))["step.docker.0"]["out"]
        assert f"stdout: started-{n}" in out, (n, out)
        if phase == "step":
            assert f"stdout: finished-{n}" in out, (n, out)

    counts = {p: plan.count(p) for p in sorted(set(plan))}
    print(f"crash recovery: kills by phase {counts}; every job completed, one mark each")
    assert not container_ids(root)
    # The killed daemons' `git` and `docker run` children (own session) are gone, too.
    gone = wait_for(lambda: not processes_mentioning(str(root)), 15)
    assert gone, processes_mentioning(str(root))
    assert network_ids() <= networks_before
    assert tmpdir_left(root) == [], (
        "the TMPDIR should be empty after the last daemon (but the repo cache)"
    )
