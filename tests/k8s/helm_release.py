"""The Helm chart installed on the test cluster, with the executor pod talking to a sandbox.

`install_executor` builds (or reuses, cached) the project's image in the local Docker engine,
makes a namespace of its own (`helm-<random>`), installs `deploy/helm/executor` into it with the
real Helm engine (`helm_python.Config.install`) and returns an `InstalledExecutor`; `remove`
uninstalls the release and deletes the namespace, waiting until it is gone.

The network rule of the test cluster (docs/kubernetes.md): loopback only, no service network. So
the values put the pod on the host's network (`hostNetwork: true`), point the in-cluster client
at the API server's loopback address (`KUBERNETES_SERVICE_HOST=127.0.0.1`,
`KUBERNETES_SERVICE_PORT=6443`; its serving certificate has that SAN; the kubelet's own
ClusterIP values are overridden, envFrom wins over service variables), and bind the health and
metrics servers to 127.0.0.1 on free ports, since the node's ports are the machine's.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
from fixtures_sandbox import Sandbox
from helm_chart import CHART
from k8s_access import K8sCluster

from executor.config.settings import load_settings
from executor.errors import ConfigError

__all__ = ["JOB_ENV", "InstalledExecutor", "build_image", "install_executor", "runtime_supported"]

REPO = Path(__file__).resolve().parents[2]
IMAGE_TAG = "sourcegraph-executor-py:dev"
RELEASE = "t"
#: The release's objects are named `<release>-executor` (the chart's fullname).
FULLNAME = f"{RELEASE}-executor"


def build_image() -> str:
    """The project's image in the local engine (deploy/scripts/build-executor-image.sh, cached)."""
    done = subprocess.run(
        ["bash", str(REPO / "deploy" / "scripts" / "build-executor-image.sh"), IMAGE_TAG],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"building {IMAGE_TAG} failed:\n{done.stderr[-4000:]}")
    return done.stdout.strip().splitlines()[-1]


def runtime_supported() -> bool:
    """Whether this checkout's executor has the Kubernetes runtime (it accepts its settings).

    Until it has, every `EXECUTOR_KUBERNETES_*` variable is refused at start, so the install
    removes the chart's EXECUTOR_KUBERNETES_NAMESPACE (an empty `env` value) and the pod runs
    the executor without taking jobs: it still connects, heartbeats and answers /healthz.
    """
    env = {
        "EXECUTOR_FRONTEND_URL": "http://127.0.0.1:9",
        "EXECUTOR_FRONTEND_PASSWORD": "probe",
        "EXECUTOR_QUEUE_NAME": "batches",
        "EXECUTOR_KUBERNETES_NAMESPACE": "probe",
    }
    try:
        load_settings(env)
    except ConfigError as err:
        return "EXECUTOR_KUBERNETES_NAMESPACE" not in str(err)
    return True


#: The job pods' settings on the test cluster, once the runtime is there (tests/k8s/runtime_env.py
#: has the same for the runtime's own tests): hostNetwork (the sandbox is on 127.0.0.1), local
#: images only, the debootstrapped git image for setup-workspace, small memory requests.
JOB_ENV = {
    "KUBERNETES_SINGLE_JOB_STEP_IMAGE": "executor-k8s-git:latest",
    "KUBERNETES_JOB_HOST_NETWORK": "true",
    "KUBERNETES_IMAGE_PULL_POLICY": "Never",
    "KUBERNETES_FS_GROUP": "-1",
    "EXECUTOR_KUBERNETES_RESOURCE_REQUEST_MEMORY": "32Mi",
    "EXECUTOR_KUBERNETES_RESOURCE_LIMIT_MEMORY": "256Mi",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class InstalledExecutor:
    """A release of the chart in its own namespace, and the sandbox its executor talks to."""

    cluster: K8sCluster
    sandbox: Sandbox
    namespace: str
    image: str
    health_port: int
    metrics_port: int
    values: dict[str, Any]

    @property
    def kubeconfig(self) -> str:
        return str(self.cluster.kubeconfig)

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.cluster.run("-n", self.namespace, *args, check=check)

    def pods(self) -> list[dict[str, Any]]:
        out = self.kubectl(
            "get", "pods", "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "json"
        )
        items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
        return items

    def ready_pod(self) -> dict[str, Any] | None:
        for pod in self.pods():
            conditions = pod.get("status", {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return pod
        return None

    def diagnose(self) -> str:
        """What a failed wait should show: the pods, their events, the executor's log."""
        parts = [self.kubectl("get", "pods,events", "-o", "wide", check=False).stdout]
        for pod in self.pods():
            name = pod["metadata"]["name"]
            parts.append(self.kubectl("describe", "pod", name, check=False).stdout[-3000:])
            logs = self.kubectl("logs", name, "--tail=40", check=False)
            parts.append(logs.stdout + logs.stderr)
        return "\n".join(parts)

    def wait_ready(self, timeout: float = 240.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pod = self.ready_pod()
            if pod is not None:
                return pod
            time.sleep(1.0)
        raise AssertionError(f"no Ready executor pod after {timeout}s:\n{self.diagnose()}")


def install_values(
    sandbox: Sandbox, image: str, health_port: int, metrics_port: int, extra_env: dict[str, str]
) -> dict[str, Any]:
    repository, _, tag = image.rpartition(":")
    env: dict[str, str] = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": "6443",
        "EXECUTOR_QUEUE_POLL_INTERVAL": "1s",
    }
    if runtime_supported():
        env.update(JOB_ENV)
    else:
        env["EXECUTOR_KUBERNETES_NAMESPACE"] = ""
    env.update(extra_env)
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "frontendUrl": sandbox.url,
        "frontendPassword": sandbox.token,
        "queueName": "batches",
        "maximumNumJobs": 2,
        # A short deadline keeps the grace period (and so a stuck teardown) short.
        "maximumRuntimePerJob": "5m",
        "drainMarginSeconds": 60,
        "hostNetwork": True,
        "health": {"host": "127.0.0.1", "port": health_port},
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
        "env": env,
    }


def install_executor(
    cluster: K8sCluster, sandbox: Sandbox, extra_env: dict[str, str] | None = None
) -> InstalledExecutor:
    """Install the chart for `sandbox`; `extra_env` adds settings (e.g. the job step image)."""
    image = build_image()
    namespace = f"helm-{uuid.uuid4().hex[:8]}"
    cluster.run("create", "namespace", namespace)
    health_port, metrics_port = free_port(), free_port()
    values = install_values(sandbox, image, health_port, metrics_port, extra_env or {})
    installed = InstalledExecutor(
        cluster, sandbox, namespace, image, health_port, metrics_port, values
    )
    try:
        config = helm_python.Config(kubeconfig_path=cluster.kubeconfig, namespace=namespace)
        with config:
            config.install(CHART, RELEASE, values, namespace=namespace, timeout=120)
    except BaseException:
        remove(installed)
        raise
    return installed


def remove(installed: InstalledExecutor) -> None:
    """Uninstall the release and delete the namespace; raise if anything is left."""
    errors: list[str] = []
    try:
        config = helm_python.Config(
            kubeconfig_path=installed.cluster.kubeconfig, namespace=installed.namespace
        )
        with config:
            config.uninstall(RELEASE, ignore_not_found=True, timeout=120)
    except helm_python.HelmError as err:
        errors.append(f"helm uninstall: {err}")
    # The pod drains on SIGTERM (idle: it exits at once); the namespace controller then
    # needs a few passes. Generous: shared cores.
    done = installed.cluster.run(
        "delete",
        "namespace",
        installed.namespace,
        "--wait=true",
        "--timeout=400s",
        timeout=420,
        check=False,
    )
    if done.returncode != 0:
        errors.append(f"delete namespace: {done.stderr.strip()}")
    if errors:
        raise AssertionError("; ".join(errors))
