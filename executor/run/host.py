"""Facts about this host that `serve` and `validate` both need: tool versions and telemetry.

The wire version: the frontend sends v2 job payloads (base64 files, docker auth) and
`-binaryDiffs` only to executors >= 4.3.0, so we speak as 5.3.0 and carry our own version as
semver build metadata, which version comparisons ignore.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Callable, Mapping

from executor import __version__
from executor.metrics import Metrics

__all__ = ["WIRE_VERSION", "telemetry", "tool_version"]

WIRE_VERSION = f"5.3.0+executor-py.{__version__}"


def tool_version(argv: list[str], env: Mapping[str, str]) -> str:
    """The first line of `argv`'s output, or "" when it fails or is not installed."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=dict(env), timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def telemetry(metrics: Metrics, env: Mapping[str, str]) -> Callable[[], dict[str, str]]:
    """The heartbeat's host fields, read once, plus the metrics exposition at each call."""
    git = tool_version(["git", "version"], env).removeprefix("git version ")
    docker = tool_version(["docker", "version", "-f", "{{.Server.Version}}"], env)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    fixed = {
        "os": sys.platform,
        "architecture": arch,
        "docker_version": docker,
        "executor_version": WIRE_VERSION,
        "git_version": git,
    }

    def collect() -> dict[str, str]:
        return {**fixed, "prometheus_metrics": metrics.exposition()}

    return collect
