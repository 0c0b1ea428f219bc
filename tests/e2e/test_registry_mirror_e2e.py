"""`EXECUTOR_DOCKER_REGISTRY_MIRROR_URL` checked against the real engine's `docker info`.

The executor cannot point the host's engine at a mirror (Sourcegraph's Firecracker runtime
configures Docker inside each VM; here the engine is the host's), so `validate` and the daemon's
start warn, naming the URL, for each configured mirror `RegistryConfig.Mirrors` does not list.
This engine lists no mirrors, so every configured URL is reported; with none set, nothing is.
"""

from __future__ import annotations

import os
import subprocess
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
