"""What the executor may do in its namespace: `executor validate`'s RBAC check and the start check.

The permissions (a Role in the job namespace) are Sourcegraph's
(`SPS:cmd/executor/kubernetes/batches/executor-batches.Role.yml`: `jobs` create/delete; `pods`,
`pods/log` get/list/watch; `secrets` create/delete; `persistentvolumeclaims` for the pvc
volume type) plus what only this executor does: `get` (was it deleted?) and `list` (the janitor)
on jobs, secrets and PVCs. Each is asked with a SelfSubjectAccessReview, so `validate` prints
every missing one, naming verb, resource and namespace.

At start (`start_problems`) a server-side dry-run create of a Secret says whether the namespace
exists and a Secret may be created there, without creating anything.
"""

from __future__ import annotations

from executor.config.kubernetes import KubernetesSettings
from executor.runtime.kubernetes.client import ApiException, KubeClient, api_reason

__all__ = ["rbac_problems", "required_permissions", "start_problems"]


def required_permissions(settings: KubernetesSettings) -> list[tuple[str, str, str, str]]:
    """`(verb, group, resource, subresource)` the runtime uses, in a stable order."""
    needed = [(verb, "batch", "jobs", "") for verb in ("create", "delete", "get", "list")]
    needed += [(verb, "", "secrets", "") for verb in ("create", "delete", "get", "list")]
    if settings.job_volume_type == "pvc":
        needed += [
            (verb, "", "persistentvolumeclaims", "") for verb in ("create", "delete", "get", "list")
        ]
    needed += [(verb, "", "pods", "") for verb in ("get", "list", "watch")]
    needed.append(("get", "", "pods", "log"))
    return needed


async def rbac_problems(kube: KubeClient, settings: KubernetesSettings) -> list[str]:
    """One line per permission the identity lacks in the namespace."""
    missing: list[str] = []
    for verb, group, resource, sub in required_permissions(settings):
        try:
            allowed = await kube.may(verb, resource, group=group, sub=sub)
        except (ApiException, OSError) as err:
            return [f"cannot ask the API server what is allowed: {api_reason(err)}"]
        if not allowed:
            what = f"{resource}/{sub}" if sub else resource
            api = f" ({group})" if group else ""
            missing.append(
                f"Kubernetes RBAC: may not {verb} {what}{api} in namespace {kube.namespace!r}"
            )
    return missing


async def start_problems(kube: KubeClient) -> list[str]:
    """Whether the namespace exists and Secrets may be created there (a dry run)."""
    probe = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sg-executor-start-check"},
        "data": {},
    }
    try:
        await kube.create("Secret", probe, dry_run=True)
    except ApiException as err:
        if err.status == 404:
            return [
                f"EXECUTOR_KUBERNETES_NAMESPACE: namespace {kube.namespace!r} does not exist "
                f"(API server from {kube.source})"
            ]
        if err.status == 409:
            return []  # a Secret of that name exists: the namespace does, creating is allowed
        return [
            f"EXECUTOR_KUBERNETES_NAMESPACE: cannot create a Secret in namespace "
            f"{kube.namespace!r}: {api_reason(err)}"
        ]
    except OSError as err:
        return [f"EXECUTOR_KUBERNETES_CONFIG_PATH: the API server failed: {err}"]
    return []
