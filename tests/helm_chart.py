"""The Helm chart `deploy/helm/executor`, rendered by the real Helm engine.

`helm-python-sdk` (PyPI; `import helm_python`) binds Helm v4's Go SDK (`libhelm_c.so`) with
ctypes: `Chart.load(path).render(values, name=, namespace=, is_install=)` renders as `helm
template` does (no cluster contacted; `.Capabilities` are Helm's defaults), `lint(path, values,
strict=, namespace=, kube_version=)` is `helm lint`, and `Config(kubeconfig_path=,
namespace=).install/.uninstall/.list` are `helm install/uninstall/list` against a cluster.
Manifests are parsed back with Helm's own YAML reader (`values_from_yaml`), one document at a
time. Shared by tests/test_helm_chart.py (render, lint) and tests/k8s/test_helm_install.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python

__all__ = [
    "CHART",
    "Manifests",
    "base_values",
    "of_kind",
    "pod_spec",
    "render",
    "role_rules",
    "rule_set",
]

CHART = Path(__file__).resolve().parent.parent / "deploy" / "helm" / "executor"

#: A rendered release: (kind, name) → the parsed object.
Manifests = dict[tuple[str, str], dict[str, Any]]


def base_values(**overrides: Any) -> dict[str, Any]:
    """The values an install needs (a frontend, a token, a queue), with `overrides` on top."""
    values: dict[str, Any] = {
        "frontendUrl": "https://sourcegraph.example.com",
        "frontendPassword": "not-the-real-token",
        "queueName": "batches",
    }
    values.update(overrides)
    return values


def render(values: dict[str, Any], name: str = "rel", namespace: str = "ns1") -> Manifests:
    """Every object the chart renders with `values`, keyed by (kind, name)."""
    rendered = helm_python.Chart.load(CHART).render(
        values, name=name, namespace=namespace, is_install=True
    )
    objects: Manifests = {}
    for path, text in rendered.items():
        if not path.endswith((".yaml", ".yml")):
            continue
        for doc in text.split("\n---\n"):
            if not doc.strip():
                continue
            obj = helm_python.values_from_yaml(doc)
            if obj:
                objects[(str(obj["kind"]), str(obj["metadata"]["name"]))] = obj
    return objects


def of_kind(objects: Manifests, kind: str) -> list[dict[str, Any]]:
    return [obj for (k, _), obj in objects.items() if k == kind]


def pod_spec(objects: Manifests) -> dict[str, Any]:
    """The pod template's spec of the one Deployment."""
    (deployment,) = of_kind(objects, "Deployment")
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def role_rules(objects: Manifests) -> list[dict[str, Any]]:
    (role,) = of_kind(objects, "Role")
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def rule_set(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """Rules as (apiGroup, resource, verb) triples: what they grant, however they are grouped."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }
