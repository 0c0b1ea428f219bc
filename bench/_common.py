"""What every benchmark shares: a sandbox in-process, a small git repository, daemons as
subprocesses, /proc sampling, docker clean-up and the report (a table plus one JSON line).

Everything binds to loopback; every process and container started here is stopped by the
context managers below, even when the benchmark fails half-way.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from executor.sandbox.server import SandboxServer
from executor.sandbox.state import SandboxSettings
from executor.sandbox.store import JobRecord, SandboxStore
from executor.workspace.repocache import DEFAULT_DIR_NAME

__all__ = [
    "IMAGE",
    "Bench",
    "Daemon",
    "bench_env",
    "children_of",
    "cpu_seconds",
    "daemon",
    "executor_env",
    "fd_targets",
    "make_repo",
    "percentile",
    "proc_status_kb",
    "remove_containers",
    "report",
    "sandbox",
    "step_job",
    "timed",
    "tmpdir_left",
    "wait_until",
]

IMAGE = "executor-busybox:latest"
TOKEN = "bench-token"
FINAL = ("completed", "errored", "failed", "canceled")
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Bench:
    """A running sandbox with a scratch directory and a few admin calls."""

    server: SandboxServer
    scratch: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.url, timeout=60.0, headers={"Authorization": f"token-executor {TOKEN}"}
        )

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def store(self) -> SandboxStore:
        return SandboxStore(self.server.settings.db_path)

    def add_repo(self, name: str, path: Path, mode: str = "clone") -> None:
        """Host `path` as `name`: a mirror clone, or (`register`) the path as it is."""
        body = {"name": name, "path": str(path), "mode": mode}
        self.client.post("/.sandbox/repos", json=body).raise_for_status()

    def enqueue(self, job: dict[str, Any], queue: str = "batches") -> int:
        response = self.client.post("/.sandbox/jobs", params={"queue": queue}, json=job)
        response.raise_for_status()
        return int(response.json()["id"])

    def records(self) -> list[JobRecord]:
        return self.store.list_jobs()

    def record(self, job_id: int) -> JobRecord:
        found = self.store.get_job(job_id)
        assert found is not None, job_id
        return found


@contextmanager
def sandbox(**overrides: Any) -> Iterator[Bench]:
    """A fresh sandbox on 127.0.0.1 with its own SQLite file, removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="executor-bench-"))
    settings = SandboxSettings(token=TOKEN, data_dir=scratch / "sandbox", **overrides)
    server = SandboxServer(settings).start()
    box = Bench(server, scratch)
    try:
        yield box
    finally:
        box.client.close()
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _git_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=_git_env(cwd), check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def make_repo(where: Path, files: int = 20) -> tuple[Path, str]:
    """A small repository (a README and `files` source files, two commits); (path, head)."""
    path = where / "repo"
    (path / "src").mkdir(parents=True)
    git(path, "init", "--quiet", "--initial-branch=main")
    (path / "README.md").write_text("# bench\n")
    git(path, "add", ".")
    git(path, "commit", "--quiet", "-m", "first")
    for i in range(files):
        (path / "src" / f"file{i}.txt").write_text(f"line {i}\n" * 50)
    git(path, "add", ".")
    git(path, "commit", "--quiet", "-m", "second")
    return path, git(path, "rev-parse", "HEAD")


def step_job(repo: str, commit: str, *commands: str) -> dict[str, Any]:
    """A one-step job body on `repo` at `commit` (or a job without steps if no commands)."""
    steps = [{"key": "", "image": IMAGE, "commands": list(commands), "dir": ".", "env": []}]
    return {
        "repositoryName": repo,
        "commit": commit,
        "shallowClone": True,
        "dockerSteps": steps if commands else [],
    }


class Daemon:
    """One `executor run` subprocess; stdout+stderr go to a log file in the scratch dir."""

    def __init__(
        self, env: dict[str, str], log_path: Path, python_flags: Sequence[str] = ()
    ) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, *python_flags, "-m", "executor", "run"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


#: The image `scripts/build-k8s-test-image.sh` builds for the test cluster's job pods.
K8S_GIT_IMAGE = "executor-k8s-git:latest"


def kubernetes_env(kubeconfig: Path, namespace: str, **extra: str) -> dict[str, str]:
    """A test or bench daemon's Kubernetes runtime settings against the local test cluster
    (docs/kubernetes.md): small requests, host network (no ClusterIP is ever reached), local
    images only. Not `EXECUTOR_`-prefixed by `executor_env`: the names are as written."""
    env = {
        "EXECUTOR_KUBERNETES_CONFIG_PATH": str(kubeconfig),
        "EXECUTOR_KUBERNETES_NAMESPACE": namespace,
        "EXECUTOR_KUBERNETES_RESOURCE_REQUEST_MEMORY": "32Mi",
        "EXECUTOR_KUBERNETES_RESOURCE_LIMIT_MEMORY": "256Mi",
        "KUBERNETES_SINGLE_JOB_STEP_IMAGE": K8S_GIT_IMAGE,
        "KUBERNETES_JOB_HOST_NETWORK": "true",
        "KUBERNETES_IMAGE_PULL_POLICY": "Never",
        "KUBERNETES_FS_GROUP": "-1",
    }
    env.update(extra)
    return env


def executor_env(url: str, token: str, tmpdir: Path, **overrides: str) -> dict[str, str]:
    """A test or bench daemon's environment: fast polls and heartbeats, small limits, JSON
    logs, plus `EXECUTOR_<KEY>` overrides (the tests' fixtures share it)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "TMPDIR": str(tmpdir),
        "EXECUTOR_FRONTEND_URL": url,
        "EXECUTOR_FRONTEND_PASSWORD": token,
        "EXECUTOR_QUEUE_NAME": "batches",
        "EXECUTOR_QUEUE_POLL_INTERVAL": "100ms",
        "EXECUTOR_HEARTBEAT_INTERVAL": "1s",
        "EXECUTOR_DOCKER_STOP_TIMEOUT": "2s",
        "EXECUTOR_JOB_NUM_CPUS": "1",
        "EXECUTOR_JOB_MEMORY": "256M",
        "EXECUTOR_LOG_FORMAT": "json",
    }
    if "DOCKER_HOST" in os.environ:
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    env.update({f"EXECUTOR_{k.upper()}": v for k, v in overrides.items()})
    return env


def bench_env(box: Bench, workspaces: Path, **overrides: str) -> dict[str, str]:
    """The daemon's environment: the test suite's defaults plus `EXECUTOR_<KEY>` overrides."""
    workspaces.mkdir(parents=True, exist_ok=True)
    return executor_env(box.url, TOKEN, workspaces, **{"log_level": "warn", **overrides})


@contextmanager
def daemon(
    box: Bench, name: str = "bench-0", python_flags: Sequence[str] = (), **overrides: str
) -> Iterator[Daemon]:
    """A daemon against `box`, stopped (SIGTERM, then SIGKILL) and its containers removed.

    `python_flags` go to the interpreter (`-X importtime`)."""
    workspaces = box.scratch / f"ws-{name}"
    env = bench_env(box, workspaces, **overrides)
    proc = Daemon(env, box.scratch / f"{name}.log", python_flags)
    try:
        yield proc
    finally:
        proc.stop()
        remove_containers(str(workspaces))


def remove_containers(lock_prefix: str) -> None:
    """Remove `executor.job` containers whose lock-file label is under `lock_prefix` (ours)."""
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            "label=executor.job",
            "--format",
            '{{.ID}} {{.Label "executor.lock"}}',
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    ours = [
        c
        for c, _, lock in (ln.partition(" ") for ln in out.splitlines())
        if lock.startswith(lock_prefix)
    ]
    if ours:
        subprocess.run(["docker", "rm", "-f", *ours], capture_output=True, check=False)


def tmpdir_left(root: Path) -> list[str]:
    """What a daemon left in its TMPDIR: every entry but the repository cache (meant to stay),
    and inside the cache any fill still in progress (`.tmp-*`, which a clean stop never leaves)."""
    if not root.exists():
        return []
    left = sorted(p.name for p in root.iterdir() if p.name != DEFAULT_DIR_NAME)
    cache = root / DEFAULT_DIR_NAME
    if cache.is_dir():
        left += sorted(f"{DEFAULT_DIR_NAME}/{p.name}" for p in cache.glob(".tmp-*"))
    return left


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll `predicate` until truthy; raise TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout}s")
        time.sleep(interval)


def timed(argv: Sequence[str], **kwargs: Any) -> float:
    """Run `argv` to completion (checked, output discarded); seconds of wall time."""
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    return time.perf_counter() - start


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is `pid`, zombies included (a scan of /proc: works without
    CONFIG_PROC_CHILDREN)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def fd_targets(pid: int) -> list[str]:
    """Where each open descriptor of `pid` points (`socket:[…]`, `pipe:[…]`, a path); [] once
    the process is gone."""
    found = []
    with suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with suppress(OSError):  # closed meanwhile
                found.append(os.readlink(fd))
    return found


def proc_status_kb(pid: int, field_name: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM); 0 once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int, children: bool = False) -> float:
    """utime+stime of `pid` from /proc/<pid>/stat, in seconds; with `children`, plus the
    cutime+cstime of its children that have exited and been waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def report(name: str, rows: Sequence[tuple[str, Any]], result: dict[str, Any]) -> None:
    """Print a two-column table, then `result` as one JSON line (with the load average)."""
    width = max(len(label) for label, _ in rows)
    print(f"== {name} ==")
    for label, value in rows:
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{label.ljust(width)}  {shown}")
    result = {"bench": name, "loadavg": Path("/proc/loadavg").read_text().split()[:3], **result}
    print(json.dumps(result, sort_keys=True))
    sys.stdout.flush()
