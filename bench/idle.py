"""Idle footprint of the daemon: RSS, CPU and requests per second with an empty queue.

The daemon runs with the default poll interval (1 s) and heartbeat interval (5 s) against an
empty sandbox queue. Every second: VmRSS from /proc/<pid>/status. CPU is the utime+stime delta
from /proc/<pid>/stat over the window; requests are the delta of the executor's own
`src_apiworker_apiclient_queue_total` counter (every queue API call: dequeue, heartbeat, ...)
scraped from `/metrics` at the start and at the end. The reference is the window itself (an idle
process would score 0 CPU and 0 requests), so the figures here are absolute, not ratios.

Import cost: the daemon runs under `python -X importtime`; every module it imported by the end
of the window (start-up and anything loaded lazily while idle) is counted, with the sum of the
self times, and whether the heavy optional parts (docker-py, the batch engine, rich, the
Kubernetes client, trio, pydantic-settings) were loaded at all: an idle daemon should need
none of them.

    .venv/bin/python -m bench.idle [--seconds 60] [--quick]
"""

from __future__ import annotations

import argparse
import socket
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
)


def import_cost(log: Path) -> dict[str, Any]:
    """Modules imported by the daemon and their total self time, from `-X importtime` lines."""
    names: list[str] = []
    self_us = 0
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("import time:") or "| imported package" in line:
            continue
        fields = line.split("|")
        self_us += int(fields[0].split(":")[1])
        names.append(fields[2].strip())
    # A package marked absent still gets an import line (a few µs, the failed attempt); one
    # that really loaded shows its submodules.
    loaded = [heavy for heavy in HEAVY if any(n.startswith(heavy + ".") for n in names)]
    # A module that fails to import is tried (and logged) again on every attempt: httpcore
    # looks for the optional `sniffio` on every connection. Count each name once.
    return {"modules": len(set(names)), "self_ms": self_us / 1000, "heavy_loaded": loaded}


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
        rss = [proc_status_kb(proc.pid, "VmRSS")]
        for _ in range(seconds):
            time.sleep(1)
            rss.append(proc_status_kb(proc.pid, "VmRSS"))
        after = scrape(port)
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        imports = import_cost(proc.log_path)
    window = t1 - t0
    calls = {op: after.get(op, 0) - before.get(op, 0) for op in after}
    total = sum(calls.values())
    result = {
        "seconds": round(window, 2),
        "rss_kb": {"start": rss[0], "max": max(rss), "end": rss[-1]},
        "cpu_s": round(cpu1 - cpu0, 3),
        "cpu_share": (cpu1 - cpu0) / window,
        "requests": calls,
        "requests_per_s": total / window,
        "imports": imports,
    }
    rows = [
        ("window s", round(window, 1)),
        ("RSS start MiB", round(rss[0] / 1024, 1)),
        ("RSS max MiB", round(max(rss) / 1024, 1)),
        ("RSS end MiB", round(rss[-1] / 1024, 1)),
        ("CPU s (utime+stime)", round(cpu1 - cpu0, 3)),
        ("CPU % of one core", round(100 * (cpu1 - cpu0) / window, 2)),
        ("requests/s (queue API)", round(total / window, 2)),
        (
            "modules imported / their self time ms",
            f"{imports['modules']} / {imports['self_ms']:.0f}",
        ),
        (
            "heavy parts loaded",
            ", ".join(imports["heavy_loaded"]) or "none",
        ),
        ("requests by op", ", ".join(f"{k}={int(v)}" for k, v in sorted(calls.items()))),
    ]
    report("idle", rows, result)


if __name__ == "__main__":
    main()
