"""Container HEALTHCHECK: does the daemon's event loop answer `GET /healthz` with 200?

`/healthz` (EXECUTOR_HEALTH_SERVER_ADDR; the image sets 127.0.0.1:8080) is answered from the
daemon's event loop itself: a wedged loop answers nothing (the probe times out), a loop that
stopped heartbeating or dequeuing answers 503. Without a health address we fall back to the
metrics endpoint (served from a thread: it only proves the process is alive), and without that
to `executor validate --config-only`. Stdlib only: runs with the venv's interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host


def _probe(url: str, needle: str = "") -> int:
    try:
        with urllib.request.urlopen(url, timeout=4) as resp:
            body = resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        print(
            f"unhealthy: {url}: {exc.code} {exc.read().decode('utf-8', 'replace')}", file=sys.stderr
        )
        return 1
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if needle and needle not in body:
        print(f"unhealthy: {url} has no {needle}", file=sys.stderr)
        return 1
    return 0


addr = os.environ.get("EXECUTOR_HEALTH_SERVER_ADDR", "")
if addr:
    host, _, port = addr.rpartition(":")
    sys.exit(_probe(f"http://{_local(host)}:{port}/healthz"))
port = os.environ.get("EXECUTOR_METRICS_PORT", "0") or "0"
if port == "0":
    sys.exit(subprocess.call(["executor", "validate", "--config-only"]))
host = _local(os.environ.get("EXECUTOR_METRICS_HOST", "127.0.0.1"))
sys.exit(_probe(f"http://{host}:{port}/metrics", "src_executor_processor_handlers"))
