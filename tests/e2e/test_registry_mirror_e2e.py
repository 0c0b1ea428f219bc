"""`EXECUTOR_DOCKER_REGISTRY_MIRROR_URL` checked against real engines' `docker info`, and a step
image pulled through a real registry mirror (Debian's docker-registry; see the section below).

The executor cannot point the host's engine at a mirror (Sourcegraph's Firecracker runtime
configures Docker inside each VM; here the engine is the host's), so `validate` and the daemon's
start warn, naming the URL, for each configured mirror `RegistryConfig.Mirrors` does not list.
This engine lists no mirrors, so every configured URL is reported; with none set, nothing is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_daemon import run_validate, wait_for

from executor.run.mirror import engine_mirrors, mirror_urls, mirror_warnings

pytestmark = [pytest.mark.docker]

MIRRORS = "http://127.0.0.1:5999,https://mirror.invalid:5000/"


def test_mirror_urls_split_on_commas() -> None:
    assert mirror_urls("") == []
    assert mirror_urls("http://a:5000,,http://b:5000") == ["http://a:5000", "http://b:5000"]


def test_each_mirror_the_engine_does_not_list_is_named(docker_engine: Any) -> None:
    env = dict(os.environ)
    assert engine_mirrors(env) == [], "this test expects an engine without registry-mirrors"
    warnings = mirror_warnings(MIRRORS, env)
    assert len(warnings) == 2
    assert "does not use the mirror http://127.0.0.1:5999 " in warnings[0]
    assert "does not use the mirror https://mirror.invalid:5000/ " in warnings[1]
    assert mirror_warnings("", env) == []


def _validate(sandbox: Any, **extra: str) -> subprocess.CompletedProcess[str]:
    return run_validate(sandbox, EXECUTOR_JOB_NUM_CPUS="1", EXECUTOR_JOB_MEMORY="256M", **extra)


def test_validate_warns_per_missing_mirror_and_says_nothing_without_one(
    sandbox: Any, docker_engine: Any
) -> None:
    done = _validate(sandbox, EXECUTOR_DOCKER_REGISTRY_MIRROR_URL=MIRRORS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("⚠ EXECUTOR_DOCKER_REGISTRY_MIRROR_URL:") == 2
    assert "http://127.0.0.1:5999" in done.stdout
    assert "https://mirror.invalid:5000/" in done.stdout
    assert "All checks passed!" in done.stdout
    quiet = _validate(sandbox)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "MIRROR" not in quiet.stdout


def test_the_daemon_warns_at_start(sandbox: Any, docker_engine: Any, daemon_factory: Any) -> None:
    daemon = daemon_factory(docker_registry_mirror_url="http://127.0.0.1:5999")
    seen = wait_for(lambda: "does not use the mirror http://127.0.0.1:5999" in daemon.log_text, 60)
    assert seen, daemon.log_text


# --- a real registry as the mirror ------------------------------------------------------------
#
# Debian's `docker-registry` (the CNCF distribution registry; scripts/setup.sh installs it) runs
# as a PLAIN registry: a pull-through cache of Docker Hub needs Docker Hub, which this machine
# cannot reach. A second, private Docker engine (dockerd with its own data and exec roots and
# socket, no bridge network) is started with `--registry-mirror` pointing at it: the setting the
# Terraform startup scripts write into daemon.json as `registry-mirrors`. Both run in a network
# namespace of their own (`ip netns`), where the mirror is at 127.0.0.1:5000: the shared host
# engine and the host's network are never touched (a dockerd started with `--bridge none` in
# the host's namespace deletes the host's `docker0`). The local step image is pushed into the
# mirror under a Docker Hub name (`executor-mirror-test/busybox`) and removed from the engine
# again; the executor talks to that engine through DOCKER_HOST (a unix socket).
#
# Proven: `validate` and the daemon's start see the engine list the mirror (no warning); a job
# whose step image is in no engine, only in the mirror, runs: the engine pulled it from the
# mirror (the registry's access log shows the manifest and blob reads of that pull). Not
# proven: pulling through to Docker Hub and caching (no upstream here), a TLS mirror, the
# Terraform-deployed mirror VM itself, a mirror reached over a real network.

MIRRORED = "executor-mirror-test/busybox:latest"
MIRROR = "http://127.0.0.1:5000"


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"executor-mirror-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _in_ns(ns: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        # nsenter, not `ip netns exec`, which remounts /sys and hides the cgroups dockerd needs.
        enter = ["nsenter", f"--net=/run/netns/{ns}", "--"]
        return subprocess.Popen([*enter, *argv], stdout=out, stderr=out)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def registry(netns: str, tmp_path: Path) -> Iterator[Path]:
    """`docker-registry serve` at 127.0.0.1:5000 in `netns`; yields its log (access log too)."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("Debian's docker-registry is not installed (scripts/setup.sh installs it)")
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  formatter: text\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'registry-data'}\n"
        "http:\n  addr: 127.0.0.1:5000\n"
    )
    log_path = tmp_path / "registry.log"
    proc = _in_ns(netns, [binary, "serve", str(config)], log_path)
    try:
        listening = wait_for(lambda: "listening on 127.0.0.1:5000" in log_path.read_text(), 60)
        assert listening, log_path.read_text()
        yield log_path
    finally:
        _stop(proc)


@pytest.fixture
def mirrored_engine(netns: str, registry: Path, docker_engine: Any) -> Iterator[str]:
    """A private dockerd in `netns` using the registry as its mirror; yields its DOCKER_HOST.

    The step image is pushed into the mirror through this engine and removed from it again."""
    root = Path(tempfile.mkdtemp(prefix="mirror-dind-", dir="/tmp"))  # short socket paths
    (root / "daemon.json").write_text("{}")  # not the host engine's /etc/docker/daemon.json
    host = f"unix://{root}/docker.sock"
    argv = [
        "dockerd", "--config-file", str(root / "daemon.json"), "--data-root", str(root / "data"),
        "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"), "-H", host,
        "--bridge", "none", "--iptables=false", "--ip-masq=false", "--registry-mirror", MIRROR,
    ]  # fmt: skip
    proc = _in_ns(netns, argv, root / "dockerd.log")
    env = {**os.environ, "DOCKER_HOST": host}

    def docker(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["docker", *args], env=env, capture_output=True, **kwargs)

    try:
        up = wait_for(lambda: docker("info").returncode == 0, 90, 0.5)
        assert up, (root / "dockerd.log").read_text()[-3000:]
        image = subprocess.run(
            ["docker", "save", "executor-busybox:latest"], capture_output=True, check=True
        ).stdout
        docker("load", "-q", input=image, check=True)
        pushed = f"127.0.0.1:5000/{MIRRORED}"
        docker("tag", "executor-busybox:latest", pushed, check=True)
        docker("push", "-q", pushed, check=True)
        docker("rmi", pushed, "executor-busybox:latest", check=True)
        yield host
    finally:
        for cid in docker("ps", "-aq").stdout.decode().split():
            docker("rm", "-f", cid)
        _stop(proc)
        subprocess.run(["umount", "-R", str(root / "data")], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_a_step_image_is_pulled_through_the_mirror(
    sandbox: Any, daemon_factory: Any, registry: Path, mirrored_engine: str
) -> None:
    pushed = len(registry.read_text())  # what came before is the fixture's push
    env = {**os.environ, "DOCKER_HOST": mirrored_engine}
    assert engine_mirrors(env) == [MIRROR + "/"]
    assert mirror_warnings(MIRROR, env) == []
    done = _validate(
        sandbox, EXECUTOR_DOCKER_REGISTRY_MIRROR_URL=MIRROR, DOCKER_HOST=mirrored_engine
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MIRROR" not in done.stdout, done.stdout
    # The private engine has no such image (nor the one it was made from): only the mirror does.
    for image in (MIRRORED, "executor-busybox:latest"):
        inspect = subprocess.run(
            ["docker", "image", "inspect", image], env=env, capture_output=True
        )
        assert inspect.returncode != 0, image

    job_id = sandbox.enqueue(
        {"dockerSteps": [{"key": "", "image": MIRRORED, "commands": ["echo pulled via mirror"]}]}
    )
    daemon = daemon_factory(
        docker_registry_mirror_url=MIRROR, plain_env={"DOCKER_HOST": mirrored_engine}
    )
    job = sandbox.wait_state(job_id, timeout=180)
    assert job["state"] == "completed", (job, daemon.log_text[-3000:])
    logs = {e["key"]: e for e in job["execution_logs"]}
    assert "stdout: pulled via mirror" in logs["step.docker.0"]["out"]
    assert "does not use the mirror" not in daemon.log_text
    served = registry.read_text()[pushed:]
    # The engine asked the mirror for Docker Hub's `executor-mirror-test/busybox` (a docker.io
    # name: only those go to registry-mirrors) and pulled its manifest and layers.
    repo = "/v2/executor-mirror-test/busybox"
    assert f'"HEAD {repo}/manifests/latest HTTP/1.1" 200' in served, served
    assert f'"GET {repo}/manifests/sha256:' in served, served
    assert f'"GET {repo}/blobs/sha256:' in served, served
    assert "PUT " not in served  # nothing was pushed meanwhile: this is the step's pull
    inspect = subprocess.run(["docker", "image", "inspect", MIRRORED], env=env, capture_output=True)
    assert inspect.returncode == 0
