"""Back-pressure: what a daemon sends to a frontend that answers 500, and how soon it recovers.

The daemon connects to a clean sandbox; that sandbox is then replaced, on the same port and
database, by one whose fault layer (`executor.sandbox.faults`, rule
`route=queue,error=1,status=500`) answers every queue call (dequeue, heartbeat) with 500 for
`--seconds` (60); every request it saw is in its fault audit. Then a clean one starts again
with one job waiting: the time from the clean sandbox's start to the job being
dequeued is the recovery figure. The daemon polls every 200 ms (the poll interval of the
issue's measurement, 513 warnings in 108 s) and heartbeats every 5 s (the default).

Reference: without back-off the daemon dequeued once per poll, 5 requests/s at 200 ms.

    .venv/bin/python -m bench.backoff [--seconds 60] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from bench._common import TOKEN, Daemon, bench_env, report, step_job, wait_until
from executor.sandbox.faults import parse_faults, read_audit
from executor.sandbox.server import SandboxServer
from executor.sandbox.state import SandboxSettings
from executor.sandbox.store import SandboxStore


class _Box:
    """What `bench_env` reads from a sandbox: its URL and scratch directory."""

    def __init__(self, url: str, scratch: Path) -> None:
        self.url, self.scratch = url, scratch


def run(seconds: float) -> dict[str, float]:
    scratch = Path(tempfile.mkdtemp(prefix="executor-bench-"))
    data = scratch / "sandbox"
    clean = SandboxSettings(token=TOKEN, data_dir=data)
    failing = SandboxSettings(
        token=TOKEN, data_dir=data, faults=parse_faults("route=queue,error=1,status=500")
    )
    server = SandboxServer(clean).start()
    port = server.port
    log_path = scratch / "daemon.log"
    env = bench_env(
        _Box(server.url, scratch),  # type: ignore[arg-type]
        scratch / "ws",
        queue_poll_interval="200ms",
        heartbeat_interval="5s",
        log_level="info",
    )
    proc = Daemon(env, log_path)
    try:
        wait_until(lambda: "connected to the frontend" in log_path.read_text(), 60)
        server.stop()
        server = SandboxServer(failing, port=port).start()
        started = time.monotonic()
        time.sleep(seconds)
        rows = read_audit(data)
        window = time.monotonic() - started
        dequeues = sum(r.route == "dequeue" for r in rows)
        heartbeats = sum(r.route == "heartbeat" for r in rows)
        job_id = SandboxStore(failing.db_path).enqueue("batches", step_job("", ""))
        server.stop()
        server = SandboxServer(clean, port=port).start()
        recovered = time.monotonic()
        store = SandboxStore(clean.db_path)

        def dequeued() -> bool:
            record = store.get_job(job_id)
            return record is not None and record.state != "queued"

        wait_until(dequeued, 120)
        to_dequeue = time.monotonic() - recovered
        warnings = sum(
            '"dequeue failed' in line and '"warning"' in line
            for line in log_path.read_text().splitlines()
        )
    finally:
        proc.stop()
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "window_s": window,
        "dequeue_rps": dequeues / window,
        "heartbeat_rps": heartbeats / window,
        "requests_rps": (dequeues + heartbeats) / window,
        "dequeue_warnings": float(warnings),
        "first_dequeue_after_recovery_s": to_dequeue,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="a 20 s failing window")
    args = parser.parse_args()
    result = run(20.0 if args.quick else args.seconds)
    report(
        "backoff",
        [
            ("seconds of 500s", result["window_s"]),
            ("dequeue requests/s", result["dequeue_rps"]),
            ("heartbeat requests/s", result["heartbeat_rps"]),
            ("dequeue warnings logged", int(result["dequeue_warnings"])),
            ("first dequeue after recovery, s", result["first_dequeue_after_recovery_s"]),
        ],
        json.loads(json.dumps(result)),
    )


if __name__ == "__main__":
    main()
