"""The test cluster for the Kubernetes tests: found, never started, here.

`scripts/k8s-cluster.sh up` starts a single-node Kubernetes on loopback and leaves its state in
`EXECUTOR_K8S_STATE` (default `/var/tmp/executor-k8s`): `admin.kubeconfig` and `bin/kubectl`, the
kubectl built with the cluster (its own version, so no client/server skew). The `k8s_cluster`
session fixture checks the API server answers `/readyz` and the node is Ready, and fails every
test that needs it, with the command to run, when it does not: a missing cluster is an error,
never a skip. See docs/kubernetes.md.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from k8s_access import K8sCluster

__all__ = ["k8s_cluster"]

DEFAULT_STATE = "/var/tmp/executor-k8s"
UP_HINT = "run: bash scripts/k8s-cluster.sh build && bash scripts/k8s-cluster.sh up"


def _problem(cluster: K8sCluster) -> str | None:
    """Why `cluster` cannot be used, or None when it can."""
    for path in (cluster.kubeconfig, cluster.kubectl):
        if not path.exists():
            return f"{path} does not exist"
    try:
        ready = cluster.run("get", "--raw", "/readyz", timeout=30, check=False)
        if ready.returncode != 0:
            return f"the API server is not ready: {ready.stderr.strip()}"
        node = cluster.run(
            "get",
            "nodes",
            "-o",
            'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}',
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"kubectl failed: {exc}"
    if "True" not in node.stdout.split():
        return f"no node is Ready ({node.stdout.strip() or node.stderr.strip()})"
    return None


@pytest.fixture(scope="session")
def k8s_cluster() -> K8sCluster:
    state = Path(os.environ.get("EXECUTOR_K8S_STATE", DEFAULT_STATE))
    cluster = K8sCluster(
        state=state, kubeconfig=state / "admin.kubeconfig", kubectl=state / "bin" / "kubectl"
    )
    problem = _problem(cluster)
    if problem is not None:
        pytest.fail(f"no test cluster in {state}: {problem}; {UP_HINT}", pytrace=False)
    return cluster
