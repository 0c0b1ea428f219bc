"""`executor validate`: what an admin checks before starting the daemon.

Sourcegraph's `cmd/executor/internal/run/validate.go`: the configuration, the tools the
runtime needs (git >= 2.26, a reachable Docker engine) and the frontend's
`GET /.executors/test/auth` with the executor token. Every failure is printed, not only the
first; the exit status is 1 when any check failed. `advisories` are printed as warnings and do
not fail: variables that do nothing with the Docker runtime, job limits above what the
Docker host has (the daemon clamps them; see `host.fit_limits`), registry mirrors the
engine does not use (`mirror.mirror_warnings`), and a step network it lacks.

With the Kubernetes runtime (`settings.runtime`), git and Docker are not needed beside the
executor; instead: the API server answers (`EXECUTOR_KUBERNETES_CONFIG_PATH` or the in-cluster
service account), the namespace exists, and every permission the runtime uses is granted
(SelfSubjectAccessReview; `executor.runtime.kubernetes.access`), each missing one printed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from executor.apiclient.base import RetryPolicy
from executor.apiclient.queue import QueueClient
from executor.config.settings import Settings, no_effect
from executor.errors import ApiError
from executor.run.host import (
    WIRE_VERSION,
    fit_limits,
    host_resources,
    step_network_warnings,
    tool_version,
)
from executor.run.mirror import mirror_warnings
from executor.runtime import forwarded_env

__all__ = ["advisories", "validate"]

#: The oldest git whose `fetch` and sparse-checkout flags the workspace uses.
MIN_GIT = (2, 26)


async def validate(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Every failed check as one line; empty when all passed."""
    env = forwarded_env(environ)
    failures: list[str] = []
    if settings.runtime == "kubernetes":
        return await _check_kubernetes(settings, environ) + await _check_frontend(settings)
    git = tool_version(["git", "version"], env)
    match = re.search(r"(\d+)\.(\d+)", git)
    if not match:
        failures.append("git is not installed or not on PATH")
    elif (int(match.group(1)), int(match.group(2))) < MIN_GIT:
        failures.append(f"git >= 2.26 is required, found {match.group(0)}")
    if not tool_version(["docker", "version", "-f", "{{.Server.Version}}"], env):
        failures.append(
            "the Docker engine is not reachable (is dockerd running and is this "
            "user allowed to use its socket?)"
        )
    failures += await _check_frontend(settings)
    return failures


def advisories(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Warnings that do not fail validation: settings without effect, limits to be clamped."""
    env = forwarded_env(environ)
    limits = fit_limits(settings.job_num_cpus, settings.job_memory, host_resources(env))
    mirrors = mirror_warnings(settings.docker_registry_mirror_url, env)
    network = step_network_warnings(settings.step_network, env)
    return no_effect(environ) + list(limits.warnings) + mirrors + network


async def _check_kubernetes(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    from executor.errors import ConfigError
    from executor.runtime.kubernetes.access import rbac_problems, start_problems
    from executor.runtime.kubernetes.client import KubeClient

    try:
        kube = await KubeClient.connect(settings.kubernetes, environ)
    except ConfigError as err:
        return list(err.problems)
    try:
        return await start_problems(kube) + await rbac_problems(kube, settings.kubernetes)
    finally:
        await kube.close()


async def _check_frontend(settings: Settings) -> list[str]:
    client = QueueClient(
        frontend_url=settings.frontend_url,
        token=settings.token,
        executor_name=settings.executor_name,
        queues=settings.queues,
        version=WIRE_VERSION,
        retry=RetryPolicy(attempts=1),
        timeout=10.0,
    )
    try:
        await client.check_auth()
    except ApiError as err:
        return [f"frontend {settings.frontend_url}: {err}"]
    finally:
        await client.aclose()
    return []
