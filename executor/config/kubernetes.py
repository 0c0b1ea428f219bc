"""The Kubernetes runtime's settings: Sourcegraph's names, defaults and error texts; ours marked.

Source: `SPS:cmd/executor/internal/config/config.go` (`Load`, `Validate`) and `config/kubernetes.go`
(`IsKubernetes`). Sourcegraph's names mix two prefixes: the cluster-level ones carry
`EXECUTOR_` (`EXECUTOR_KUBERNETES_NAMESPACE`, …), the job-level ones are bare
(`KUBERNETES_JOB_DEADLINE`, `KUBERNETES_KEEP_JOBS`, …); both are kept exactly.

Runtime selection (`select_runtime`): Sourcegraph runs jobs on Kubernetes when
`KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT` are both set (in a pod) and Firecracker
is off. Here also when `EXECUTOR_KUBERNETES_CONFIG_PATH` is set (a kubeconfig outside the
cluster). Sourcegraph has no explicit switch; ours is `EXECUTOR_RUNTIME` (`auto`, the default,
as above; `docker`; `kubernetes`), e.g. to run Docker jobs from inside a pod.

Deviations, on purpose:
- Only the single-job-pod mode exists (Sourcegraph's default since SPS PR #64088, later its only
  mode): `KUBERNETES_SINGLE_JOB_POD=false` is an error, and
  `EXECUTOR_KUBERNETES_PERSISTENCE_VOLUME_NAME` (the legacy shared PVC) is parsed but unused.
- Sourcegraph's texts for the two extra-volume variables name `KUBERNETES_JOB_VOLUMES` and
  `KUBERNETES_JOB_MOUNTS`, which do not exist; ours name the real variables.
- Resource quantities are checked at start (Sourcegraph's `resource.MustParse` panics later).
- Ours: `KUBERNETES_JOB_HOST_NETWORK` (pods in the host's network namespace; Sourcegraph's
  docs mention it, its `config.go` does not read it), `EXECUTOR_KUBERNETES_POD_START_TIMEOUT`
  (default 2m: how long a pod may stay Pending or a container Waiting before the job errors
  with Kubernetes's reason), `KUBERNETES_IMAGE_PULL_POLICY` (Sourcegraph hard-codes
  `IfNotPresent`; `Never` for clusters that may only use local images).

Pure: knows `goparse` and nothing else of the project.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from executor.config.goparse import parse_go_bool, parse_go_duration, parse_go_int

__all__ = [
    "RUNTIME_VARIABLE",
    "KubernetesSettings",
    "is_kubernetes",
    "kubernetes_help",
    "load_kubernetes",
    "select_runtime",
]

RUNTIME_VARIABLE = "EXECUTOR_RUNTIME"
_RUNTIMES = ("auto", "docker", "kubernetes")

# Kubernetes's quantity grammar (`resource.ParseQuantity`): a number and one suffix.
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[mkMGTPE])?$")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")


@dataclass(frozen=True)
class KubernetesSettings:
    """Every Kubernetes setting, parsed. JSON values are kept as decoded JSON (the API's shape)."""

    #: `docker` or `kubernetes` (`select_runtime`).
    runtime: str = "docker"
    config_path: str = ""
    namespace: str = "default"
    node_name: str = ""
    node_selector: Mapping[str, str] = field(default_factory=dict)
    node_required_affinity_match_expressions: list[Any] = field(default_factory=list)
    node_required_affinity_match_fields: list[Any] = field(default_factory=list)
    pod_affinity: list[Any] = field(default_factory=list)
    pod_anti_affinity: list[Any] = field(default_factory=list)
    node_tolerations: list[Any] = field(default_factory=list)
    persistence_volume_name: str = "sg-executor-pvc"
    resource_limit_cpu: str = ""
    resource_limit_memory: str = "12Gi"
    resource_request_cpu: str = ""
    resource_request_memory: str = "12Gi"
    job_deadline: int = 1200
    keep_jobs: bool = False
    run_as_user: int = -1
    run_as_group: int = -1
    fs_group: int = 1000
    job_annotations: Mapping[str, str] = field(default_factory=dict)
    job_pod_annotations: Mapping[str, str] = field(default_factory=dict)
    image_pull_secrets: list[str] = field(default_factory=list)
    single_job_pod: bool = True
    job_volume_type: str = "emptyDir"
    job_volume_size: str = "5Gi"
    additional_job_volumes: list[Any] = field(default_factory=list)
    additional_job_volume_mounts: list[Any] = field(default_factory=list)
    single_job_step_image: str = "sourcegraph/batcheshelper:insiders"
    git_ca_cert: str = ""
    job_host_network: bool = False
    pod_start_timeout: float = 120.0
    image_pull_policy: str = "IfNotPresent"


# variable → (field, kind, description). Kinds: str, int, bool, duration, quantity, selector,
# list (comma-separated), json-list, json-map, topology (a JSON list whose items need
# topologyKey).
_VARIABLES: dict[str, tuple[str, str, str]] = {
    "EXECUTOR_KUBERNETES_CONFIG_PATH": ("config_path", "str", "The path to the Kubernetes config file (default ~/.kube/config, else the in-cluster service account)."),  # noqa: E501
    "EXECUTOR_KUBERNETES_NAMESPACE": ("namespace", "str", "The namespace to run executor jobs in."),
    "EXECUTOR_KUBERNETES_NODE_NAME": ("node_name", "str", "The name of the Kubernetes node to run executor jobs in."),  # noqa: E501
    "EXECUTOR_KUBERNETES_NODE_SELECTOR": ("node_selector", "selector", "Comma-separated key=value node selector for the Jobs, e.g. foo=bar,app=my-app."),  # noqa: E501
    "EXECUTOR_KUBERNETES_NODE_REQUIRED_AFFINITY_MATCH_EXPRESSIONS": ("node_required_affinity_match_expressions", "json-list", "JSON required node affinity match expressions."),  # noqa: E501
    "EXECUTOR_KUBERNETES_NODE_REQUIRED_AFFINITY_MATCH_FIELDS": ("node_required_affinity_match_fields", "json-list", "JSON required node affinity match fields."),  # noqa: E501
    "EXECUTOR_KUBERNETES_POD_AFFINITY": ("pod_affinity", "topology", "JSON pod affinity terms (each with a topologyKey)."),  # noqa: E501
    "EXECUTOR_KUBERNETES_POD_ANTI_AFFINITY": ("pod_anti_affinity", "topology", "JSON pod anti-affinity terms (each with a topologyKey)."),  # noqa: E501
    "EXECUTOR_KUBERNETES_NODE_TOLERATIONS": ("node_tolerations", "json-list", "JSON tolerations for the Jobs."),  # noqa: E501
    "EXECUTOR_KUBERNETES_PERSISTENCE_VOLUME_NAME": ("persistence_volume_name", "str", "Legacy multi-pod mode's shared PVC (not used: single-job pods only)."),  # noqa: E501
    "EXECUTOR_KUBERNETES_RESOURCE_LIMIT_CPU": ("resource_limit_cpu", "quantity", "CPU limit of every container of a Job."),  # noqa: E501
    "EXECUTOR_KUBERNETES_RESOURCE_LIMIT_MEMORY": ("resource_limit_memory", "quantity", "Memory limit of every container of a Job."),  # noqa: E501
    "EXECUTOR_KUBERNETES_RESOURCE_REQUEST_CPU": ("resource_request_cpu", "quantity", "CPU request of every container of a Job."),  # noqa: E501
    "EXECUTOR_KUBERNETES_RESOURCE_REQUEST_MEMORY": ("resource_request_memory", "quantity", "Memory request of every container of a Job."),  # noqa: E501
    "KUBERNETES_JOB_DEADLINE": ("job_deadline", "int", "Seconds after which a Kubernetes Job is terminated (activeDeadlineSeconds)."),  # noqa: E501
    "KUBERNETES_KEEP_JOBS": ("keep_jobs", "bool", "Keep Jobs, Secrets and PVCs after the job (debugging)."),  # noqa: E501
    "KUBERNETES_RUN_AS_USER": ("run_as_user", "int", "User ID of the Job's containers (-1: the image's)."),  # noqa: E501
    "KUBERNETES_RUN_AS_GROUP": ("run_as_group", "int", "Group ID of the Job's containers (-1: the image's)."),  # noqa: E501
    "KUBERNETES_FS_GROUP": ("fs_group", "int", "fsGroup of the Job's pod (-1: none)."),
    "KUBERNETES_JOB_ANNOTATIONS": ("job_annotations", "json-map", "JSON annotations of the Jobs."),
    "KUBERNETES_JOB_POD_ANNOTATIONS": ("job_pod_annotations", "json-map", "JSON annotations of the Jobs' pods."),  # noqa: E501
    "KUBERNETES_IMAGE_PULL_SECRETS": ("image_pull_secrets", "list", "Comma-separated image pull secret names."),  # noqa: E501
    "KUBERNETES_SINGLE_JOB_POD": ("single_job_pod", "bool", "One pod per job (the only mode here; false is refused)."),  # noqa: E501
    "KUBERNETES_JOB_VOLUME_TYPE": ("job_volume_type", "str", "The /job volume: emptyDir or pvc."),
    "KUBERNETES_JOB_VOLUME_SIZE": ("job_volume_size", "quantity", "Size of the /job volume."),
    "KUBERNETES_ADDITIONAL_JOB_VOLUMES": ("additional_job_volumes", "json-list", "JSON volumes added to the Jobs."),  # noqa: E501
    "KUBERNETES_ADDITIONAL_JOB_VOLUME_MOUNTS": ("additional_job_volume_mounts", "json-list", "JSON volume mounts of every container."),  # noqa: E501
    "KUBERNETES_SINGLE_JOB_STEP_IMAGE": ("single_job_step_image", "str", "Image of setup-workspace (needs sh and git)."),  # noqa: E501
    "KUBERNETES_GIT_CA_CERT": ("git_ca_cert", "str", "CA certificate path for git (http.sslCAInfo)."),  # noqa: E501
    "KUBERNETES_JOB_HOST_NETWORK": ("job_host_network", "bool", "(ours) Run the Jobs' pods with hostNetwork."),  # noqa: E501
    "EXECUTOR_KUBERNETES_POD_START_TIMEOUT": ("pod_start_timeout", "duration", "(ours) How long a pod may be Pending, or a container Waiting, before the job errors."),  # noqa: E501
    "KUBERNETES_IMAGE_PULL_POLICY": ("image_pull_policy", "str", "(ours) imagePullPolicy of every container: Always, IfNotPresent or Never."),  # noqa: E501
}  # fmt: skip


def is_kubernetes(environ: Mapping[str, str]) -> bool:
    """Sourcegraph's `IsKubernetes`: both in-cluster service variables are set."""
    return "KUBERNETES_SERVICE_HOST" in environ and "KUBERNETES_SERVICE_PORT" in environ


def select_runtime(environ: Mapping[str, str]) -> str:
    """`docker` or `kubernetes`, from `EXECUTOR_RUNTIME` or (auto) the environment."""
    chosen = environ.get(RUNTIME_VARIABLE) or "auto"
    if chosen != "auto":
        return chosen
    if environ.get("EXECUTOR_KUBERNETES_CONFIG_PATH") or is_kubernetes(environ):
        return "kubernetes"
    return "docker"


def load_kubernetes(environ: Mapping[str, str]) -> tuple[KubernetesSettings, list[str]]:
    """Parse every Kubernetes variable; the settings and every problem (all at once)."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    runtime = environ.get(RUNTIME_VARIABLE) or "auto"
    if runtime not in _RUNTIMES:
        problems.append(
            f'invalid value "{runtime}" for {RUNTIME_VARIABLE}: want one of {", ".join(_RUNTIMES)}'
        )
    for variable, (name, kind, _) in _VARIABLES.items():
        raw = environ.get(variable, "")
        if raw == "":
            continue
        try:
            values[name] = _parse(variable, kind, raw)
        except ValueError as err:
            problems.append(str(err))
    settings = KubernetesSettings(runtime=select_runtime(environ), **values)
    if settings.job_volume_type not in ("emptyDir", "pvc"):
        problems.append("invalid KUBERNETES_JOB_VOLUME_TYPE, valid values are 'emptyDir' and 'pvc'")
    if not settings.single_job_pod:
        problems.append(
            "KUBERNETES_SINGLE_JOB_POD=false: the legacy one-Job-per-step mode is not supported "
            "by this executor; unset it (every job runs in a single pod)"
        )
    if settings.image_pull_policy not in _PULL_POLICIES:
        problems.append(
            f"invalid KUBERNETES_IMAGE_PULL_POLICY, valid values are {', '.join(_PULL_POLICIES)}"
        )
    if settings.job_deadline <= 0:
        problems.append(
            f'invalid value "{settings.job_deadline}" for KUBERNETES_JOB_DEADLINE: want a '
            "number of seconds above 0"
        )
    if settings.pod_start_timeout <= 0:
        problems.append(
            "invalid value for EXECUTOR_KUBERNETES_POD_START_TIMEOUT: want a duration above 0"
        )
    return settings, problems


def _parse(variable: str, kind: str, raw: str) -> Any:
    if kind == "str":
        return raw
    if kind in ("int", "bool", "duration"):
        parse = {"int": parse_go_int, "bool": parse_go_bool, "duration": parse_go_duration}[kind]
        try:
            return parse(raw)
        except ValueError as err:
            raise ValueError(f'invalid value "{raw}" for {variable}: {err}') from None
    if kind == "quantity":
        if not _QUANTITY.match(raw):
            raise ValueError(
                f'invalid value "{raw}" for {variable}: not a Kubernetes quantity (such as 12Gi, '
                "500m or 2)"
            )
        return raw
    if kind == "selector":
        pairs = raw.split(",")
        if any(len(p.split("=")) != 2 for p in pairs):
            raise ValueError(f"{variable} must be a comma separated list of key=value pairs")
        return dict(p.split("=") for p in pairs)
    if kind == "list":
        return [p.strip() for p in raw.split(",") if p.strip()]
    return _parse_json(variable, kind, raw)


def _parse_json(variable: str, kind: str, raw: str) -> Any:
    name = variable
    try:
        value = json.loads(raw)
    except ValueError as err:
        detail = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
        raise ValueError(f"invalid {name}, failed to parse: {detail}") from None
    if kind == "json-map":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ValueError(f"invalid {name}, failed to parse: want a JSON object of strings")
        return value
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"invalid {name}, failed to parse: want a JSON array of objects")
    if kind == "topology" and any(not item.get("topologyKey") for item in value):
        raise ValueError(f"{variable} must contain a topologyKey")
    return value


def kubernetes_help() -> list[str]:
    """One line per variable (name, description, default) for `run --help`."""
    defaults = KubernetesSettings()
    lines = [
        f"  {RUNTIME_VARIABLE:<42} (ours) auto (Kubernetes in a pod or with a kubeconfig "
        "path, else Docker), docker or kubernetes (default: auto)"
    ]
    for variable, (name, kind, description) in _VARIABLES.items():
        default = getattr(defaults, name)
        if kind == "duration":
            default = f"{int(default) // 60}m" if default % 60 == 0 else f"{default}s"
        elif isinstance(default, bool):
            default = str(default).lower()
        elif not isinstance(default, str | int):
            default = ""
        shown = f" (default: {default})" if default not in ("", None) else ""
        lines.append(f"  {variable:<42} {description}{shown}")
    return lines
