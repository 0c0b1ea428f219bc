"""Log path: one step printing 500 MB to stdout. The daemon's peak RSS (VmHWM of
/proc/<pid>/status, before and after the job) and its capture rate (bytes / the step entry's
`durationMs`) against `docker run ... > /dev/null` of the same command, same run. Checks that the
stored log entry is bounded: head + tail around the omission marker, within
`EXECUTOR_LOG_ENTRY_MAX_BYTES` (default 16M) plus the marker and the `stdout: ` prefixes. The
daemon's CPU seconds over the job are reported too: on a loaded machine they move less than the
rate does.

    .venv/bin/python -m bench.logpath [--mb 500] [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import time

from bench._common import (
    IMAGE,
    cpu_seconds,
    daemon,
    proc_status_kb,
    report,
    sandbox,
    step_job,
    wait_until,
)

LINE = "0123456789abcdef" * 4  # `yes` prints 63 characters + newline: 64-byte lines
MARKER = "omitted by the executor"
CAP = 16 * 1024 * 1024


def command(nbytes: int) -> str:
    return f"yes {LINE[:-1]} | head -c {nbytes}"


def docker_to_null(nbytes: int) -> float:
    """Seconds for `docker run --rm IMAGE sh -c CMD > /dev/null`."""
    start = time.perf_counter()
    argv = ["docker", "run", "--rm", IMAGE, "sh", "-c", command(nbytes)]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="50 MB")
    args = parser.parse_args(argv)
    mb = 50 if args.quick else args.mb
    nbytes = mb * 1024 * 1024
    with sandbox() as box, daemon(box, maximum_num_jobs="1") as proc:
        warm = box.enqueue(step_job("", "", "echo warm"))
        wait_until(lambda: box.record(warm).state == "completed", 60)
        hwm_before = proc_status_kb(proc.pid, "VmHWM")
        cpu_before = cpu_seconds(proc.pid)
        job_id = box.enqueue(step_job("", "", command(nbytes)))
        peak_rss = 0
        deadline = time.monotonic() + 600
        while box.record(job_id).state in ("queued", "processing"):
            peak_rss = max(peak_rss, proc_status_kb(proc.pid, "VmRSS"))
            if time.monotonic() > deadline:
                raise TimeoutError("the log job did not finish in 600 s")
            time.sleep(0.2)
        hwm_after = proc_status_kb(proc.pid, "VmHWM")
        cpu = cpu_seconds(proc.pid) - cpu_before
        record = box.record(job_id)
    entry = next(e for e in record.execution_logs if e["key"] == "step.docker.0")
    step_s = entry["durationMs"] / 1000
    out = entry.get("out", "")
    baseline = docker_to_null(nbytes)
    bounded = MARKER in out and len(out.encode()) <= CAP * 1.2
    result = {
        "mb": mb,
        "state": record.state,
        "vmhwm_kb": {"before": hwm_before, "after": hwm_after},
        "vmrss_peak_sampled_kb": peak_rss,
        "step_s": step_s,
        "daemon_cpu_s": cpu,
        "capture_mb_per_s": mb / step_s,
        "docker_null_s": baseline,
        "docker_null_mb_per_s": mb / baseline,
        "ratio_rate": (mb / step_s) / (mb / baseline),
        "stored_out_bytes": len(out.encode()),
        "bounded_with_marker": bounded,
    }
    rows = [
        ("MB printed", mb),
        ("job state", record.state),
        ("daemon VmHWM before job MiB", round(hwm_before / 1024, 1)),
        ("daemon VmHWM after job MiB", round(hwm_after / 1024, 1)),
        ("step duration s (durationMs)", step_s),
        ("daemon CPU s during the job (utime+stime)", cpu),
        ("daemon capture MB/s", mb / step_s),
        ("docker run > /dev/null s", baseline),
        ("docker run > /dev/null MB/s", mb / baseline),
        ("ratio capture / docker>null (rate)", result["ratio_rate"]),
        ("stored entry bytes", len(out.encode())),
        ("stored entry bounded, has marker", bounded),
    ]
    report("logpath", rows, result)
    if not bounded:
        raise SystemExit("the stored log entry is not bounded")


if __name__ == "__main__":
    main()
