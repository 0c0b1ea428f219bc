"""Does the Docker engine use the registry mirrors the admin configured?

Sourcegraph's `cmd/executor/internal/config/config.go` reads
`EXECUTOR_DOCKER_REGISTRY_MIRROR_URL` ("supports multiple values, separated with a comma") and
its Firecracker runtime writes them into each job VM's Docker `registry-mirrors`. With the
Docker runtime the engine is the host's own, configured in `/etc/docker/daemon.json` (the
Terraform startup scripts write it), so the executor cannot apply a mirror: it checks that
`docker info` (`RegistryConfig.Mirrors`) lists each configured one and warns, naming the URL,
for every one it does not, since pulls then go to Docker Hub and hit its rate limits.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping

__all__ = ["engine_mirrors", "mirror_urls", "mirror_warnings"]


def mirror_urls(value: str) -> list[str]:
    """The comma-separated mirror URLs, empty items dropped (Go's `strings.Split` keeps them)."""
    return [url for url in value.split(",") if url]


def engine_mirrors(env: Mapping[str, str]) -> list[str] | None:
    """`RegistryConfig.Mirrors` of `docker info`; None when the engine does not answer."""
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{json .RegistryConfig.Mirrors}}"],
            capture_output=True,
            text=True,
            env=dict(env),
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        listed = json.loads(done.stdout or "null")
    except ValueError:
        return None
    return [str(url) for url in listed or []]


def _same(url: str) -> str:
    # dockerd normalises each mirror to end in "/" ("http://10.0.1.4:5000/").
    return url.rstrip("/").lower()


def mirror_warnings(value: str, env: Mapping[str, str]) -> list[str]:
    """One warning per configured mirror the engine does not list; none when none is set."""
    wanted = mirror_urls(value)
    if not wanted:
        return []
    listed = engine_mirrors(env)
    if listed is None:
        return [
            "EXECUTOR_DOCKER_REGISTRY_MIRROR_URL is set but the Docker engine did not answer "
            "`docker info`; its registry mirrors cannot be checked"
        ]
    have = {_same(url) for url in listed}
    return [
        f"EXECUTOR_DOCKER_REGISTRY_MIRROR_URL: the Docker engine does not use the mirror {url} "
        "(not in `docker info` RegistryConfig.Mirrors; add it to registry-mirrors in "
        "/etc/docker/daemon.json and restart docker), so image pulls go to Docker Hub"
        for url in wanted
        if _same(url) not in have
    ]
