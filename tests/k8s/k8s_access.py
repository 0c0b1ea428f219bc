"""How the Kubernetes tests reach the test cluster of `scripts/k8s-cluster.sh`: its kubeconfig and
the kubectl built with it (the cluster's own version, so no client/server skew). The fixture that
finds it is `k8s_cluster` in this directory's conftest.py.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["K8sCluster"]


@dataclass(frozen=True)
class K8sCluster:
    """A running test cluster: its kubeconfig and the kubectl to talk to it with."""

    state: Path
    kubeconfig: Path
    kubectl: Path
    namespace: str = "default"

    def kubectl_argv(self, *args: str) -> list[str]:
        return [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args]

    def run(
        self, *args: str, input: str | None = None, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`kubectl ARGS` against the cluster; raises with kubectl's stderr on failure."""
        done = subprocess.run(
            self.kubectl_argv(*args),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done
