"""What the Kubernetes runtime tests share: a namespace of their own, the daemon's environment for
the test cluster, and "what is left in the namespace".

The cluster is shared: every test works in its own namespace `k8srt-<random>` and deletes it.
Pods use `hostNetwork` (the sandbox listens on 127.0.0.1; nothing else is reachable) and local
images only (`imagePullPolicy: Never`): the steps `executor-busybox:latest`, `setup-workspace`
`executor-k8s-git:latest` (`scripts/build-k8s-test-image.sh`, built by the fixture if missing).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

from k8s_access import K8sCluster

from bench._common import K8S_GIT_IMAGE, kubernetes_env

__all__ = [
    "GIT_IMAGE",
    "STEP_IMAGE",
    "ensure_git_image",
    "k8s_env",
    "leftovers",
    "new_namespace",
    "step",
]

STEP_IMAGE = "executor-busybox:latest"
GIT_IMAGE = K8S_GIT_IMAGE
ROOT = Path(__file__).resolve().parents[2]
MANAGED = "app.kubernetes.io/managed-by=sourcegraph-executor"


def ensure_git_image() -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-k8s-test-image.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"building {GIT_IMAGE} failed: {done.stderr[-2000:]}"


def new_namespace(cluster: K8sCluster) -> str:
    name = f"k8srt-{uuid.uuid4().hex[:8]}"
    cluster.run("create", "namespace", name)
    return name


def k8s_env(cluster: K8sCluster, namespace: str, **extra: str) -> dict[str, str]:
    """Variables (not EXECUTOR_-prefixed by the fixture: pass as `plain_env`)."""
    return kubernetes_env(cluster.kubeconfig, namespace, **extra)


def leftovers(cluster: K8sCluster, namespace: str) -> list[str]:
    """Every Job, Secret, PVC and pod the executor made that still exists in `namespace`."""
    out = cluster.run(
        "get", "jobs,secrets,pvc", "-n", namespace, "-l", MANAGED, "-o", "name"
    ).stdout.split()
    pods = json.loads(cluster.run("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    return out + [f"pod/{p['metadata']['name']}" for p in pods]


def step(*commands: str, key: str = "", image: str = STEP_IMAGE, **extra: Any) -> dict[str, Any]:
    return {"key": key, "image": image, "commands": list(commands), "dir": "", "env": [], **extra}
