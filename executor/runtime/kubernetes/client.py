"""The Kubernetes API, as the runtime needs it: connect, create, delete, list, watch, logs, access.

The client library is **kubernetes_asyncio** (a maintained, generated client for every API
version, kept in step with the official `kubernetes` package): the daemon is one asyncio event
loop, and the official client is blocking (every call, every watch and every followed log would
need a thread). It is imported here only, and this module only when the Kubernetes runtime is
selected (`executor.run.serve`), so a Docker daemon never loads it (its models are a large
import: idle memory matters).

Configuration as Sourcegraph's (`SPS:cmd/executor/internal/run/util.go`): the kubeconfig at
`EXECUTOR_KUBERNETES_CONFIG_PATH`, else `~/.kube/config` when it exists, else the in-cluster
service account (`KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted token). A configuration that
cannot be loaded, or an API server that does not answer, is a `ConfigError` naming the setting.

Manifests go in and out as the API's JSON (plain dicts in, client models out). Only APIs stable
from Kubernetes 1.20 on are used: `batch/v1` Job, `v1` Pod/Secret/PVC, `pods/log?follow`,
watch, `authorization.k8s.io/v1` SelfSubjectAccessReview, dry-run creates.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from executor.config.kubernetes import KubernetesSettings
from executor.errors import ConfigError

__all__ = ["ApiException", "KubeClient", "api_reason"]

_CONFIG_VARIABLE = "EXECUTOR_KUBERNETES_CONFIG_PATH"
_REQUEST_TIMEOUT = 30.0
#: Every call but the followed log and the watch (which last) gives up after this.
_TIMEOUT: dict[str, Any] = {"_request_timeout": _REQUEST_TIMEOUT}


def api_reason(err: BaseException) -> str:
    """A short, safe description of an API failure: status and the server's message."""
    if isinstance(err, ApiException):
        import json

        message = ""
        try:
            message = str(json.loads(err.body or "{}").get("message", ""))
        except (ValueError, AttributeError):
            message = ""
        return f"{err.status} {err.reason}: {message}" if message else f"{err.status} {err.reason}"
    return f"{type(err).__name__}: {err}"


class KubeClient:
    """One connection pool to the API server and the calls the runtime makes."""

    def __init__(self, api: client.ApiClient, namespace: str, source: str) -> None:
        self.api = api
        self.namespace = namespace
        #: Where the configuration came from (a path or "in-cluster"), for messages.
        self.source = source
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)

    @classmethod
    async def connect(cls, settings: KubernetesSettings, environ: Mapping[str, str]) -> KubeClient:
        """Load the configuration and check the API server answers; `ConfigError` if not."""
        configuration = client.Configuration()
        path = settings.config_path
        if not path:
            home = environ.get("HOME", "")
            default = os.path.join(home, ".kube", "config") if home else ""
            path = default if default and os.path.exists(default) else ""
        try:
            if path:
                await config.load_kube_config(
                    config_file=path, client_configuration=configuration, persist_config=False
                )
                source = path
            else:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                source = "in-cluster"
        except Exception as err:  # noqa: BLE001 - YAML, file and config errors alike
            where = f"{_CONFIG_VARIABLE}={path}" if path else f"{_CONFIG_VARIABLE} (unset)"
            raise ConfigError([f"{where}: cannot load a Kubernetes configuration: {err}"]) from None
        api = client.ApiClient(configuration)
        kube = cls(api, settings.namespace, source)
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT):
                await client.VersionApi(api).get_code()
        except (ApiException, OSError, TimeoutError, Exception) as err:  # noqa: BLE001
            await api.close()
            raise ConfigError(
                [
                    f"{_CONFIG_VARIABLE}: the Kubernetes API server {configuration.host} "
                    f"(from {source}) does not answer: {api_reason(err)}"
                ]
            ) from None
        return kube

    async def close(self) -> None:
        await self.api.close()

    # --- objects ----------------------------------------------------------------------------

    async def create(self, kind: str, body: Any, *, dry_run: bool = False) -> None:
        """Create a `Job`, `Secret` or `PersistentVolumeClaim` in the namespace."""
        extra: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        extra["_request_timeout"] = _REQUEST_TIMEOUT
        ns = self.namespace
        if kind == "Job":
            await self.batch.create_namespaced_job(ns, body, **extra)
        elif kind == "Secret":
            await self.core.create_namespaced_secret(ns, body, **extra)
        else:
            await self.core.create_namespaced_persistent_volume_claim(ns, body, **extra)

    async def delete(self, kind: str, name: str) -> bool:
        """Delete an object (Jobs with foreground propagation); False when it did not exist."""
        ns = self.namespace
        body: Any = {"propagationPolicy": "Foreground" if kind == "Job" else "Background"}
        try:
            if kind == "Job":
                await self.batch.delete_namespaced_job(name, ns, body=body, **_TIMEOUT)
            elif kind == "Secret":
                await self.core.delete_namespaced_secret(name, ns, body=body, **_TIMEOUT)
            else:
                await self.core.delete_namespaced_persistent_volume_claim(
                    name, ns, body=body, **_TIMEOUT
                )
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return True

    async def exists(self, kind: str, name: str) -> bool:
        ns = self.namespace
        try:
            if kind == "Job":
                await self.batch.read_namespaced_job(name, ns, **_TIMEOUT)
            elif kind == "Secret":
                await self.core.read_namespaced_secret(name, ns, **_TIMEOUT)
            else:
                await self.core.read_namespaced_persistent_volume_claim(name, ns, **_TIMEOUT)
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return True

    async def list_metadata(self, kind: str, selector: str) -> list[Any]:
        """The `metadata` of every object of `kind` matching the label `selector`."""
        ns = self.namespace
        found: Any
        if kind == "Job":
            found = await self.batch.list_namespaced_job(ns, label_selector=selector, **_TIMEOUT)
        elif kind == "Secret":
            found = await self.core.list_namespaced_secret(ns, label_selector=selector, **_TIMEOUT)
        else:
            found = await self.core.list_namespaced_persistent_volume_claim(
                ns, label_selector=selector, **_TIMEOUT
            )
        return [item.metadata for item in found.items]

    async def job_pods(self, job_name: str) -> tuple[list[Any], str]:
        """The pods of a Job (`job-name=<name>`) and the list's resource version."""
        found = await self.core.list_namespaced_pod(
            self.namespace, label_selector=f"job-name={job_name}", **_TIMEOUT
        )
        return list(found.items), str(found.metadata.resource_version or "")

    async def watch_job_pods(self, job_name: str, resource_version: str) -> AsyncIterator[Any]:
        """Pod events (`{"type", "object"}`) of a Job from `resource_version`, for ≤ 60 s."""
        async with watch.Watch() as stream:
            async for event in stream.stream(
                self.core.list_namespaced_pod,
                self.namespace,
                label_selector=f"job-name={job_name}",
                resource_version=resource_version,
                timeout_seconds=60,
                allow_watch_bookmarks=False,
            ):
                yield event

    async def open_log(self, pod: str, container: str, since_seconds: int | None) -> Any:
        """A followed `pods/log` response (aiohttp) of one container, with timestamps."""
        extra: dict[str, Any] = {"since_seconds": since_seconds} if since_seconds else {}
        return await self.core.read_namespaced_pod_log(
            pod,
            self.namespace,
            container=container,
            follow=True,
            timestamps=True,
            _preload_content=False,
            **extra,
        )

    # --- access ----------------------------------------------------------------------------

    async def may(self, verb: str, resource: str, *, group: str = "", sub: str = "") -> bool:
        """A SelfSubjectAccessReview: may this identity `verb` `resource` in the namespace?"""
        review: Any = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": self.namespace,
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "subresource": sub,
                }
            },
        }
        answer = await client.AuthorizationV1Api(self.api).create_self_subject_access_review(review)
        return bool(answer.status.allowed)
