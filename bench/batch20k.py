"""Batch change at scale: one batch spec over N workspaces (20,000 by default), each step a
one-line `sed` that changes one file, applied with `executor sandbox batch apply --wait` (the
CLI a site admin runs) and drained by D daemons (4 by default, one slot each), ending with N
changeset specs.

Figures, per 1,000 changesets: wall time (the CLI's start to its exit) against the same number
of raw `docker run`s of the same `sed` at the same concurrency (D at a time, `xargs -P`), each
on its own copy of the repository's files, measured in the same run; daemon CPU per job
(utime+stime of every daemon over the run); sandbox CPU per job (this process: the sandbox runs
in it, in a thread, next to the bench's own polling, so it is an upper bound); peak RSS of
each process (VmHWM of each daemon and of this process; the CLI's from `wait4`); and lost and
duplicated workspaces, both of which must be 0:

- lost: a workspace not `completed`, a job not `completed` or without a `worker_hostname`, or
  fewer changeset specs than workspaces;
- duplicated: a job reset or failed on the way, more jobs handled by the daemons (sum of their
  `executor_jobs_total`) than were enqueued, or more changeset specs than workspaces.

Every workspace is its own hosted repository name, all backed by one small repository.

    .venv/bin/python -m bench.batch20k [--workspaces 20000] [--daemons 4] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import (
    IMAGE,
    TOKEN,
    Bench,
    Daemon,
    cpu_seconds,
    daemon,
    make_repo,
    proc_status_kb,
    report,
    sandbox,
)
from bench.scale import free_port, handled

SED = "sed -i 's/^line 0$/LINE 0/' src/file0.txt"
SPEC_HEAD = """name: bench-batch20k
description: one-line sed over many workspaces
on:
"""
SPEC_TAIL = f"""steps:
  - run: {SED}
    container: {IMAGE}
changesetTemplate:
  title: Bench batch20k
  body: bench
  branch: bench-batch20k
  commit:
    message: bench batch20k
  published: false
"""


def host_repos(box: Bench, n: int) -> tuple[list[str], Path]:
    base, _ = make_repo(box.scratch, files=5)
    names = [f"github.com/bench/b20k-{i:05d}" for i in range(n)]
    for name in names:
        box.add_repo(name, base, mode="register")
    return names, base


def write_spec(where: Path, names: list[str]) -> Path:
    path = where / "spec.yaml"
    path.write_text(SPEC_HEAD + "".join(f"  - repository: {n}\n" for n in names) + SPEC_TAIL)
    return path


def apply(box: Bench, spec: Path, timeout_s: int) -> tuple[float, int, dict[str, Any]]:
    """`executor sandbox batch apply --wait --json`; (seconds, the CLI's max RSS kB, status)."""
    argv = [sys.executable, "-m", "executor", "sandbox", "batch", "apply", str(spec)]
    argv += [
        "--wait",
        "--json",
        "--url",
        box.url,
        "--token",
        TOKEN,
        "--wait-timeout",
        f"{timeout_s}s",
    ]
    out = box.scratch / "apply.out"
    err = box.scratch / "apply.err"
    start = time.perf_counter()
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(argv, stdout=fo, stderr=fe)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"batch apply exited {proc.returncode}: {err.read_text()[-2000:]}")
    return elapsed, usage.ru_maxrss, json.loads(out.read_text())


def raw_docker(base: Path, where: Path, n: int, concurrency: int) -> float:
    """`n` raw `docker run`s of the step, `concurrency` at a time, each on its own copy."""
    dirs = where / "raw"
    dirs.mkdir()
    for i in range(n):
        shutil.copytree(base, dirs / str(i), ignore=shutil.ignore_patterns(".git"))
    script = f'docker run --rm -v "{dirs}/$0:/data" -w /data {IMAGE} sh -c "$1"'
    argv = ["xargs", "-P", str(concurrency), "-I{}", "sh", "-c", script, "{}", SED]
    start = time.perf_counter()
    subprocess.run(
        argv,
        input="\n".join(str(i) for i in range(n)),
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - start
    changed = sum(1 for i in range(n) if "LINE 0" in (dirs / str(i) / "src/file0.txt").read_text())
    if changed != n:
        raise RuntimeError(f"raw docker run changed {changed} of {n} files")
    shutil.rmtree(dirs, ignore_errors=True)
    return elapsed


def audit(box: Bench, n: int, status: dict[str, Any], handled_total: int) -> dict[str, int]:
    workspaces = status["workspaces"]
    specs = len(status["changeset_specs"])
    records = box.records()
    lost = sum(1 for w in workspaces if w["state"] != "completed")
    lost += sum(1 for r in records if r.state != "completed" or not r.worker_hostname)
    lost += max(0, n - specs) + max(0, n - len(workspaces))
    retried = sum(1 for r in records if r.num_resets or r.num_failures)
    return {
        "workspaces": len(workspaces),
        "jobs": len(records),
        "changeset_specs": specs,
        "lost": lost,
        "duplicated": retried + max(0, handled_total - n) + max(0, specs - n),
        "handled_by_daemons": handled_total,
        "executors": len({r.worker_hostname for r in records}),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=20000)
    parser.add_argument("--daemons", type=int, default=4)
    parser.add_argument("--raw", type=int, default=1000, help="raw docker runs (at most N)")
    parser.add_argument("--quick", action="store_true", help="1,000 workspaces")
    parser.add_argument(
        "--no-raw-after",
        action="store_true",
        help="skip the second raw sample after the batch (it brackets a long run's load drift)",
    )
    args = parser.parse_args(argv)
    n = 1000 if args.quick else args.workspaces
    d = args.daemons
    raw_n = min(n, args.raw)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_start = os.getloadavg()
    with sandbox() as box, contextlib.ExitStack() as stack:
        names, base = host_repos(box, n)
        spec = write_spec(box.scratch, names)
        raw_s = raw_docker(base, box.scratch, raw_n, d)
        ports = [free_port() for _ in range(d)]
        procs: list[Daemon] = [
            stack.enter_context(daemon(box, f"bench-{i}", metrics_port=str(port)))
            for i, port in enumerate(ports)
        ]
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        wall_s, cli_rss, status = apply(box, spec, timeout_s=max(1800, n))
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        daemon_cpu = [cpu_seconds(p.pid) for p in procs]
        daemon_hwm = [proc_status_kb(p.pid, "VmHWM") for p in procs]
        handled_total = sum(handled(port) for port in ports)
        counts = audit(box, n, status, handled_total)
        # A full run lasts over an hour on shared cores: the raw sample is taken again after it
        # (daemons stopped first, so it competes with nothing of ours) and the ratio uses the
        # mean of both samples, each of which is reported.
        stack.close()
        raw_after_s = None if args.no_raw_after else raw_docker(base, box.scratch, raw_n, d)
    sandbox_cpu = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
    self_hwm = proc_status_kb(os.getpid(), "VmHWM")
    per_k = 1000 / n
    raw_samples = [raw_s] if raw_after_s is None else [raw_s, raw_after_s]
    raw_per_k = sum(raw_samples) / len(raw_samples) * 1000 / raw_n
    result = {
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "loadavg_start": [round(x, 2) for x in load_start],
        "workspaces": n,
        "daemons": d,
        "wall_s": wall_s,
        "wall_s_per_1000": wall_s * per_k,
        "raw_docker_runs": raw_n,
        "raw_s": raw_s,
        "raw_after_s": raw_after_s,
        "raw_s_per_1000": raw_per_k,
        "ratio_to_raw": (wall_s * per_k) / raw_per_k,
        "daemon_cpu_s": sum(daemon_cpu),
        "daemon_cpu_ms_per_job": 1000 * sum(daemon_cpu) / n,
        "sandbox_cpu_s": sandbox_cpu,
        "sandbox_cpu_ms_per_job": 1000 * sandbox_cpu / n,
        "peak_rss_kb": {"daemons": daemon_hwm, "sandbox_and_bench": self_hwm, "cli": cli_rss},
        **counts,
    }
    rows = [
        ("workspaces / daemons", f"{n} / {d}"),
        ("batch apply --wait s", wall_s),
        ("  per 1,000 changesets s", wall_s * per_k),
        (
            f"raw docker run x{raw_n} (-P{d}) s, before / after",
            " / ".join(f"{x:.1f}" for x in raw_samples),
        ),
        ("  per 1,000 s (mean)", raw_per_k),
        ("ratio (per 1,000)", result["ratio_to_raw"]),
        ("daemon CPU ms per job", result["daemon_cpu_ms_per_job"]),
        ("sandbox CPU ms per job (incl. bench)", result["sandbox_cpu_ms_per_job"]),
        ("peak RSS MiB daemons", ", ".join(f"{k / 1024:.1f}" for k in daemon_hwm)),
        ("peak RSS MiB sandbox (+bench)", round(self_hwm / 1024, 1)),
        ("peak RSS MiB CLI", round(cli_rss / 1024, 1)),
        ("changeset specs", counts["changeset_specs"]),
        ("lost", counts["lost"]),
        ("duplicated", counts["duplicated"]),
    ]
    report("batch20k", rows, result)
    if counts["lost"] or counts["duplicated"]:
        raise SystemExit("lost or duplicated workspaces")


if __name__ == "__main__":
    main()
