"""Idle footprint of the daemon: RSS, CPU and requests per second with an empty queue.

The daemon runs with the default poll interval (1 s) and heartbeat interval (5 s) against an
empty sandbox queue. Every second: VmRSS from /proc/<pid>/status. CPU is the utime+stime delta
from /proc/<pid>/stat over the window; requests are the delta of the executor's own
`src_apiworker_apiclient_queue_total` counter (every queue API call: dequeue, heartbeat, ...)
scraped from `/metrics` at the start and at the end. The reference is the window itself (an idle
process would score 0 CPU and 0 requests), so the figures here are absolute, not ratios.

CPU is shown for the daemon alone and with its children (cutime+cstime of those it has waited
for). The janitor's container listing, once a minute, is an Engine API call over the socket in
the daemon itself (`executor.runtime.docker`); it used to run docker-py in a short-lived child,
which the second figure caught.

Import cost: the daemon runs under `python -X importtime`; every module it imported by the end
of the window (start-up and anything loaded lazily while idle) is counted, with the sum of the
self times, and whether the heavy optional parts (docker-py, the batch engine, rich, the
Kubernetes client, trio, pydantic-settings, ruamel) were loaded at all: an idle daemon should
need none of them. Their memory: a fresh interpreter, making the same start-up decisions as
`executor run` (`executor/__init__.py`), imports the same modules in the order the daemon
finished them (a module's own imports first) and charges each VmRSS step to the module's
top-level package (a submodule listed before its package runs the package's `__init__`, and
that is charged to the package too); the sum is what the imports cost, the rest of the
daemon's RSS is the interpreter itself and what it allocated at run time.

    .venv/bin/python -m bench.idle [--seconds 60] [--quick]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import cpu_seconds, daemon, proc_status_kb, report, sandbox, wait_until

COUNTER = "src_apiworker_apiclient_queue_total"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    """The queue API call counter by `op`, from the daemon's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(COUNTER + "{"):
            labels, _, value = line.rpartition(" ")
            op = labels.split('op="', 1)[1].split('"', 1)[0]
            counts[op] = float(value)
    return counts


def _scrape_ready(port: int) -> dict[str, float] | None:
    try:
        counts = scrape(port)
    except httpx.HTTPError:
        return None
    return counts if counts else None


HEAVY = (
    "docker",
    "executor.batch",
    "rich",
    "kubernetes",
    "requests",
    "trio",
    "pydantic_settings",
    "ruamel",
)

#: Run by `import_memory` in a fresh interpreter: module names (JSON) on stdin, RSS by
#: top-level package (JSON) on stdout. What the daemon went without (marked absent, or trio
#: hidden from httpcore) stays absent.
_ATTRIBUTE = """
import importlib, json, sys
names = json.load(sys.stdin)
def rss():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS:"))
def load(name):
    before = rss()
    try:
        importlib.import_module(name)
    except BaseException:
        pass
    top = name.partition(".")[0]
    cost[top] = cost.get(top, 0) + rss() - before
names = [n for n in names if not n.endswith("__main__")]
if not any(n.startswith("trio.") for n in names):
    # Hidden from httpcore at the daemon's start (and then never imported): without this, a
    # module it only tried, httpcore's `_backends.trio`, would load it here.
    sys.modules["trio"] = None
start, cost = rss(), {}
sys.argv = ["executor", "run"]  # the same start-up decisions as the daemon
load("executor")
for name in names:
    if name not in sys.modules:
        load(name)
json.dump({"total_kb": rss() - start, "by_package": cost}, sys.stdout)
"""


def importtime_lines(log: Path) -> list[tuple[int, str]]:
    """(self time in µs, module) of each `-X importtime` line, in the order imports finished."""
    rows: list[tuple[int, str]] = []
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("import time:") or "| imported package" in line:
            continue
        fields = line.split("|")
        rows.append((int(fields[0].split(":")[1]), fields[2].strip()))
    return rows


def import_cost(rows: list[tuple[int, str]]) -> dict[str, Any]:
    """Modules imported by the daemon and their total self time (`importtime_lines`)."""
    names = [name for _, name in rows]
    self_us = sum(us for us, _ in rows)
    # A package marked absent still gets an import line (a few µs, the failed attempt); one
    # that really loaded shows its submodules.
    loaded = [heavy for heavy in HEAVY if any(n.startswith(heavy + ".") for n in names)]
    # A module that fails to import is tried (and logged) again on every attempt: httpcore
    # looks for the optional `sniffio` on every connection. Count each name once.
    return {"modules": len(set(names)), "self_ms": self_us / 1000, "heavy_loaded": loaded}


def import_memory(rows: list[tuple[int, str]]) -> dict[str, Any]:
    """MiB the daemon's imports cost, in all and by top-level package (see the docstring)."""
    unique = list(dict.fromkeys(name for _, name in rows))
    done = subprocess.run(
        [sys.executable, "-c", _ATTRIBUTE],
        input=json.dumps(unique),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(done.stdout)
    ranked = sorted(found["by_package"].items(), key=lambda kv: -kv[1])
    return {
        "total_mib": round(found["total_kb"] / 1024, 1),
        "by_package_mib": {name: round(kb / 1024, 2) for name, kb in ranked if kb >= 100},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="15 s")
    args = parser.parse_args(argv)
    seconds = 15 if args.quick else args.seconds
    port = free_port()
    with (
        sandbox() as box,
        daemon(
            box,
            python_flags=("-X", "importtime"),
            metrics_port=str(port),
            queue_poll_interval="1s",
            heartbeat_interval="5s",
        ) as proc,
    ):
        before = wait_until(lambda: _scrape_ready(port), timeout=30, interval=0.2)
        time.sleep(2)  # past the startup: imports done, first heartbeat sent
        before = scrape(port)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        all0 = cpu_seconds(proc.pid, children=True)
        rss = [proc_status_kb(proc.pid, "VmRSS")]
        for _ in range(seconds):
            time.sleep(1)
            rss.append(proc_status_kb(proc.pid, "VmRSS"))
        after = scrape(port)
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        all1 = cpu_seconds(proc.pid, children=True)
        imported = importtime_lines(proc.log_path)
        imports, memory = import_cost(imported), import_memory(imported)
        # The engine is shared: another daemon's orphan on this host is this one's to remove,
        # and removing it loads docker-py here (then the listing, too, stays in the daemon).
        text = proc.log_path.read_text(errors="replace")
        removed = text.count("removed orphaned container")
        sdk_loaded = [
            line for line in text.splitlines() if "docker SDK loaded in the daemon" in line
        ]
    window = t1 - t0
    calls = {op: after.get(op, 0) - before.get(op, 0) for op in after}
    total = sum(calls.values())
    result = {
        "seconds": round(window, 2),
        "rss_kb": {"start": rss[0], "max": max(rss), "end": rss[-1]},
        "cpu_s": round(cpu1 - cpu0, 3),
        "cpu_share": (cpu1 - cpu0) / window,
        "cpu_share_with_children": (all1 - all0) / window,
        "requests": calls,
        "requests_per_s": total / window,
        "imports": {**imports, **memory},
        "janitor_removed": removed,
        "docker_sdk_loaded": sdk_loaded,
    }
    biggest = list(memory["by_package_mib"].items())[:8]
    rows = [
        ("window s", round(window, 1)),
        ("RSS start MiB", round(rss[0] / 1024, 1)),
        ("RSS max MiB", round(max(rss) / 1024, 1)),
        ("RSS end MiB", round(rss[-1] / 1024, 1)),
        ("CPU s (utime+stime)", round(cpu1 - cpu0, 3)),
        ("CPU % of one core", round(100 * (cpu1 - cpu0) / window, 2)),
        ("CPU % of one core, with children", round(100 * (all1 - all0) / window, 2)),
        ("requests/s (queue API)", round(total / window, 2)),
        (
            "modules imported / their self time ms",
            f"{imports['modules']} / {imports['self_ms']:.0f}",
        ),
        ("imports MiB (fresh interpreter, same modules)", memory["total_mib"]),
        ("biggest packages MiB", ", ".join(f"{k} {v}" for k, v in biggest)),
        ("containers the janitor removed", removed),
        ("docker-py loaded in the daemon (why)", "; ".join(sdk_loaded) or "no"),
        (
            "heavy parts loaded",
            ", ".join(imports["heavy_loaded"]) or "none",
        ),
        ("requests by op", ", ".join(f"{k}={int(v)}" for k, v in sorted(calls.items()))),
    ]
    report("idle", rows, result)


if __name__ == "__main__":
    main()
