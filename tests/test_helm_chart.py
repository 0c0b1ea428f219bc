"""The Helm chart (`deploy/helm/executor`) rendered and linted by the real Helm engine.

What is checked against what: the Role against `../shared/spec/kubernetes.md` §1 (Sourcegraph's
RBAC for the native runtime: jobs create/delete; pods, pods/log get/list/watch; secrets
create/delete; persistentvolumeclaims only for the pvc job volume), the probes against
`executor/run/health.py` (`GET /healthz` on EXECUTOR_HEALTH_SERVER_ADDR), the grace period against
the drain of `executor/run/serve.py` (each running job bounded by EXECUTOR_MAXIMUM_RUNTIME_PER_JOB).
The install on the test cluster is tests/k8s/test_helm_install.py.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import helm_python
import pytest
from helm_chart import CHART, base_values, of_kind, pod_spec, render, role_rules, rule_set

#: §1's RBAC, as (apiGroup, resource, verb).
SECTION1_RBAC = {
    ("batch", "jobs", "create"),
    ("batch", "jobs", "delete"),
    *(("", res, verb) for res in ("pods", "pods/log") for verb in ("get", "list", "watch")),
    ("", "secrets", "create"),
    ("", "secrets", "delete"),
}
PVC_RBAC = {("", "persistentvolumeclaims", "create"), ("", "persistentvolumeclaims", "delete")}
#: What only this executor adds (`rbac.janitor`, on by default): get and list on what it creates,
#: for its deletion checks and its janitor (executor/runtime/kubernetes/access.py).
JANITOR_RBAC = {(g, r, v) for g, r in (("batch", "jobs"), ("", "secrets")) for v in ("get", "list")}
PVC_JANITOR_RBAC = {("", "persistentvolumeclaims", v) for v in ("get", "list")}


def config_data(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, str]:
    (config_map,) = of_kind(objects, "ConfigMap")
    data: dict[str, str] = config_map["data"]
    return data


def container(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    (only,) = pod_spec(objects)["containers"]
    result: dict[str, Any] = only
    return result


@pytest.mark.parametrize("kube_version", ["v1.20.2", "v1.30.0"])
@pytest.mark.parametrize("values", [None, base_values()], ids=["chart-defaults", "install"])
def test_lint_strict_passes(kube_version: str, values: dict[str, Any] | None) -> None:
    report = helm_python.lint(
        CHART, values, strict=True, namespace="ns1", kube_version=kube_version
    )
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    # Strict: no warning either (severity 2 = warning, 3 = error); the only info is the icon.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_renders_every_object_of_the_release() -> None:
    objects = render(base_values())
    assert sorted(objects) == [
        ("ConfigMap", "rel-executor"),
        ("Deployment", "rel-executor"),
        ("PodDisruptionBudget", "rel-executor"),
        ("Role", "rel-executor"),
        ("RoleBinding", "rel-executor"),
        ("Secret", "rel-executor"),
        ("Service", "rel-executor-metrics"),
        ("ServiceAccount", "rel-executor"),
    ]
    (deployment,) = of_kind(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert container(objects)["image"] == "sourcegraph-executor-py:0.1.0"
    assert pod_spec(objects)["enableServiceLinks"] is False


def test_rbac_is_exactly_section_1_without_the_janitor_rules() -> None:
    objects = render(base_values(rbac={"janitor": False}))
    assert rule_set(role_rules(objects)) == SECTION1_RBAC


def test_rbac_default_is_section_1_plus_get_and_list_for_the_janitor() -> None:
    objects = render(base_values())
    assert rule_set(role_rules(objects)) == SECTION1_RBAC | JANITOR_RBAC
    (binding,) = of_kind(objects, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "rel-executor",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rel-executor", "namespace": "ns1"}
    ]
    assert pod_spec(objects)["serviceAccountName"] == "rel-executor"


def test_pvc_volume_type_adds_the_pvc_rule() -> None:
    pvc = {"volumeType": "pvc", "volumeSize": "10Gi"}
    exact = render(base_values(jobs=pvc, rbac={"janitor": False}))
    assert rule_set(role_rules(exact)) == SECTION1_RBAC | PVC_RBAC
    objects = render(base_values(jobs=pvc))
    assert rule_set(role_rules(objects)) == (
        SECTION1_RBAC | PVC_RBAC | JANITOR_RBAC | PVC_JANITOR_RBAC
    )
    data = config_data(objects)
    assert data["KUBERNETES_JOB_VOLUME_TYPE"] == "pvc"
    assert data["KUBERNETES_JOB_VOLUME_SIZE"] == "10Gi"


def test_no_role_when_rbac_is_managed_elsewhere() -> None:
    objects = render(base_values(rbac={"create": False}))
    assert of_kind(objects, "Role") == of_kind(objects, "RoleBinding") == []


def test_role_lives_in_the_job_namespace() -> None:
    objects = render(base_values(jobs={"namespace": "executor-jobs"}))
    for kind in ("Role", "RoleBinding"):
        (obj,) = of_kind(objects, kind)
        assert obj["metadata"]["namespace"] == "executor-jobs"
    (binding,) = of_kind(objects, "RoleBinding")
    assert binding["subjects"][0]["namespace"] == "ns1"  # the service account stays at home
    assert config_data(objects)["EXECUTOR_KUBERNETES_NAMESPACE"] == "executor-jobs"
    assert config_data(render(base_values()))["EXECUTOR_KUBERNETES_NAMESPACE"] == "ns1"


def test_token_only_in_the_secret_and_read_from_a_file() -> None:
    token = "tok-7f3a9c-do-not-leak"
    objects = render(base_values(frontendPassword=token))
    encoded = base64.b64encode(token.encode()).decode()
    for key, obj in objects.items():
        text = json.dumps(obj)
        assert token not in text, key
        if key[0] != "Secret":
            assert encoded not in text, key
    (secret,) = of_kind(objects, "Secret")
    assert secret["data"] == {"EXECUTOR_FRONTEND_PASSWORD": encoded}
    main = container(objects)
    # No env values at all: settings come from the ConfigMap, the token from the mounted file.
    assert "env" not in main
    assert main["envFrom"] == [{"configMapRef": {"name": "rel-executor"}}]
    data = config_data(objects)
    assert "EXECUTOR_FRONTEND_PASSWORD" not in data
    assert data["EXECUTOR_FRONTEND_PASSWORD_FILE"] == "/run/secrets/executor/token"
    (mount,) = [m for m in main["volumeMounts"] if m["name"] == "token"]
    assert mount == {"name": "token", "mountPath": "/run/secrets/executor", "readOnly": True}
    (volume,) = [v for v in pod_spec(objects)["volumes"] if v["name"] == "token"]
    assert volume["secret"]["secretName"] == "rel-executor"
    assert volume["secret"]["items"] == [{"key": "EXECUTOR_FRONTEND_PASSWORD", "path": "token"}]


def test_existing_secret_is_used_and_none_is_made() -> None:
    objects = render(
        base_values(frontendPassword="", existingSecret="my-token", existingSecretKey="tok")
    )
    assert of_kind(objects, "Secret") == []
    (volume,) = [v for v in pod_spec(objects)["volumes"] if v["name"] == "token"]
    assert volume["secret"]["secretName"] == "my-token"
    assert volume["secret"]["items"] == [{"key": "tok", "path": "token"}]


def test_env_cannot_carry_the_token() -> None:
    with pytest.raises(helm_python.HelmRenderError, match=r"env\.EXECUTOR_FRONTEND_PASSWORD:"):
        render(base_values(env={"EXECUTOR_FRONTEND_PASSWORD": "x"}))


def test_env_overrides_and_removes_config_keys() -> None:
    data = config_data(
        render(base_values(env={"KUBERNETES_JOB_DEADLINE": 600, "EXECUTOR_METRICS_HOST": ""}))
    )
    assert data["KUBERNETES_JOB_DEADLINE"] == "600"
    assert "EXECUTOR_METRICS_HOST" not in data


def test_step_image_only_when_given() -> None:
    assert "KUBERNETES_SINGLE_JOB_STEP_IMAGE" not in config_data(render(base_values()))
    data = config_data(render(base_values(jobs={"stepImage": "registry.example.com/helper:1"})))
    assert data["KUBERNETES_SINGLE_JOB_STEP_IMAGE"] == "registry.example.com/helper:1"


def test_concurrency_and_queues_in_the_config() -> None:
    data = config_data(
        render(base_values(queueName="", queueNames=["batches", "codeintel"], maximumNumJobs=4))
    )
    assert data["EXECUTOR_MAXIMUM_NUM_JOBS"] == "4"
    assert data["EXECUTOR_QUEUE_NAMES"] == "batches,codeintel"
    assert "EXECUTOR_QUEUE_NAME" not in data


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"frontendUrl": ""}, "frontendUrl is required"),
        ({"frontendPassword": ""}, "frontendPassword or existingSecret is required"),
        ({"queueName": ""}, "queueName or queueNames is required"),
        ({"queueNames": ["codeintel"]}, "not both"),
        # values.schema.json: types, enums, and no unknown key (a typo is not silently ignored).
        ({"jobs": {"volumeType": "hostPath"}}, "at '/jobs/volumeType': value must be one of"),
        ({"maximumNumJobs": 0}, "at '/maximumNumJobs': minimum: got 0, want 1"),
        ({"queuename": "batches"}, "additional properties 'queuename' not allowed"),
        ({"health": {"port": "8080"}}, "at '/health/port'"),
    ],
)
def test_bad_values_are_refused_by_name(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmError, match=re.escape(message)):
        render(base_values(**overrides))


@pytest.mark.parametrize(
    ("host", "port", "addr"), [("", 8080, ":8080"), ("127.0.0.1", 18080, "127.0.0.1:18080")]
)
def test_probes_point_at_the_health_address(host: str, port: int, addr: str) -> None:
    objects = render(base_values(health={"host": host, "port": port}))
    assert config_data(objects)["EXECUTOR_HEALTH_SERVER_ADDR"] == addr
    main = container(objects)
    (health_port,) = [p for p in main["ports"] if p["name"] == "health"]
    assert health_port["containerPort"] == port
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": "health"}, probe


def test_metrics_service_and_service_monitor() -> None:
    objects = render(base_values(metrics={"port": 9100}))
    assert config_data(objects)["EXECUTOR_METRICS_PORT"] == "9100"
    assert config_data(objects)["EXECUTOR_METRICS_HOST"] == "0.0.0.0"
    (service,) = of_kind(objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert (
        service["spec"]["selector"]
        == (of_kind(objects, "Deployment")[0]["spec"]["selector"]["matchLabels"])
    )
    assert of_kind(objects, "ServiceMonitor") == []
    monitored = render(base_values(metrics={"serviceMonitor": {"enabled": True}}))
    (monitor,) = of_kind(monitored, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


@pytest.mark.parametrize(
    ("overrides", "grace"),
    [
        ({}, 2100),  # 30m + 5m, as the image's `docker stop -t 2100` and the unit's 35min
        ({"maximumRuntimePerJob": "1h30m"}, 5700),
        ({"maximumRuntimePerJob": "90s", "drainMarginSeconds": 30}, 120),
        ({"terminationGracePeriodSeconds": 4000}, 4000),
        ({"maximumRuntimePerJob": "0", "terminationGracePeriodSeconds": 600}, 600),
    ],
)
def test_grace_period_covers_the_drain(overrides: dict[str, Any], grace: int) -> None:
    assert pod_spec(render(base_values(**overrides)))["terminationGracePeriodSeconds"] == grace


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"terminationGracePeriodSeconds": 60}, "shorter than maximumRuntimePerJob"),
        ({"maximumRuntimePerJob": "1.5h"}, "want whole hours, minutes and seconds"),
        ({"maximumRuntimePerJob": "0"}, "set terminationGracePeriodSeconds"),
    ],
)
def test_grace_period_that_cannot_drain_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=re.escape(message)):
        render(base_values(**overrides))


def test_runs_as_non_root_with_a_read_only_root() -> None:
    objects = render(base_values())
    spec = pod_spec(objects)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    security = container(objects)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    writable = {m["mountPath"] for m in container(objects)["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp", "/var/lib/executor/workspaces"}  # the image's TMPDIR
    assert container(objects)["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}


def test_pod_disruption_budget() -> None:
    (pdb,) = of_kind(render(base_values()), "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "executor",
        "app.kubernetes.io/instance": "rel",
    }
    (strict,) = of_kind(
        render(base_values(podDisruptionBudget={"enabled": True, "minAvailable": 1})),
        "PodDisruptionBudget",
    )
    assert strict["spec"] == {**strict["spec"], "minAvailable": 1}
    assert "maxUnavailable" not in strict["spec"]


def test_host_network_for_clusters_without_a_service_network() -> None:
    objects = render(
        base_values(
            hostNetwork=True,
            env={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"},
        )
    )
    assert pod_spec(objects)["hostNetwork"] is True
    assert config_data(objects)["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert "hostNetwork" not in pod_spec(render(base_values()))
