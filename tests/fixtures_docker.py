"""Shared fixtures for tests that need a real Docker engine and the local busybox step image.

`docker_engine` (session) checks `docker info` once and builds `executor-busybox:latest` once with
`scripts/build-images.sh` (without the batch helper image: `helper_image` builds that one for
the tests that need it); tests marked `@pytest.mark.docker` use it and FAIL, with the
engine's own error as the reason, when there is no engine: a run without Docker must not look
green (deselect them with `-m "not docker"` on purpose instead). Nothing is ever pulled.

Every container a test starts must carry `test_labels` (a per-session label), so the session
finalizer removes exactly what the tests created and never anyone else's containers.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "HELPER_IMAGE",
    "STEP_IMAGE",
    "DockerEngine",
    "docker_engine",
    "helper_image",
    "test_labels",
]

STEP_IMAGE = "executor-busybox:latest"
HELPER_IMAGE = "executor-batcheshelper:latest"
TEST_LABEL = "executor.test-session"

_ROOT = Path(__file__).resolve().parent.parent
_SESSION = uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class DockerEngine:
    """What a docker test needs to start the runtime: the forwarded env and the step image."""

    env: dict[str, str]
    image: str
    session: str


def _forwarded() -> dict[str, str]:
    return {k: os.environ[k] for k in ("HOME", "PATH", "USER", "DOCKER_HOST") if k in os.environ}


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    """A reachable engine with the step image built; fails the test when there is no engine."""
    env = _forwarded()
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.fail(f"a Docker engine is required: docker info failed: {err}")
    if info.returncode != 0:
        reason = info.stderr.strip() or info.stdout.strip()
        pytest.fail(f"a Docker engine is required: docker info failed: {reason}")
    subprocess.run(
        [str(_ROOT / "scripts" / "build-images.sh")],
        check=True,
        env={**env, "SKIP_HELPER_IMAGE": "1"},
        timeout=600,
    )
    yield DockerEngine(env=env, image=STEP_IMAGE, session=_SESSION)
    _remove_session_containers(env)


@pytest.fixture(scope="session")
def helper_image(docker_engine: DockerEngine) -> str:
    """`executor-batcheshelper:latest`, (re)built from this checkout when its inputs changed.

    Only tests of V2 batches jobs need it, so only they pay for a rebuild after a code change
    (the last layer, seconds) or, on a fresh machine, the debootstrap base (minutes)."""
    env = {**docker_engine.env, "EXECUTOR_BATCHESHELPER_IMAGE": HELPER_IMAGE}
    subprocess.run([str(_ROOT / "scripts" / "build-images.sh")], check=True, env=env, timeout=1800)
    return HELPER_IMAGE


@pytest.fixture
def test_labels(docker_engine: DockerEngine) -> dict[str, str]:
    """Put these on every container a test creates: the session finalizer removes them."""
    return {TEST_LABEL: docker_engine.session}


def _remove_session_containers(env: dict[str, str]) -> None:
    listing = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={TEST_LABEL}={_SESSION}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    ids = listing.stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, env=env, check=False)
