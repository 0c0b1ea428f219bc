"""Helpers for the soak and crash-recovery tests: a daemon's processes read from /proc, and
what it may leave behind (step containers, docker networks, workspace directories).

Plain functions, no fixtures: imported by `tests/e2e/test_soak_e2e.py` and
`tests/e2e/test_crash_recovery_e2e.py`. A process's children, descriptors and memory are read
by `bench._common` (`children_of`, `fd_targets`, `proc_status_kb`), shared with `bench.soak`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = [
    "cmdline",
    "container_ids",
    "network_ids",
    "processes_mentioning",
    "running_containers",
]


def cmdline(pid: int) -> list[str]:
    """The argv of `pid` ([] once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def processes_mentioning(text: str) -> list[tuple[int, list[str]]]:
    """Live processes whose argv mentions `text` (e.g. a daemon's TMPDIR: its `git -C …` and
    `docker run -v …` children), with their argv."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            argv = cmdline(int(entry))
            if any(text in arg for arg in argv):
                found.append((int(entry), argv))
    return found


def _docker(*args: str) -> list[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
    return [line for line in done.stdout.splitlines() if line]


def container_ids(root: Path, job_id: int | None = None) -> list[str]:
    """Step containers (any state) whose owner's liveness lock lies under `root`, i.e. that a
    daemon with TMPDIR `root` started (other tests' daemons use other roots)."""
    label = "executor.job" if job_id is None else f"executor.job={job_id}"
    rows = _docker(
        "ps", "-a", "--filter", f"label={label}", "--format", '{{.ID}} {{.Label "executor.lock"}}'
    )
    return [cid for cid, _, lock in (r.partition(" ") for r in rows) if lock.startswith(str(root))]


def running_containers(root: Path, job_id: int) -> list[str]:
    """Like `container_ids`, running ones only."""
    running = set(_docker("ps", "-q", "--no-trunc", "--filter", f"label=executor.job={job_id}"))
    return [c for c in container_ids(root, job_id) if any(r.startswith(c) for r in running)]


def network_ids() -> set[str]:
    """Docker networks an executor could own: labelled `executor.name` or `executor.job`, or
    named `executor-…` (the daemon creates none; a test compares the set before and after)."""
    found = set(_docker("network", "ls", "-q", "--no-trunc", "--filter", "name=executor-"))
    for label in ("executor.name", "executor.job"):
        found |= set(_docker("network", "ls", "-q", "--no-trunc", "--filter", f"label={label}"))
    return found
