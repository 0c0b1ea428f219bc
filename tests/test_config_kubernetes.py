"""The Kubernetes runtime's settings (`executor.config.kubernetes`): Sourcegraph's names, defaults
and error texts (`SPS:cmd/executor/internal/config/config.go`), every problem at once, and the
runtime selection."""

from __future__ import annotations

import pytest

from executor.config.kubernetes import KubernetesSettings, select_runtime
from executor.config.settings import help_text, load_settings
from executor.errors import ConfigError

BASE = {
    "EXECUTOR_FRONTEND_URL": "http://sourcegraph.test:3080",
    "EXECUTOR_FRONTEND_PASSWORD": "hunter2hunter2",
    "EXECUTOR_QUEUE_NAME": "batches",
}

#: Every variable of Sourcegraph's `config.go` that the Kubernetes runtime reads.
SOURCEGRAPH = [
    "EXECUTOR_KUBERNETES_CONFIG_PATH", "EXECUTOR_KUBERNETES_NODE_NAME",
    "EXECUTOR_KUBERNETES_NODE_SELECTOR",
    "EXECUTOR_KUBERNETES_NODE_REQUIRED_AFFINITY_MATCH_EXPRESSIONS",
    "EXECUTOR_KUBERNETES_NODE_REQUIRED_AFFINITY_MATCH_FIELDS", "EXECUTOR_KUBERNETES_POD_AFFINITY",
    "EXECUTOR_KUBERNETES_POD_ANTI_AFFINITY", "EXECUTOR_KUBERNETES_NODE_TOLERATIONS",
    "EXECUTOR_KUBERNETES_NAMESPACE", "EXECUTOR_KUBERNETES_PERSISTENCE_VOLUME_NAME",
    "EXECUTOR_KUBERNETES_RESOURCE_LIMIT_CPU", "EXECUTOR_KUBERNETES_RESOURCE_LIMIT_MEMORY",
    "EXECUTOR_KUBERNETES_RESOURCE_REQUEST_CPU", "EXECUTOR_KUBERNETES_RESOURCE_REQUEST_MEMORY",
    "KUBERNETES_JOB_DEADLINE", "KUBERNETES_KEEP_JOBS", "KUBERNETES_RUN_AS_USER",
    "KUBERNETES_RUN_AS_GROUP", "KUBERNETES_FS_GROUP", "KUBERNETES_SINGLE_JOB_POD",
    "KUBERNETES_JOB_VOLUME_TYPE", "KUBERNETES_JOB_VOLUME_SIZE",
    "KUBERNETES_ADDITIONAL_JOB_VOLUMES", "KUBERNETES_ADDITIONAL_JOB_VOLUME_MOUNTS",
    "KUBERNETES_SINGLE_JOB_STEP_IMAGE", "KUBERNETES_GIT_CA_CERT", "KUBERNETES_JOB_ANNOTATIONS",
    "KUBERNETES_JOB_POD_ANNOTATIONS", "KUBERNETES_IMAGE_PULL_SECRETS",
]  # fmt: skip


def test_defaults_are_sourcegraphs() -> None:
    k = load_settings(BASE).kubernetes
    assert (k.namespace, k.resource_limit_memory, k.resource_request_memory) == (
        "default",
        "12Gi",
        "12Gi",
    )
    assert (k.resource_limit_cpu, k.resource_request_cpu) == ("", "")
    assert (k.job_deadline, k.keep_jobs, k.fs_group) == (1200, False, 1000)
    assert (k.run_as_user, k.run_as_group) == (-1, -1)
    assert (k.job_volume_type, k.job_volume_size) == ("emptyDir", "5Gi")
    assert k.single_job_step_image == "sourcegraph/batcheshelper:insiders"
    assert (k.job_host_network, k.pod_start_timeout) == (False, 120.0)


def test_every_sourcegraph_variable_is_documented() -> None:
    text = help_text()
    assert [v for v in SOURCEGRAPH if v not in text] == []
    assert "EXECUTOR_KUBERNETES_POD_START_TIMEOUT" in text and "(default: 2m)" in text


def test_values_parse() -> None:
    k = load_settings(
        {
            **BASE,
            "EXECUTOR_KUBERNETES_NODE_SELECTOR": "a=b,c=d",
            "EXECUTOR_KUBERNETES_NODE_TOLERATIONS": '[{"key":"k","operator":"Exists"}]',
            "EXECUTOR_KUBERNETES_POD_AFFINITY": '[{"topologyKey":"kubernetes.io/hostname"}]',
            "KUBERNETES_JOB_ANNOTATIONS": '{"x":"y"}',
            "KUBERNETES_IMAGE_PULL_SECRETS": "one, two",
            "KUBERNETES_KEEP_JOBS": "1",
            "KUBERNETES_JOB_DEADLINE": "30",
            "EXECUTOR_KUBERNETES_POD_START_TIMEOUT": "45s",
            "KUBERNETES_JOB_VOLUME_TYPE": "pvc",
        }
    ).kubernetes
    assert k.node_selector == {"a": "b", "c": "d"}
    assert k.node_tolerations == [{"key": "k", "operator": "Exists"}]
    assert k.job_annotations == {"x": "y"}
    assert k.image_pull_secrets == ["one", "two"]
    assert (k.keep_jobs, k.job_deadline, k.pod_start_timeout) == (True, 30, 45.0)
    assert k.job_volume_type == "pvc"


def test_every_problem_at_once_with_sourcegraphs_texts() -> None:
    env = {
        **BASE,
        "EXECUTOR_KUBERNETES_POD_AFFINITY": "[{",
        "EXECUTOR_KUBERNETES_POD_ANTI_AFFINITY": "[{}]",
        "EXECUTOR_KUBERNETES_NODE_SELECTOR": "novalue",
        "EXECUTOR_KUBERNETES_NODE_TOLERATIONS": "nope",
        "KUBERNETES_JOB_ANNOTATIONS": "[1]",
        "KUBERNETES_JOB_VOLUME_TYPE": "hostPath",
        "KUBERNETES_JOB_DEADLINE": "soon",
        "EXECUTOR_KUBERNETES_RESOURCE_LIMIT_MEMORY": "lots",
        "KUBERNETES_SINGLE_JOB_POD": "false",
        "EXECUTOR_RUNTIME": "podman",
    }
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    problems = info.value.problems
    expected = [
        "invalid EXECUTOR_KUBERNETES_POD_AFFINITY, failed to parse",
        "EXECUTOR_KUBERNETES_POD_ANTI_AFFINITY must contain a topologyKey",
        "EXECUTOR_KUBERNETES_NODE_SELECTOR must be a comma separated list of key=value pairs",
        "invalid EXECUTOR_KUBERNETES_NODE_TOLERATIONS, failed to parse",
        "invalid KUBERNETES_JOB_ANNOTATIONS, failed to parse",
        "invalid KUBERNETES_JOB_VOLUME_TYPE, valid values are 'emptyDir' and 'pvc'",
        'invalid value "soon" for KUBERNETES_JOB_DEADLINE',
        'invalid value "lots" for EXECUTOR_KUBERNETES_RESOURCE_LIMIT_MEMORY',
        "KUBERNETES_SINGLE_JOB_POD=false",
        'invalid value "podman" for EXECUTOR_RUNTIME',
    ]
    missing = [e for e in expected if not any(p.startswith(e) for p in problems)]
    assert missing == [], problems
    assert len(problems) == len(expected)


@pytest.mark.parametrize(
    ("env", "runtime"),
    [
        ({}, "docker"),
        ({"KUBERNETES_SERVICE_HOST": "127.0.0.1"}, "docker"),  # both are needed
        ({"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}, "kubernetes"),
        ({"EXECUTOR_KUBERNETES_CONFIG_PATH": "/k/config"}, "kubernetes"),
        ({"EXECUTOR_KUBERNETES_CONFIG_PATH": "/k/config", "EXECUTOR_RUNTIME": "docker"}, "docker"),
        ({"EXECUTOR_RUNTIME": "kubernetes"}, "kubernetes"),
    ],
)
def test_runtime_selection(env: dict[str, str], runtime: str) -> None:
    assert select_runtime(env) == runtime
    assert load_settings({**BASE, **env}).runtime == runtime


def test_settings_object_defaults_match_loaded_defaults() -> None:
    assert load_settings(BASE).kubernetes == KubernetesSettings()
