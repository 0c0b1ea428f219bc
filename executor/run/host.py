"""Facts about this host that `serve` and `validate` both need: tool versions, telemetry, and
the CPUs and memory the Docker host can give a job.

Job limits: `docker run --cpus N` fails (exit 125, "Range of CPUs is from 0.01 to 2.00") when N
exceeds the engine host's CPUs, which with Sourcegraph's default `EXECUTOR_JOB_NUM_CPUS=4` on
a 2-core host fails every step. `fit_limits` clamps both limits to what the engine reports
(`docker info`: `NCPU`, `MemTotal`; this process's host when the engine does not answer) and
says so, once, in words an admin can act on.

Child processes: a job starts about ten (git, docker, the batch helper). Python 3.11's default
asyncio child watcher starts a thread per child to wait for it; `watch_children_with_pidfd`
puts the pidfd watcher (Linux 5.3+, the default from Python 3.12) in its place: the loop itself
waits on each child's pidfd, no thread, about 0.3 ms less per process.

The wire version: the frontend sends v2 job payloads (base64 files, docker auth) and
`-binaryDiffs` only to executors >= 4.3.0, so we speak as 5.3.0 and carry our own version as
semver build metadata, which version comparisons ignore.
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from executor import __version__
from executor.config.goparse import parse_data_size
from executor.metrics import Metrics

__all__ = [
    "SRC_CLI_VERSION",
    "WIRE_VERSION",
    "HostResources",
    "JobLimits",
    "fit_limits",
    "host_resources",
    "step_network_warnings",
    "telemetry",
    "tool_version",
    "watch_children_with_pidfd",
]

WIRE_VERSION = f"5.3.0+executor-py.{__version__}"

#: The src-cli release whose `batch exec` semantics the engine (`executor.batch`) implements:
#: it follows `sourcegraph/src-cli` main at `2027d785`, two commits after the `7.6.0` tag that
#: touch neither batch exec nor its library. Reported as the heartbeat's `srcCliVersion` (the
#: Go executor reports `src version -client-only` of the src binary it runs).
SRC_CLI_VERSION = "7.6.0"


@dataclass(frozen=True)
class HostResources:
    """What the Docker host has: CPUs and memory in bytes (0 when unknown)."""

    cpus: int
    memory: int


def host_resources(env: Mapping[str, str]) -> HostResources:
    """The engine's `NCPU` and `MemTotal`; this machine's when the engine does not answer."""
    info = tool_version(["docker", "info", "--format", "{{.NCPU}} {{.MemTotal}}"], env).split()
    if len(info) == 2 and all(part.isdigit() for part in info):
        return HostResources(cpus=int(info[0]), memory=int(info[1]))
    cpus = len(os.sched_getaffinity(0))
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return HostResources(cpus=cpus, memory=memory)


@dataclass(frozen=True)
class JobLimits:
    """The per-job limits to use, and one warning for each that had to be lowered."""

    cpus: int
    memory: str
    warnings: tuple[str, ...]


def fit_limits(cpus: int, memory: str, host: HostResources) -> JobLimits:
    """`EXECUTOR_JOB_NUM_CPUS` / `EXECUTOR_JOB_MEMORY` clamped to `host` (0 stays unbounded)."""
    warnings = []
    if host.cpus and cpus > host.cpus:
        warnings.append(
            f"EXECUTOR_JOB_NUM_CPUS={cpus} is more than the {host.cpus} CPUs of the Docker"
            f" host; each job gets {host.cpus} (docker run refuses more)"
        )
        cpus = host.cpus
    wanted = parse_data_size(memory) if memory not in ("", "0") else 0
    if host.memory and wanted > host.memory:
        mib = host.memory // 2**20
        warnings.append(
            f"EXECUTOR_JOB_MEMORY={memory} is more than the {mib}M of memory of the Docker"
            f" host; each job gets {mib}M"
        )
        memory = f"{mib}M"
    return JobLimits(cpus=cpus, memory=memory, warnings=tuple(warnings))


def watch_children_with_pidfd(loop: asyncio.AbstractEventLoop) -> bool:
    """Wait for `loop`'s child processes on pidfds where the kernel has them; whether it does.

    Call from the loop's thread before any child is started. Where `pidfd_open` is missing or
    refused (an old kernel, a seccomp profile), the default watcher stays.
    """
    if not hasattr(os, "pidfd_open") or sys.version_info >= (3, 12):
        return False  # 3.12 picks the pidfd watcher itself and deprecates choosing one
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(loop)
    asyncio.set_child_watcher(watcher)
    return True


def tool_version(argv: list[str], env: Mapping[str, str]) -> str:
    """The first line of `argv`'s output, or "" when it fails or is not installed."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=dict(env), timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def step_network_warnings(network: str, env: Mapping[str, str]) -> list[str]:
    """A warning when `EXECUTOR_STEP_NETWORK` names a network the engine does not have (every
    step would fail with Docker's "network … not found"); none when unset or the engine is down."""
    if not network or not tool_version(["docker", "version", "-f", "{{.Server.Version}}"], env):
        return []
    if tool_version(["docker", "network", "inspect", "-f", "{{.Name}}", network], env):
        return []
    return [
        f"EXECUTOR_STEP_NETWORK: the Docker engine has no network {network!r}; every step will "
        "fail until it exists (executor-iptables.sh creates it, see docs/security.md)"
    ]


def telemetry(
    metrics: Metrics, env: Mapping[str, str], exporters: Callable[[], str] | None = None
) -> Callable[[], dict[str, str]]:
    """The heartbeat's host fields, read once, plus the metrics exposition at each call (the
    executor's own, then the node exporters' when `exporters` is given)."""
    git = tool_version(["git", "version"], env).removeprefix("git version ")
    docker = tool_version(["docker", "version", "-f", "{{.Server.Version}}"], env)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    fixed = {
        "os": sys.platform,
        "architecture": arch,
        "docker_version": docker,
        "executor_version": WIRE_VERSION,
        "git_version": git,
        "src_cli_version": SRC_CLI_VERSION,
    }

    def collect() -> dict[str, str]:
        text = metrics.exposition() + (exporters() if exporters else "")
        return {**fixed, "prometheus_metrics": text}

    return collect
