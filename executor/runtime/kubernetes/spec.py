"""The objects of one job, as pure functions: names, labels, the Secret, the PVC and the Job.

Sourcegraph's single-job-pod shape (`SPS:cmd/executor/internal/worker/command/kubernetes.go`
`NewKubernetesSingleJob`, `worker/runner/kubernetes.go`, `worker/runtime/kubernetes.go`):

* names `sg-executor-job-<queue>-<id>`, its Secret `…-secrets` (key `TOKEN`, the job token) and,
  for `KUBERNETES_JOB_VOLUME_TYPE=pvc`, its PVC `…-pvc` (ReadWriteOnce);
* a `batch/v1` Job, `backoffLimit: 0`, pod `restartPolicy: Never`, `activeDeadlineSeconds` =
  `KUBERNETES_JOB_DEADLINE`, the volume `job-data` (emptyDir with `sizeLimit`, or the PVC) at
  `/job`, the extra volumes and mounts, node name and selector, affinities, tolerations, pull
  secrets, annotations;
* init container `setup-workspace` (`KUBERNETES_SINGLE_JOB_STEP_IMAGE`): `git init`, the
  remote `<frontend>/.executors/git/<repo>`, `fetch` with Sourcegraph's headers and the token
  from the Secret's env (`$TOKEN`, expanded by the shell in the pod: never in the spec), checkout,
  then the job files and `nextIndex.sh`;
* one init container per step, `step-kubernetes-<key>`, `sh -c 'if [ "$(/job/nextIndex.sh …)" !=
  skip ]; then /bin/sh /job/.sourcegraph-executor/<script>; fi'` in `/job/<dir>`; the container
  `main` echoes `complete`.

Ours, on purpose:
* The job files travel in the Secret (keys `file-<n>`), mounted read-only into
  `setup-workspace` only, and are copied with `cp`: binary-safe, no shell quoting of content,
  nothing of them in the Job object. Paths are checked lexically (no absolute path, no `..`).
* Labels: `app.kubernetes.io/managed-by=sourcegraph-executor`, the executor (`…/executor`: the
  executor name, hashed to fit a label) and the job (`…/job`: its record UID); annotations carry
  them in full, with the host and the owner's liveness-lock path (for the janitor).
* `terminationGracePeriodSeconds: 5` (a cancelled pod goes in seconds, not 30), no
  service-account token in the pod, no service links.
* `securityContext` from `KUBERNETES_RUN_AS_USER`/`_GROUP`/`KUBERNETES_FS_GROUP` (Sourcegraph's
  stored single-pod builder sets none; its legacy builder did), `hostNetwork`
  (`KUBERNETES_JOB_HOST_NETWORK`), `imagePullPolicy` (`KUBERNETES_IMAGE_PULL_POLICY`).
* `nextIndex.sh` implements the handler's skip protocol (`worker/handler.py`): after a `.pre`
  step, while `skip.json` in that step's directory names a `nextStep`, the steps after it are
  skipped until that key, which runs and clears the file (Sourcegraph reads `/job/skip.json`).

Pure: no client, no I/O. Manifests are plain dicts in the API's JSON shape.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from executor.config.kubernetes import KubernetesSettings

__all__ = [
    "JOB_MOUNT_PATH",
    "LABEL_EXECUTOR",
    "LABEL_JOB",
    "LABEL_MANAGED_BY",
    "MANAGED_BY",
    "NEXT_INDEX_SCRIPT",
    "SECRET_LIMIT",
    "JobFile",
    "JobPlan",
    "StepPlan",
    "build_job",
    "build_pvc",
    "build_secret",
    "container_name",
    "executor_label",
    "job_name",
    "labels",
    "step_key",
]

JOB_MOUNT_PATH = "/job"
FILES_MOUNT_PATH = "/sg-executor-files"
SCRIPTS_DIR = ".sourcegraph-executor"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "sourcegraph-executor"
LABEL_EXECUTOR = "executor.sourcegraph.com/executor"
LABEL_JOB = "executor.sourcegraph.com/job"
ANNOTATION_EXECUTOR = "executor.sourcegraph.com/executor-name"
ANNOTATION_HOST = "executor.sourcegraph.com/host"
ANNOTATION_LOCK = "executor.sourcegraph.com/lock"
#: Seconds between a pod's SIGTERM and SIGKILL when it is deleted (a cancel): its PID 1 is
#: `sh -c`, which ignores SIGTERM, so Kubernetes's default 30 s would only delay the cancel.
TERMINATION_GRACE = 5
#: What a Secret may hold (the API server refuses more than 1 MiB of data); room for the token.
SECRET_LIMIT = 1024 * 1024 - 16 * 1024

_DNS_UNSAFE = re.compile(r"[^a-z0-9-]+")
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

#: `/job/nextIndex.sh <skip file> <step key>` prints `skip` when the step must not run.
NEXT_INDEX_SCRIPT = """#!/bin/sh
# Prints "skip" while the skip file names a later step; running that step clears the file.
file="$1"
[ -f "$file" ] || exit 0
next=$(sed -n 's/.*"nextStep"[[:space:]]*:[[:space:]]*"\\([^"]*\\)".*/\\1/p' "$file" | head -n 1)
if [ -z "$next" ]; then rm -f "$file"; exit 0; fi
if [ "$next" = "$2" ]; then rm -f "$file"; exit 0; fi
echo skip
"""


@dataclass(frozen=True)
class StepPlan:
    """One docker step of the job, as the pod runs it."""

    key: str  #: the log entry's key, `step.kubernetes.<key or index>`
    raw_key: str  #: the step's own key (what `skip.json` names)
    container: str  #: the init container's name
    image: str
    script: str  #: the script's file name under `/job/.sourcegraph-executor/`
    dir: str = ""
    env: Sequence[str] = ()
    #: The directory (under /job) of the last `.pre` step before this one, whose `skip.json`
    #: may skip it; None when no `.pre` step came before (the step always runs).
    skip_dir: str | None = None


@dataclass(frozen=True)
class JobFile:
    """A file `setup-workspace` writes: `path` relative to `/job`, `modified` Unix time or None."""

    path: str
    content: bytes
    modified: float | None = None


@dataclass(frozen=True)
class JobPlan:
    """Everything one job's objects are built from."""

    name: str
    job_id: int
    record_uid: str
    token: str
    executor_name: str
    host: str
    lock_path: str
    clone_url: str
    commit: str
    repository_directory: str = ""
    fetch_flags: Sequence[str] = ()
    sparse_checkout: Sequence[str] = ()
    steps: Sequence[StepPlan] = ()
    files: Sequence[JobFile] = ()


def job_name(queue: str, job_id: int) -> str:
    """Sourcegraph's `sg-executor-job-<queue>-<id>`."""
    return f"sg-executor-job-{_DNS_UNSAFE.sub('-', queue.lower())}-{job_id}"


def step_key(key: str, index: int) -> str:
    """Sourcegraph's `kubernetesKey`: `step.kubernetes.<key>`, or the index without a key."""
    return f"step.kubernetes.{key}" if key else f"step.kubernetes.{index}"


def container_name(key: str, index: int, taken: set[str]) -> str:
    """`step-kubernetes-<key>` (Sourcegraph replaces `.` by `-`), made a valid, unique DNS label."""
    name = _DNS_UNSAFE.sub("-", step_key(key, index).replace(".", "-").lower()).strip("-")[:63]
    if name in taken or name in ("setup-workspace", "main"):
        name = f"{name[:55]}-{index}".strip("-")
    taken.add(name)
    return name


def executor_label(executor_name: str) -> str:
    """The executor name as a label value (≤ 63 characters: long names end in a hash)."""
    safe = _LABEL_UNSAFE.sub("_", executor_name).strip("_.-")
    if len(safe) <= 63:
        return safe
    digest = hashlib.sha256(executor_name.encode()).hexdigest()[:16]
    return f"{safe[:46].rstrip('_.-')}-{digest}"


def labels(executor_name: str, record_uid: str) -> dict[str, str]:
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_EXECUTOR: executor_label(executor_name),
        LABEL_JOB: _LABEL_UNSAFE.sub("_", record_uid)[:63],
    }


def _meta(plan: JobPlan, name: str, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    annotations = {
        ANNOTATION_EXECUTOR: plan.executor_name,
        ANNOTATION_HOST: plan.host,
        ANNOTATION_LOCK: plan.lock_path,
        **(extra or {}),
    }
    return {
        "name": name,
        "labels": labels(plan.executor_name, plan.record_uid),
        "annotations": annotations,
    }


def build_secret(plan: JobPlan) -> dict[str, Any]:
    """The Secret: `TOKEN` and the job files. Raises ValueError when the files do not fit."""
    data = {"TOKEN": base64.b64encode(plan.token.encode()).decode()}
    size = 0
    for index, item in enumerate(plan.files):
        size += len(item.content)
        data[f"file-{index}"] = base64.b64encode(item.content).decode()
    if size > SECRET_LIMIT:
        raise ValueError(
            f"the job's files ({size} bytes) do not fit in a Kubernetes Secret "
            f"({SECRET_LIMIT} bytes at most)"
        )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(plan, f"{plan.name}-secrets"),
        "type": "Opaque",
        "data": data,
    }


def build_pvc(plan: JobPlan, settings: KubernetesSettings) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(plan, f"{plan.name}-pvc"),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": settings.job_volume_size}},
        },
    }


def _check_path(path: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or "\0" in path or ".." in parts:
        raise ValueError(f"refusing to write outside of working directory: {path}")
    return path


def setup_script(plan: JobPlan, settings: KubernetesSettings) -> str:
    """The `setup-workspace` shell script (`set -e`; the token only as `$TOKEN`)."""
    q = shlex.quote
    repo = q(_check_path(plan.repository_directory)) if plan.repository_directory else "."
    git = f"git -C {repo}"
    headers = (
        '-c http.extraHeader="Authorization: Bearer $TOKEN" '
        "-c http.extraHeader=X-Sourcegraph-Actor-UID:internal "
        f"-c http.extraHeader=X-Sourcegraph-Job-ID:{plan.job_id} "
        f"-c http.extraHeader=X-Sourcegraph-Executor-Name:{q(plan.executor_name)}"
    )
    lines = ["set -e", f"mkdir -p {repo}", f"{git} init"]
    if settings.git_ca_cert:
        lines.append(f"{git} config --local http.sslCAInfo {q(settings.git_ca_cert)}")
    lines += [
        f"{git} remote add origin {q(plan.clone_url)}",
        f"{git} config --local gc.auto 0",
    ]
    if plan.commit:
        fetch = ["--progress", "--no-recurse-submodules", *plan.fetch_flags]
        if plan.sparse_checkout:
            fetch.append("--filter=blob:none")
        lines.append(
            f"{git} {headers} -c protocol.version=2 fetch {' '.join(fetch)} origin {q(plan.commit)}"
        )
        if plan.sparse_checkout:
            paths = " ".join(q(p) for p in plan.sparse_checkout)
            lines += [
                f"{git} config --local core.sparseCheckout 1",
                f"{git} sparse-checkout set --no-cone -- {paths}",
            ]
        lines.append(
            f"{git} {headers} -c protocol.version=2 checkout --progress --force {q(plan.commit)}"
        )
    lines += [
        f"mkdir -p {JOB_MOUNT_PATH}/{SCRIPTS_DIR}",
        f"printf '%s' {q(NEXT_INDEX_SCRIPT)} > {JOB_MOUNT_PATH}/nextIndex.sh",
        f"chmod +x {JOB_MOUNT_PATH}/nextIndex.sh",
    ]
    for index, item in enumerate(plan.files):
        target = q(f"{JOB_MOUNT_PATH}/{_check_path(item.path)}")
        lines += [
            f'mkdir -p "$(dirname {target})"',
            f"cp {FILES_MOUNT_PATH}/file-{index} {target}",
            f"chmod +x {target}",
        ]
        if item.modified is not None:
            lines.append(f"touch -m -d @{int(item.modified)} {target}")
    return "\n".join(lines) + "\n"


def under_job(path: str) -> str:
    """`/job/<path>`, normalised (`.` and `` are `/job`)."""
    return posixpath.normpath(f"{JOB_MOUNT_PATH}/{path}")


def step_command(step: StepPlan) -> str:
    """`sh -c` for a step: the skip protocol, then the script as a child that SIGTERM reaches.

    The container's PID 1 is this shell, and a PID 1 without a handler ignores SIGTERM: the
    trap passes it on (as `docker run --init` does for Docker steps), so a deleted pod's step
    stops at once instead of at the end of the grace period. The exit code is the script's.
    """
    script = shlex.quote(f"{JOB_MOUNT_PATH}/{SCRIPTS_DIR}/{step.script}")
    run = (
        f"/bin/sh {script} & child=$!; trap 'kill -TERM $child 2>/dev/null' TERM; "
        "wait $child; code=$?; "
        "while kill -0 $child 2>/dev/null; do wait $child; code=$?; done; exit $code"
    )
    if step.skip_dir is None:
        return run
    skip = shlex.quote(f"{under_job(step.skip_dir)}/skip.json")
    return (
        f'if [ "$({JOB_MOUNT_PATH}/nextIndex.sh {skip} {shlex.quote(step.raw_key)})" != skip ];'
        f" then {run}; fi"
    )


def _resources(settings: KubernetesSettings) -> dict[str, Any]:
    limits = {"memory": settings.resource_limit_memory}
    requests = {"memory": settings.resource_request_memory}
    if settings.resource_limit_cpu:
        limits["cpu"] = settings.resource_limit_cpu
    if settings.resource_request_cpu:
        requests["cpu"] = settings.resource_request_cpu
    return {"limits": limits, "requests": requests}


def _affinity(settings: KubernetesSettings) -> dict[str, Any] | None:
    affinity: dict[str, Any] = {}
    expressions = settings.node_required_affinity_match_expressions
    fields = settings.node_required_affinity_match_fields
    if expressions or fields:
        term: dict[str, Any] = {}
        if expressions:
            term["matchExpressions"] = list(expressions)
        if fields:
            term["matchFields"] = list(fields)
        affinity["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    if settings.pod_affinity:
        affinity["podAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": list(settings.pod_affinity)
        }
    if settings.pod_anti_affinity:
        affinity["podAntiAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": list(settings.pod_anti_affinity)
        }
    return affinity or None


def _security_context(settings: KubernetesSettings) -> dict[str, int]:
    context = {}
    if settings.run_as_user >= 0:
        context["runAsUser"] = settings.run_as_user
    if settings.run_as_group >= 0:
        context["runAsGroup"] = settings.run_as_group
    if settings.fs_group >= 0:
        context["fsGroup"] = settings.fs_group
    return context


def build_job(plan: JobPlan, settings: KubernetesSettings) -> dict[str, Any]:
    """The `batch/v1` Job running every step of `plan` in one pod."""
    mounts = [{"name": "job-data", "mountPath": JOB_MOUNT_PATH}]
    mounts += list(settings.additional_job_volume_mounts)
    if settings.job_volume_type == "pvc":
        data: dict[str, Any] = {"persistentVolumeClaim": {"claimName": f"{plan.name}-pvc"}}
    else:
        data = {"emptyDir": {"sizeLimit": settings.job_volume_size}}
    secret = f"{plan.name}-secrets"
    volumes = [{"name": "job-data", **data}, *settings.additional_job_volumes]
    if plan.files:
        items = [{"key": f"file-{i}", "path": f"file-{i}"} for i in range(len(plan.files))]
        volumes.append({"name": "job-files", "secret": {"secretName": secret, "items": items}})
    resources = _resources(settings)

    def container(name: str, image: str, script: str, workdir: str, env: list[Any]) -> Any:
        return {
            "name": name,
            "image": image,
            "imagePullPolicy": settings.image_pull_policy,
            "command": ["sh", "-c", script],
            "env": env,
            "workingDir": workdir,
            "resources": resources,
            "volumeMounts": mounts,
        }

    token_env = {
        "name": "TOKEN",
        "valueFrom": {"secretKeyRef": {"name": secret, "key": "TOKEN"}},
    }
    setup = container(
        "setup-workspace",
        settings.single_job_step_image,
        setup_script(plan, settings),
        JOB_MOUNT_PATH,
        [token_env, {"name": "GIT_TERMINAL_PROMPT", "value": "0"}],
    )
    if plan.files:
        setup["volumeMounts"] = [
            *mounts,
            {"name": "job-files", "mountPath": FILES_MOUNT_PATH, "readOnly": True},
        ]
    init = [setup]
    for step in plan.steps:
        env: list[dict[str, str]] = []
        for pair in step.env:
            name, _, value = pair.partition("=")
            env.append({"name": name, "value": value})
        # Sourcegraph's: one user across the pod, so the helper need not mark the checkout safe.
        env.append({"name": "EXECUTOR_ADD_SAFE", "value": "false"})
        workdir = under_job(step.dir)
        init.append(container(step.container, step.image, step_command(step), workdir, env))
    main = container("main", settings.single_job_step_image, "echo complete", JOB_MOUNT_PATH, [])
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": settings.job_deadline,
        "initContainers": init,
        "containers": [main],
        "volumes": volumes,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE,
        "enableServiceLinks": False,
    }
    optional: dict[str, Any] = {
        "nodeName": settings.node_name,
        "nodeSelector": dict(settings.node_selector),
        "imagePullSecrets": [{"name": n} for n in settings.image_pull_secrets],
        "affinity": _affinity(settings),
        "tolerations": list(settings.node_tolerations),
        "securityContext": _security_context(settings),
        "hostNetwork": settings.job_host_network,
    }
    pod.update({k: v for k, v in optional.items() if v})
    template_meta = {
        "labels": labels(plan.executor_name, plan.record_uid),
        "annotations": dict(settings.job_pod_annotations),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(plan, plan.name, settings.job_annotations),
        "spec": {
            # The deadline is the pod's (as Sourcegraph's): the kubelet fails the pod with
            # reason DeadlineExceeded. A Job-level one would delete the pod without a reason.
            "backoffLimit": 0,
            "template": {"metadata": template_meta, "spec": pod},
        },
    }
