"""Smoke test of the test cluster (`scripts/k8s-cluster.sh`): the shape Sourcegraph's
single-job-pod runtime relies on (`cmd/executor/internal/worker/runtime/kubernetes.go`,
`worker/command/kubernetes.go`) works here for real.

A `batch/v1` Job with `backoffLimit: 0` and `restartPolicy: Never`, an init container and the
`main` container sharing an emptyDir at `/job`, the local step image with `imagePullPolicy:
Never`: the init container's `pods/log` is followed while it runs (its first line arrives while
it is still running), the main container sees what the init container wrote, and the Job
completes. The Job is deleted afterwards and its pod is verified gone.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from k8s_access import K8sCluster

from bench._common import wait_until

pytestmark = pytest.mark.k8s

STEP_IMAGE = "executor-busybox:latest"
DEADLINE = 180.0

# The init container prints a line, stays running for a while (so the test can see the line
# arrive before the container ends), then two more lines; every line also goes to /job/out.
INIT_SCRIPT = (
    "echo 'line 1' | tee -a /job/out; sleep 10; "
    "echo 'line 2' | tee -a /job/out; echo 'line 3' | tee -a /job/out"
)
MAIN_SCRIPT = 'test "$(cat /job/out)" = "$(printf "line 1\\nline 2\\nline 3")" && echo complete'


def job_manifest(name: str) -> dict[str, Any]:
    mount = [{"name": "job-data", "mountPath": "/job"}]

    def container(cname: str, script: str) -> dict[str, Any]:
        return {
            "name": cname,
            "image": STEP_IMAGE,
            "imagePullPolicy": "Never",
            "command": ["sh", "-c", script],
            "volumeMounts": mount,
        }

    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"executor-test": "k8s-smoke"}},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(DEADLINE),
            "template": {
                "metadata": {"labels": {"executor-test": "k8s-smoke"}},
                "spec": {
                    "restartPolicy": "Never",
                    "volumes": [{"name": "job-data", "emptyDir": {}}],
                    "initContainers": [container("produce", INIT_SCRIPT)],
                    "containers": [container("main", MAIN_SCRIPT)],
                },
            },
        },
    }


def job_pod(cluster: K8sCluster, job: str) -> dict[str, Any] | None:
    out = cluster.run("get", "pods", "-l", f"job-name={job}", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items[0] if items else None


def init_state(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = pod.get("status", {}).get("initContainerStatuses") or [{}]
    state: dict[str, Any] = statuses[0].get("state", {})
    return state


@pytest.fixture
def job_name(k8s_cluster: K8sCluster) -> Iterator[str]:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    yield name
    k8s_cluster.run(
        "delete", "job", name, "--ignore-not-found", "--cascade=foreground", "--wait=true"
    )
    wait_until(lambda: job_pod(k8s_cluster, name) is None, DEADLINE, 0.5)


def test_job_with_init_container_streams_logs_and_completes(
    k8s_cluster: K8sCluster, job_name: str
) -> None:
    k8s_cluster.run("create", "-f", "-", input=json.dumps(job_manifest(job_name)))

    def init_started() -> dict[str, Any] | None:
        pod = job_pod(k8s_cluster, job_name)
        if pod is None:
            return None
        state = init_state(pod)
        if "waiting" in state:
            reason = state["waiting"].get("reason", "")
            assert reason in ("", "ContainerCreating", "PodInitializing"), state
            return None
        return pod if state else None

    pod_name = wait_until(init_started, DEADLINE, 0.5)["metadata"]["name"]

    follow = subprocess.Popen(
        k8s_cluster.kubectl_argv("logs", "-f", pod_name, "-c", "produce"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        first = follow.stdout.readline()
        assert first == "line 1\n", first or follow.stderr.read()
        # The line came while the init container was still running: the log is followed live.
        pod = job_pod(k8s_cluster, job_name)
        assert pod is not None
        assert "running" in init_state(pod), init_state(pod)
        rest, err = follow.communicate(timeout=DEADLINE)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.communicate()
    assert follow.returncode == 0, err
    assert rest == "line 2\nline 3\n"

    k8s_cluster.run(
        "wait",
        "--for=condition=complete",
        f"job/{job_name}",
        f"--timeout={int(DEADLINE)}s",
        timeout=DEADLINE + 30,
    )
    job = json.loads(k8s_cluster.run("get", "job", job_name, "-o", "json").stdout)
    assert job["status"].get("succeeded") == 1, job["status"]
    main_log = k8s_cluster.run("logs", pod_name, "-c", "main").stdout
    assert main_log == "complete\n"
    pod = job_pod(k8s_cluster, job_name)
    assert pod is not None
    assert init_state(pod)["terminated"]["exitCode"] == 0
