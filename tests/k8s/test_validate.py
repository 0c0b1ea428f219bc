"""`executor validate` with the Kubernetes runtime: the API server is reachable and every
permission the runtime uses is asked for (SelfSubjectAccessReview), each missing one printed.

A ServiceAccount with a narrow Role (no `delete` on secrets, no `pods/log`), and a kubeconfig
built from its token: what an admin with a slightly wrong Role would have.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_daemon import run_validate, wait_for
from k8s_access import K8sCluster
from runtime_env import new_namespace

pytestmark = pytest.mark.k8s

FULL_RULES = [
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "delete", "get", "list"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete", "get", "list"]},
]


@pytest.fixture
def namespace(k8s_cluster: K8sCluster) -> Iterator[str]:
    name = new_namespace(k8s_cluster)
    yield name
    k8s_cluster.run("delete", "namespace", name, "--wait=false", check=False)


def service_account_kubeconfig(
    cluster: K8sCluster, namespace: str, rules: list[dict[str, Any]], path: Path
) -> Path:
    """A ServiceAccount bound to a Role with `rules`; a kubeconfig holding its token."""
    manifests = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "executor"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "executor"},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "executor"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "executor",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "executor", "namespace": namespace}],
        },
    ]
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests})
    cluster.run("apply", "-n", namespace, "-f", "-", input=body)

    def token_secret() -> str:
        return cluster.run(
            "get", "sa", "executor", "-n", namespace, "-o", "jsonpath={.secrets[0].name}"
        ).stdout.strip()

    secret = wait_for(token_secret, 60, interval=0.5)
    assert secret, "the token controller made no token for the ServiceAccount"
    encoded = cluster.run(
        "get", "secret", secret, "-n", namespace, "-o", "jsonpath={.data.token}"
    ).stdout
    token = base64.b64decode(encoded).decode()
    admin = json.loads(cluster.run("config", "view", "--raw", "-o", "json").stdout)
    ca = admin["clusters"][0]["cluster"]["certificate-authority-data"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {"server": "https://127.0.0.1:6443", "certificate-authority-data": ca},
            }
        ],
        "users": [{"name": "executor", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "executor"}}],
        "current-context": "test",
    }
    path.write_text(json.dumps(config))
    return path


def test_validate_names_every_missing_permission(
    sandbox: Any, k8s_cluster: K8sCluster, namespace: str, tmp_path: Path
) -> None:
    narrow = [
        {
            "apiGroups": ["batch"],
            "resources": ["jobs"],
            "verbs": ["create", "delete", "get", "list"],
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "get", "list"]},
    ]
    kubeconfig = service_account_kubeconfig(k8s_cluster, namespace, narrow, tmp_path / "sa.yaml")
    done = run_validate(
        sandbox,
        EXECUTOR_KUBERNETES_CONFIG_PATH=str(kubeconfig),
        EXECUTOR_KUBERNETES_NAMESPACE=namespace,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    failures = [line for line in done.stdout.splitlines() if line.startswith("✗")]
    assert any("may not delete secrets" in f for f in failures), done.stdout
    assert any("may not get pods/log" in f for f in failures), done.stdout
    assert not any("jobs" in f for f in failures), done.stdout
    assert len(failures) == 2, done.stdout


def test_validate_passes_with_the_full_role(
    sandbox: Any, k8s_cluster: K8sCluster, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = service_account_kubeconfig(
        k8s_cluster, namespace, FULL_RULES, tmp_path / "sa.yaml"
    )
    done = run_validate(
        sandbox,
        EXECUTOR_KUBERNETES_CONFIG_PATH=str(kubeconfig),
        EXECUTOR_KUBERNETES_NAMESPACE=namespace,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All checks passed!" in done.stdout


def test_validate_says_when_the_api_server_is_unreachable(sandbox: Any, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "nowhere.yaml"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    done = run_validate(sandbox, EXECUTOR_KUBERNETES_CONFIG_PATH=str(kubeconfig))
    assert done.returncode == 1
    assert "EXECUTOR_KUBERNETES_CONFIG_PATH" in done.stdout and "does not answer" in done.stdout
