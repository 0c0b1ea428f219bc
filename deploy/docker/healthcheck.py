"""Container HEALTHCHECK: is the daemon's /metrics endpoint answering with executor metrics?

Why the metrics endpoint and not `executor validate`: /metrics is served by the running daemon
itself, so a crashed or wedged event loop fails the check, while `validate --config-only` only
re-reads an environment that cannot change after start. The image turns /metrics on
(EXECUTOR_METRICS_PORT=6060, bound to 127.0.0.1 unless EXECUTOR_METRICS_HOST says otherwise).
If an operator switches metrics off (EXECUTOR_METRICS_PORT=0), we fall back to the config check.
Stdlib only: runs with the venv's interpreter, no extra dependency.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

port = os.environ.get("EXECUTOR_METRICS_PORT", "0").strip() or "0"
if port == "0":
    sys.exit(subprocess.call(["executor", "validate", "--config-only"]))

host = os.environ.get("EXECUTOR_METRICS_HOST", "127.0.0.1")
if host in ("", "0.0.0.0", "::"):
    host = "127.0.0.1"
url = f"http://{host}:{port}/metrics"
try:
    with urllib.request.urlopen(url, timeout=4) as resp:
        body = resp.read().decode("utf-8", "replace")
except OSError as exc:
    print(f"unhealthy: {url}: {exc}", file=sys.stderr)
    sys.exit(1)
if "src_executor_processor_handlers" not in body:
    print(f"unhealthy: {url} has no src_executor_processor_handlers", file=sys.stderr)
    sys.exit(1)
sys.exit(0)
