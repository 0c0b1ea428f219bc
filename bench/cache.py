"""Cache: applying a batch spec over N workspaces (one hosted repository each), then
re-applying it unchanged. The second apply must start no container at all: every workspace's
step results are in the sandbox's cache. Figures: containers started during each apply
(`docker events --filter label=executor.job --filter event=start`, kept to our daemon's
containers by their `executor.lock` label) and the second apply's time as a ratio of the first.

Each apply is one `executor sandbox batch apply SPEC --wait --json` (the CLI a site admin
runs), timed from the command's start to its exit; one daemon with two slots runs the jobs.

    .venv/bin/python -m bench.cache [--workspaces 50] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import IMAGE, TOKEN, Bench, daemon, make_repo, report, sandbox

SPEC_HEAD = """name: bench-cache
description: re-apply an unchanged spec
on:
"""
SPEC_TAIL = f"""steps:
  - run: echo cached >> README.md
    container: {IMAGE}
changesetTemplate:
  title: Bench cache
  body: bench
  branch: bench-cache
  commit:
    message: bench cache
  published: false
"""


def write_spec(where: Path, names: list[str]) -> Path:
    on = "".join(f"  - repository: {name}\n" for name in names)
    path = where / "spec.yaml"
    path.write_text(SPEC_HEAD + on + SPEC_TAIL)
    return path


class StartEvents:
    """`docker events` for container starts of jobs, filtered to our lock-file prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        fmt = '{{index .Actor.Attributes "executor.lock"}}'
        argv = ["docker", "events", "--filter", "label=executor.job"]
        argv += ["--filter", "event=start", "--format", fmt]
        self.out = Path(prefix).parent / "docker-events.txt"
        self._fh = self.out.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._fh, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # let `docker events` subscribe before anything starts

    def count(self) -> int:
        self._fh.flush()
        lines = self.out.read_text().splitlines()
        return sum(1 for line in lines if line.startswith(self.prefix))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._fh.close()


def apply(box: Bench, spec: Path) -> tuple[float, dict[str, Any]]:
    """Run `executor sandbox batch apply --wait --json`; (seconds, final status)."""
    argv = [sys.executable, "-m", "executor", "sandbox", "batch", "apply", str(spec)]
    argv += ["--wait", "--json", "--url", box.url, "--token", TOKEN, "--wait-timeout", "10m"]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"batch apply exited {done.returncode}: {done.stderr or done.stdout}")
    return elapsed, json.loads(done.stdout)


def host_repos(box: Bench, n: int) -> list[str]:
    base, _ = make_repo(box.scratch, files=5)
    names = [f"github.com/bench/cache-{i:03d}" for i in range(n)]
    for name in names:
        box.add_repo(name, base)
    return names


def _summary(status: dict[str, Any]) -> dict[str, int]:
    ws = status["workspaces"]
    return {
        "workspaces": len(ws),
        "jobs": sum(1 for w in ws if w["job_id"] is not None),
        "cache_hits": sum(1 for w in ws if w["cache"] == "hit"),
        "completed": sum(1 for w in ws if w["state"] == "completed"),
        "changeset_specs": len(status["changeset_specs"]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="10 workspaces")
    args = parser.parse_args(argv)
    n = 10 if args.quick else args.workspaces
    with sandbox() as box:
        spec = write_spec(box.scratch, host_repos(box, n))
        events = StartEvents(str(box.scratch / "ws-bench-0"))
        try:
            with daemon(box, maximum_num_jobs="2"):
                first_s, first = apply(box, spec)
                time.sleep(1)  # late `docker events` lines
                started_first = events.count()
                second_s, second = apply(box, spec)
                time.sleep(1)
                started_second = events.count() - started_first
        finally:
            events.stop()
    result = {
        "workspaces": n,
        "first": {"seconds": first_s, "containers_started": started_first, **_summary(first)},
        "second": {"seconds": second_s, "containers_started": started_second, **_summary(second)},
        "ratio_second_to_first": second_s / first_s,
    }
    rows = [
        ("workspaces", n),
        ("first apply s", first_s),
        ("first apply containers started", started_first),
        ("first apply jobs", result["first"]["jobs"]),
        ("second apply s", second_s),
        ("second apply containers started", started_second),
        ("second apply jobs", result["second"]["jobs"]),
        ("second apply cache hits", result["second"]["cache_hits"]),
        ("ratio second / first (time)", second_s / first_s),
    ]
    report("cache", rows, result)
    if started_second:
        raise SystemExit("the second apply started containers")


if __name__ == "__main__":
    main()
