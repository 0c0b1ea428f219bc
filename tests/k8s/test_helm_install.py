"""The Helm chart installed on the real test cluster: the executor runs there as a pod.

One release per module (`installed` fixture, its own namespace `helm-<random>`, deleted after),
with a sandbox on 127.0.0.1 as the frontend (see `helm_release` for the network rule). Each test
asserts one thing about that running executor, so a new one (the in-cluster executor completes a
job, once the Kubernetes runtime lands) is one more function using `installed`.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures_sandbox import SANDBOX_TOKEN, Sandbox
from helm_release import FULLNAME, InstalledExecutor, install_executor, remove
from k8s_access import K8sCluster
from runtime_env import ensure_git_image

from bench._common import wait_until
from executor.sandbox.server import SandboxServer
from executor.sandbox.state import SandboxSettings

pytestmark = pytest.mark.k8s


@pytest.fixture(scope="module")
def installed(
    k8s_cluster: K8sCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InstalledExecutor]:
    settings = SandboxSettings(
        token=SANDBOX_TOKEN, data_dir=tmp_path_factory.mktemp("helm-sandbox")
    )
    sandbox = Sandbox(SandboxServer(settings).start(), settings.token)
    try:
        release = install_executor(k8s_cluster, sandbox)
        try:
            release.wait_ready()
            yield release
        finally:
            remove(release)
            gone = k8s_cluster.run("get", "namespace", release.namespace, check=False)
            assert gone.returncode != 0, f"namespace {release.namespace} is still there"
    finally:
        sandbox.close()


def test_pod_becomes_ready_and_healthz_answers(installed: InstalledExecutor) -> None:
    pod = installed.wait_ready()
    (status,) = pod["status"]["containerStatuses"]
    assert status["ready"] is True
    assert status["restartCount"] == 0
    assert status["image"].endswith(installed.image)
    # The same endpoint the kubelet probes (hostNetwork: the node's, here the machine's, port).
    url = f"http://127.0.0.1:{installed.health_port}/healthz"
    with urllib.request.urlopen(url, timeout=30) as response:
        body = json.loads(response.read())
    assert response.status == 200
    assert body["healthy"] is True
    assert body["draining"] is False


def test_sandbox_receives_the_heartbeat(installed: InstalledExecutor) -> None:
    def seen() -> list[str]:
        return [
            e.hostname
            for e in installed.sandbox.store.list_executors()
            if e.queue_names == ["batches"]
        ]

    names = wait_until(seen, timeout=120, interval=0.5)
    assert len(names) == 1
    # The executor's name is <hostname>-<uuid>; its startup log line names it too.
    logs = installed.kubectl("logs", f"deployment/{FULLNAME}").stdout
    assert names[0] in logs


def test_service_account_has_exactly_the_role(installed: InstalledExecutor) -> None:
    subject = f"system:serviceaccount:{installed.namespace}:{FULLNAME}"

    def can(verb: str, resource: str) -> bool:
        done = installed.kubectl("auth", "can-i", verb, resource, f"--as={subject}", check=False)
        return done.stdout.strip() == "yes"

    for verb, resource in [
        ("create", "jobs.batch"),
        ("delete", "jobs.batch"),
        ("watch", "pods"),
        ("get", "pods/log"),
        ("create", "secrets"),
        ("delete", "secrets"),
    ]:
        assert can(verb, resource), (verb, resource)
    # rbac.janitor (the default): get and list on what it creates.
    for verb, resource in [("get", "jobs.batch"), ("list", "secrets")]:
        assert can(verb, resource), (verb, resource)
    for verb, resource in [
        ("create", "pods"),
        ("delete", "pods"),
        ("patch", "secrets"),
        ("update", "jobs.batch"),
        ("create", "persistentvolumeclaims"),  # only with jobs.volumeType=pvc
        ("get", "configmaps"),
    ]:
        assert not can(verb, resource), (verb, resource)


def test_token_is_not_in_the_pod_spec(installed: InstalledExecutor) -> None:
    pods = installed.kubectl("get", "pods", "-o", "json").stdout
    config = installed.kubectl("get", "configmaps", "-o", "json").stdout
    assert installed.sandbox.token not in pods
    assert installed.sandbox.token not in config


def test_metrics_and_disruption_budget(installed: InstalledExecutor) -> None:
    # /metrics on the metrics port (hostNetwork: reachable on 127.0.0.1; the Service's ClusterIP
    # is not, here), the port the metrics Service targets.
    url = f"http://127.0.0.1:{installed.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert "src_executor_processor_handlers" in response.read().decode()
    service = json.loads(
        installed.kubectl("get", "service", f"{FULLNAME}-metrics", "-o", "json").stdout
    )
    assert service["spec"]["ports"][0]["port"] == installed.metrics_port
    # The budget, in the API version the cluster serves (policy/v1beta1 on 1.20), sees the pod.
    pdb = json.loads(installed.kubectl("get", "pdb", FULLNAME, "-o", "json").stdout)
    assert pdb["apiVersion"] in ("policy/v1", "policy/v1beta1")
    assert pdb["spec"]["maxUnavailable"] == 1

    def counted() -> dict[str, Any] | None:
        got = json.loads(installed.kubectl("get", "pdb", FULLNAME, "-o", "json").stdout)
        status: dict[str, Any] = got.get("status", {})
        return status if status.get("expectedPods") else None

    status = wait_until(counted, timeout=120, interval=1)
    assert status["expectedPods"] == 1
    assert status["disruptionsAllowed"] == 1


def test_in_cluster_executor_completes_a_job(
    installed: InstalledExecutor, sample_repo: Any
) -> None:
    ensure_git_image()
    box = installed.sandbox
    box.add_repo(sample_repo.name, sample_repo.path)
    job_id = box.enqueue(
        {
            "repositoryName": sample_repo.name,
            "commit": sample_repo.head,
            "shallowClone": True,
            "dockerSteps": [
                {
                    "key": "hello",
                    "image": "executor-busybox:latest",
                    "commands": ["cat src/hello.txt", "echo from-the-cluster"],
                    "dir": "",
                    "env": [],
                }
            ],
        }
    )
    done = box.wait_state(job_id, timeout=300)
    assert done["state"] == "completed", (done, installed.diagnose())
    entries = {e["key"]: e for e in done["execution_logs"] or []}
    step = entries["step.kubernetes.hello"]
    assert step["exitCode"] == 0
    assert "stdout: hello" in step["out"]
    assert "stdout: from-the-cluster" in step["out"]
    # The Job ran in the release's namespace (the Role's), and nothing of it is left.
    left = wait_until(
        lambda: (
            not installed.kubectl(
                "get",
                "jobs,secrets",
                "-l",
                "app.kubernetes.io/managed-by=sourcegraph-executor",
                "-o",
                "name",
            ).stdout.split()
        ),
        timeout=120,
        interval=1,
    )
    assert left


def test_validate_in_the_pod_finds_every_permission(installed: InstalledExecutor) -> None:
    """`executor validate` inside the pod: the chart's Role has what the runtime checks for."""
    pod = installed.wait_ready()["metadata"]["name"]
    done = installed.kubectl("exec", pod, "--", "executor", "validate", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "may not" not in done.stdout + done.stderr


def step_body(repo: Any, *commands: str) -> dict[str, Any]:
    return {
        "repositoryName": repo.name,
        "commit": repo.head,
        "shallowClone": True,
        "dockerSteps": [
            {
                "key": "slow",
                "image": "executor-busybox:latest",
                "commands": list(commands),
                "dir": "",
                "env": [],
            }
        ],
    }


def test_stopping_the_pod_drains_its_running_job(
    installed: InstalledExecutor, sample_repo: Any
) -> None:
    """Last in the module: it replaces the executor pod (the Deployment starts a new one)."""
    ensure_git_image()
    box = installed.sandbox
    box.add_repo(sample_repo.name, sample_repo.path)
    old = installed.wait_ready()["metadata"]["name"]
    follow = subprocess.Popen(
        installed.cluster.kubectl_argv("-n", installed.namespace, "logs", "-f", old),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        job_id = box.enqueue(step_body(sample_repo, "echo started", "sleep 20", "echo finished"))

        def step_started() -> bool:
            entries = {e["key"]: e for e in box.job(job_id)["execution_logs"] or []}
            return "stdout: started" in entries.get("step.kubernetes.slow", {}).get("out", "")

        wait_until(step_started, timeout=300, interval=0.5)
        # SIGTERM to the executor (tini forwards it): it drains instead of dying.
        installed.kubectl("delete", "pod", old, "--wait=false")
        done = box.wait_state(job_id, timeout=300)
        assert done["state"] == "completed", (done, installed.diagnose())
        entries = {e["key"]: e for e in done["execution_logs"] or []}
        assert "stdout: finished" in entries["step.kubernetes.slow"]["out"]
        out, _ = follow.communicate(timeout=300)
    finally:
        follow.kill()
    events = [
        json.loads(line).get("event", "") for line in out.splitlines() if line.startswith("{")
    ]
    drain = events.index("draining: no new jobs will be dequeued")
    stopped = events.index("executor stopped")
    assert drain < stopped

    # A fresh executor takes over (strategy Recreate: after the old one has gone).
    def fresh() -> str | None:
        pod = installed.ready_pod()
        name = pod["metadata"]["name"] if pod else None
        return name if name != old else None

    assert wait_until(fresh, timeout=400, interval=1) != old
