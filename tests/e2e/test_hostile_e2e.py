"""Hostile input against the real daemon (issue 6 item 3): images, file keys, env, limits,
tokens and frontends that lie.

One sandbox and one daemon (`EXECUTOR_MAXIMUM_NUM_JOBS=2`, `EXECUTOR_JOB_PIDS_LIMIT=32`, an
8 MiB tmpfs at `/scratch` through `EXECUTOR_DOCKER_ADDITIONAL_MOUNTS`) serve every job case in
turn, to keep CI time low. Each case enqueues the hostile job and a good one behind it, then
checks: the hostile job's final state and a clear message; the good job completes (the daemon
still serves); the daemon is alive; nothing was written outside the workspace (a directory the
repository links to, and absolute targets under the test's own tmp dir, stay empty); a canary
file and a decoy `skip.json` outside every workspace are untouched (content and mtime); the
daemon's heartbeats, as the sandbox recorded them (`last_seen_at`, sampled while the case runs),
kept their cadence (no gap over 3 x the interval + 10 s); the daemon's peak RSS stayed within
its settled size + 128 MiB; and nothing is left behind (no step container of the job, no
workspace, owner marker or docker config directory under the daemon's root).

Issue 10's cases (the trust boundary): `.pre` steps whose `skip.json` is a link out, a FIFO or
sparse gigabytes, a `.pre` step that swaps its own directory for a link out, absolute and `..`
step dirs, a step that plants FIFOs named like markers and locks while the janitor sweeps every
second, and V1 `batch exec` steps that arm git filter drivers and fsmonitor for the host's git.

Frontends that lie (wrong token, HTML answers, malformed dequeue bodies) are tiny real HTTP
servers on loopback, each with its own short-lived daemon.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixtures_daemon import Daemon, wait_for
from fixtures_sandbox import SANDBOX_TOKEN, Sandbox
from leftovers import container_ids

from bench._common import executor_env, proc_status_kb
from executor.sandbox.server import SandboxServer
from executor.sandbox.state import SandboxSettings

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "executor-busybox:latest"
FINAL = ("completed", "errored", "failed", "canceled")
REPO = "github.com/hostile/repo"


def _env(url: str, token: str, root: Path, **extra: str) -> dict[str, str]:
    return executor_env(url, token, root, **extra)


@dataclass
class Rig:
    box: Sandbox
    daemon: Daemon
    base: Path
    outside: Path
    commit: str
    root: Path
    #: Files outside every workspace a step may aim at; must stay exactly as they are.
    canary: Path
    decoy: Path
    #: The daemon's RSS once it has run a job (modules loaded), kB.
    settled_rss_kb: int = 0

    def job(self, *steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "repositoryName": REPO,
            "commit": self.commit,
            "shallowClone": True,
            "dockerSteps": list(steps),
        }
        body.update(extra)
        return body


def _step(
    *commands: str, image: str = IMAGE, env: list[str] | None = None, key: str = "", dir: str = "."
) -> dict[str, Any]:
    return {"key": key, "image": image, "commands": list(commands), "dir": dir, "env": env or []}


def _pre(*commands: str, index: int = 0, dir: str = ".") -> dict[str, Any]:
    """A batches `.pre` step (§4.8): the host reads `<dir>/skip.json` after it."""
    return _step(*commands, key=f"step.{index}.pre", dir=dir)


def _batch_exec(rig: Rig, run: str) -> dict[str, Any]:
    """A V1 `batch exec` job: one batch-spec step running `run` in the repository; the engine's
    host-side `git add`/`git diff` follow it (`executor.batch.diff`)."""
    task = {
        "BatchChangeAttributes": {"name": "bc", "description": "d"},
        "repository": {"id": "UmVwbzox", "name": REPO},
        "branch": {"name": "refs/heads/main", "target": {"oid": rig.commit}},
        "path": "",
        "steps": [{"run": run, "container": IMAGE}],
        "searchResultPaths": ["README.md"],
    }
    command = ["batch", "exec", "-f", "input.json", "-repo", "repository", "-tmp", ".src-tmp"]
    return {
        "repositoryName": REPO,
        "commit": rig.commit,
        "repositoryDirectory": "repository",
        "version": 2,
        "files": {"input.json": _b64(json.dumps(task).encode())},
        "cliSteps": [{"key": "batch-exec", "command": command, "dir": ".", "env": []}],
    }


def _git(cwd: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        **{f"GIT_{w}_{k}": v for w in ("AUTHOR", "COMMITTER") for k, v in (("NAME", "T"),)},
        **{f"GIT_{w}_EMAIL": "t@example.com" for w in ("AUTHOR", "COMMITTER")},
    }
    run = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)
    return run.stdout.decode().strip()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    base = tmp_path_factory.mktemp("hostile")
    outside = base / "outside"
    outside.mkdir()
    repo = base / "repo"
    repo.mkdir()
    _git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "README.md").write_text("# hostile\n")
    # A repository may carry a symlink out of the workspace; job files must not follow it.
    (repo / "link").symlink_to(outside)
    _git(repo, "add", "README.md", "link")
    _git(repo, "commit", "--quiet", "-m", "hostile")
    commit = _git(repo, "rev-parse", "HEAD")
    canary = base / "canary.txt"
    canary.write_text("canary: the host's own file\n")
    decoy = base / "decoy"
    decoy.mkdir()
    (decoy / "skip.json").write_text('{"nextStep":"step.docker.decoy"}')
    settings = SandboxSettings(token=SANDBOX_TOKEN, data_dir=base / "sandbox")
    box = Sandbox(SandboxServer(settings).start(), SANDBOX_TOKEN)
    box.add_repo(REPO, repo)
    root = base / "workspaces"
    root.mkdir()
    env = _env(
        box.url,
        SANDBOX_TOKEN,
        root,
        maximum_num_jobs="2",
        job_pids_limit="32",
        maximum_runtime_per_job="60s",
        docker_additional_mounts="type=tmpfs,destination=/scratch,tmpfs-size=8388608",
        # The janitor sweeps while hostile steps run (the marker and lock cases).
        cleanup_task_interval="1s",
    )
    daemon = Daemon(env, base / "daemon.log")
    try:
        rig = Rig(box, daemon, base, outside, commit, root, canary, decoy)
        settle = box.enqueue(rig.job(_step("echo settling")))
        assert box.wait_state(settle, FINAL, timeout=120)["state"] == "completed"
        rig.settled_rss_kb = proc_status_kb(daemon.proc.pid, "VmRSS")
        yield rig
    finally:
        daemon.stop()
        box.close()


def _files(**files: Any) -> dict[str, Any]:
    return {"version": 2, "files": files}


def _b64(data: bytes) -> dict[str, str]:
    return {"content": base64.b64encode(data).decode()}


# name -> (job body from the rig, expected state, fragment of the failure message or logs)
Case = tuple[Callable[[Rig], dict[str, Any]], str, str]
_REFUSED = "refusing to write outside of working directory"
_BAD_IMAGE = "invalid step image"
CASES: dict[str, Case] = {
    "image-privileged-flag": (
        lambda r: r.job(_step("true", image="--privileged")),
        "failed",
        _BAD_IMAGE,
    ),
    "image-volume-flag": (lambda r: r.job(_step("true", image="-v/:/host")), "failed", _BAD_IMAGE),
    "image-shell-injection": (
        lambda r: r.job(_step("true", image=f"{IMAGE};touch {r.outside}/pwned")),
        "failed",
        "invalid reference format",
    ),
    "image-command-substitution": (
        lambda r: r.job(_step("true", image=f"$(touch {r.outside}/pwned)")),
        "failed",
        "invalid reference format",
    ),
    "image-unknown-registry": (
        lambda r: r.job(_step("true", image="127.0.0.1:9/no-such-image:never")),
        "failed",
        "127.0.0.1:9",
    ),
    "file-dotdot": (
        lambda r: r.job(_step("true"), **_files(**{"../escape": _b64(b"x")})),
        "failed",
        _REFUSED,
    ),
    "file-nested-dotdot": (
        lambda r: r.job(_step("true"), **_files(**{"a/../../escape": _b64(b"x")})),
        "failed",
        _REFUSED,
    ),
    "file-absolute": (
        lambda r: r.job(_step("true"), **_files(**{f"{r.outside}/abs": _b64(b"x")})),
        "failed",
        _REFUSED,
    ),
    # A NUL byte anywhere (a file key too) is a malformed payload: test_malformed_job_e2e.
    "file-through-repo-symlink": (
        lambda r: r.job(_step("true"), **_files(**{"link/pwned": _b64(b"x")})),
        "failed",
        _REFUSED,
    ),
    "file-missing-from-files-api": (
        lambda r: r.job(
            _step("true"),
            **_files(big={"bucket": "batch-changes", "key": "no/such/1GB-file"}),
        ),
        "failed",
        "404",
    ),
    "file-large-inline-16MiB": (
        lambda r: r.job(_step("wc -c < big"), **_files(big=_b64(b"\0" * (16 << 20)))),
        "completed",
        "stdout: 16777216",
    ),
    "env-newline-no-injection": (
        lambda r: r.job(_step('echo "A=[$A] B=[$B]"', env=["A=x\nB=injected"])),
        "completed",
        "stdout: B=injected] B=[]",  # A arrived whole, and B was never set
    ),
    "process-bomb-hits-pids-limit": (
        lambda r: r.job(
            _step("set -e; i=0", "while [ $i -lt 200 ]; do sleep 3 & i=$((i+1)); done", "wait")
        ),
        "failed",
        "can't fork",
    ),
    "disk-fill-bounded-tmpfs": (
        lambda r: r.job(_step("dd if=/dev/zero of=/scratch/fill bs=1M count=64")),
        "failed",
        "No space left on device",
    ),
    # Issue 10: what the host reads after a step is confined to the workspace.
    "skip-json-symlink-out": (
        lambda r: r.job(_pre(f"ln -s {r.decoy}/skip.json skip.json"), _step("echo ran")),
        "failed",
        "reading skip.json: skip.json is a symbolic link; not followed",
    ),
    "skip-json-fifo": (
        lambda r: r.job(_pre("mkfifo skip.json"), _step("echo ran")),
        "failed",
        "reading skip.json: skip.json is not a regular file",
    ),
    "skip-json-sparse-gigabytes": (
        lambda r: r.job(_pre("truncate -s 4G skip.json"), _step("echo ran")),
        "failed",
        "reading skip.json: skip.json is larger than 65536 bytes",
    ),
    "pre-dir-swapped-for-symlink-out": (
        lambda r: r.job(
            _step("mkdir sub"),
            _pre(f"cd /data && rm -rf sub && ln -s {r.decoy} sub", index=1, dir="sub"),
        ),
        "failed",
        "reading skip.json: sub/skip.json: 'sub' is not a directory (a link?)",
    ),
    "pre-absolute-dir": (
        lambda r: r.job(_pre("echo ran", dir=str(r.decoy))),
        "failed",
        "is absolute; it must be relative to the workspace",
    ),
    "step-dotdot-dir": (
        lambda r: r.job(_step("echo ran", dir="../..")),
        "failed",
        "step dir '../..' climbs out of the workspace",
    ),
    # Issue 10: the daemon's own state is out of reach; a FIFO cannot freeze the janitor.
    "fifos-named-like-markers-and-locks": (
        lambda r: r.job(
            _step(
                "mkfifo .executor-owner .executor-x.lock ../.workspace-x.owner 2>&1 || true",
                "sleep 4; echo planted",
            )
        ),
        "completed",
        "stdout: planted",
    ),
    # Issue 10: the host's git never runs what a V1 step wrote into the repository.
    "v1-gitattributes-filter-driver": (
        lambda r: _batch_exec(
            r,
            f'printf \'[filter "x"]\\n\\tclean = touch {r.outside}/pwned; cat\\n'
            f"\\tsmudge = cat\\n\\trequired = true\\n' >> .git/config; "
            "echo '* filter=x' > .gitattributes; echo changed >> README.md",
        ),
        "completed",
        "CACHE_AFTER_STEP_RESULT",
    ),
    "v1-fsmonitor": (
        lambda r: _batch_exec(
            r,
            f"printf '[core]\\n\\tfsmonitor = touch {r.outside}/pwned\\n' >> .git/config; "
            "echo changed >> README.md",
        ),
        "completed",
        "CACHE_AFTER_STEP_RESULT",
    ),
}


class _Heartbeats:
    """The daemon's heartbeats as the sandbox records them: `last_seen_at`, sampled."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.seen: set[float] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.seen.update(e.last_seen_at for e in self.box.store.list_executors())

    def __enter__(self) -> _Heartbeats:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def largest_gap(self, until: float) -> float:
        times = sorted(self.seen)
        assert times, "no heartbeat seen"
        return max(b - a for a, b in zip([*times, until][:-1], [*times[1:], until], strict=True))


def _fingerprint(path: Path) -> tuple[bytes, int]:
    info = path.stat()
    return path.read_bytes(), info.st_mtime_ns


def _left_behind(rig: Rig, job_id: int) -> list[str]:
    names = [
        p.name
        for p in rig.root.iterdir()
        if p.name.lstrip(".").startswith(("workspace-", "executor-docker-config-"))
    ]
    return names + container_ids(rig.root, job_id)


@pytest.mark.parametrize(("make", "state", "fragment"), CASES.values(), ids=CASES.keys())
def test_hostile_job(
    rig: Rig, make: Callable[[Rig], dict[str, Any]], state: str, fragment: str
) -> None:
    host_files = {p: _fingerprint(p) for p in (rig.canary, rig.decoy / "skip.json")}
    with _Heartbeats(rig.box) as beats:
        bad = rig.box.enqueue(make(rig))
        good = rig.box.enqueue(rig.job(_step("echo still-serving")))
        job = rig.box.wait_state(bad, FINAL, timeout=120)
        done = rig.box.wait_state(good, FINAL, timeout=120)
        time.sleep(2)  # a last heartbeat or two after the jobs
    text = (job["failure_message"] or "") + "".join(e.get("out", "") for e in job["execution_logs"])
    assert job["state"] == state, (job["state"], job["failure_message"])
    assert fragment in text, text[-2000:]
    assert done["state"] == "completed", done["failure_message"]
    assert rig.daemon.proc.poll() is None, rig.daemon.log_text[-2000:]
    # The host is untouched.
    assert list(rig.outside.iterdir()) == []
    assert not [p for p in rig.base.rglob("*") if p.name in ("escape", "abs", "pwned")]
    assert {p: _fingerprint(p) for p in host_files} == host_files
    # The daemon's health: heartbeat cadence (1 s interval) and memory.
    assert len(beats.seen) >= 2, beats.seen
    gap = beats.largest_gap(until=time.time())
    assert gap <= 3 * 1.0 + 10, f"heartbeats paused for {gap:.1f}s"
    peak = proc_status_kb(rig.daemon.proc.pid, "VmHWM")
    assert peak <= rig.settled_rss_kb + 128 * 1024, (peak, rig.settled_rss_kb)
    # Nothing left behind: containers, workspaces, markers, docker config dirs.
    assert wait_for(lambda: not _left_behind(rig, bad), 60), _left_behind(rig, bad)


def _text(daemon: Daemon) -> str:
    """The daemon's log, also after `stop()` closed its file."""
    return daemon.log_path.read_text(encoding="utf-8", errors="replace")


class _Liar(http.server.ThreadingHTTPServer):
    """A tiny frontend on loopback: `html` answers every request with a web page; otherwise
    auth and heartbeats succeed and dequeue serves `bodies` (raw bytes) one by one, then 204."""

    def __init__(self, *, html: bool = False, bodies: list[bytes] | None = None) -> None:
        self.html = html
        self.bodies = list(bodies or [])
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _LiarHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _LiarHandler(http.server.BaseHTTPRequestHandler):
    server: _Liar

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.requests.append(self.path)
        if self.server.html:
            page = b"<!DOCTYPE html><html><body>Sign in to Sourcegraph</body></html>"
            self._answer(200, page, "text/html")
        elif self.path.endswith("/dequeue"):
            if self.server.bodies:
                self._answer(200, self.server.bodies.pop(0))
            else:
                self._answer(204, b"")
        elif self.path.endswith("/heartbeat"):
            self._answer(200, b'{"knownIds":[],"cancelIds":[]}')
        elif self.path.endswith("/test/auth"):
            self._answer(200, b"ok", "text/plain")
        else:
            self._answer(204, b"")

    do_GET = do_POST = _handle


@pytest.fixture
def liar() -> Iterator[Callable[..., _Liar]]:
    servers: list[_Liar] = []

    def start(**kwargs: Any) -> _Liar:
        servers.append(_Liar(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_wrong_token_stops_with_a_clear_error(rig: Rig, tmp_path: Path) -> None:
    env = _env(rig.box.url, "not-the-token-at-all", tmp_path)
    daemon = Daemon(env, tmp_path / "daemon.log")
    try:
        code = daemon.wait(60)
    finally:
        daemon.stop()
    assert code != 0
    assert "status code 401" in _text(daemon) and "executor stopped" in _text(daemon)
    assert "not-the-token-at-all" not in _text(daemon)


def test_frontend_answering_html(liar: Callable[..., _Liar], tmp_path: Path) -> None:
    server = liar(html=True)
    daemon = Daemon(_env(server.url, SANDBOX_TOKEN, tmp_path), tmp_path / "daemon.log")
    try:
        seen = wait_for(lambda: "not JSON" in _text(daemon) or daemon.proc.poll() is not None, 30)
    finally:
        daemon.stop()
    assert seen, _text(daemon)[-2000:]
    assert "text/html" in _text(daemon), _text(daemon)[-2000:]


MALFORMED_DEQUEUE = {
    "not-json": b"<<not json>>",
    "id-string": b'{"id":"abc","token":"t"}',
    "steps-string": b'{"id":5,"token":"t","dockerSteps":"rm -rf /"}',
    "bad-base64": b'{"id":6,"token":"t","version":2,"files":{"a":{"content":"!!"}}}',
    "json-array": b"[1,2,3]",
    "json-null": b"null",
}


@pytest.mark.parametrize("body", MALFORMED_DEQUEUE.values(), ids=MALFORMED_DEQUEUE.keys())
def test_malformed_dequeue_body(liar: Callable[..., _Liar], tmp_path: Path, body: bytes) -> None:
    server = liar(bodies=[body])
    daemon = Daemon(_env(server.url, SANDBOX_TOKEN, tmp_path), tmp_path / "daemon.log")

    def polled_again() -> bool:
        return sum(p.endswith("/dequeue") for p in server.requests) >= 3

    try:
        assert wait_for(polled_again, 30), server.requests
        assert daemon.proc.poll() is None, _text(daemon)[-2000:]
    finally:
        daemon.stop()
    assert "Dequeue" in _text(daemon), _text(daemon)[-2000:]
    assert not [p for p in server.requests if "/mark" in p and "Complete" in p]
