"""Cancel latency: a job cancelled in the sandbox → its step container gone.

The frontend's cancel reaches an executor only in the answer to its next heartbeat
(`cancelIds`, spec §8.3), so the latency is bounded by the heartbeat interval plus the
`docker stop` and removal. One daemon (default settings but the heartbeat), N jobs one after
the other, each a step that exits at once on SIGTERM (`trap 'exit 0' TERM; sleep 1000 & wait`,
so the figure is the executor's, not a step's grace); each is cancelled through the sandbox's
admin API once its container has run for 0.3 to 1.3 s (spread over the heartbeat phase), and the
time is measured until `docker ps -a` no longer lists the container (polled every 50 ms).
Figures: p50 and p90 at the default 5 s heartbeat and at 1 s.

    .venv/bin/python -m bench.cancel [--cancels 20] [--quick]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import time
from typing import Any

from bench._common import FINAL, IMAGE, Bench, daemon, percentile, report, sandbox, wait_until

STEP = "trap 'exit 0' TERM; sleep 1000 & wait"


def containers(job_id: int, prefix: str) -> list[str]:
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label=executor.job={job_id}",
            "--format",
            '{{.ID}} {{.Label "executor.lock"}}',
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [
        c
        for c, _, lock in (ln.partition(" ") for ln in out.splitlines())
        if lock.startswith(prefix)
    ]


def one_cancel(box: Bench, job_id: int, prefix: str, after: float) -> float:
    """Seconds from the cancel to the container's disappearance."""
    wait_until(lambda: containers(job_id, prefix), timeout=120, interval=0.05)
    time.sleep(after)
    box.client.post(f"/.sandbox/jobs/{job_id}/cancel").raise_for_status()
    start = time.monotonic()
    wait_until(lambda: not containers(job_id, prefix), timeout=120, interval=0.05)
    took = time.monotonic() - start
    wait_until(lambda: box.record(job_id).state in FINAL, timeout=120, interval=0.1)
    return took


def cancels(box: Bench, heartbeat: str, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    prefix = str(box.scratch / f"ws-hb-{heartbeat}")
    body: dict[str, Any] = {
        "dockerSteps": [{"key": "", "image": IMAGE, "commands": [STEP], "dir": ".", "env": []}]
    }
    found = []
    with daemon(
        box,
        f"hb-{heartbeat}",
        heartbeat_interval=heartbeat,
        queue_poll_interval="1s",
        docker_stop_timeout="5s",
    ):
        for _ in range(n):
            found.append(one_cancel(box, box.enqueue(body), prefix, 0.3 + rng.random()))
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cancels", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 cancels each")
    args = parser.parse_args(argv)
    n = 5 if args.quick else args.cancels
    result: dict[str, Any] = {"cancels": n}
    rows: list[tuple[str, Any]] = [("cancels per setting", n)]
    with sandbox() as box:
        for heartbeat in ("5s", "1s"):
            got = cancels(box, heartbeat, n, seed=len(heartbeat) + n)
            result[f"heartbeat_{heartbeat}"] = {
                "p50_s": percentile(got, 50),
                "p90_s": percentile(got, 90),
                "max_s": max(got),
                "all_s": [round(v, 3) for v in got],
            }
            rows += [
                (f"heartbeat {heartbeat}: p50 s", percentile(got, 50)),
                (f"heartbeat {heartbeat}: p90 s", percentile(got, 90)),
                (f"heartbeat {heartbeat}: max s", max(got)),
            ]
    report("cancel", rows, result)


if __name__ == "__main__":
    main()
