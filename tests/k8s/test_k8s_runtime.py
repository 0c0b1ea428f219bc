"""The Kubernetes runtime end to end: the daemon (`executor run`) against the sandbox, running
jobs as single pods on the real test cluster (`scripts/k8s-cluster.sh`).

Every test has its own namespace and checks that nothing of the executor is left in it: no Job,
Secret, PVC or pod. Bounds are generous (shared cores): they catch a hang, not a slow machine.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fixtures_daemon import wait_for
from k8s_access import K8sCluster
from runtime_env import ensure_git_image, k8s_env, leftovers, new_namespace, step

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

FINAL = ("completed", "errored", "failed", "canceled")


@pytest.fixture(scope="module")
def git_image() -> None:
    ensure_git_image()


@pytest.fixture
def namespace(k8s_cluster: K8sCluster, git_image: None) -> Iterator[str]:
    name = new_namespace(k8s_cluster)
    yield name
    k8s_cluster.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def box(sandbox_factory: Callable[..., Any], sample_repo: Any) -> Any:
    """A sandbox that does not retry errored jobs, hosting the sample repository."""
    sandbox = sandbox_factory(max_num_retries=0)
    sandbox.add_repo(sample_repo.name, sample_repo.path)
    sandbox.repo = sample_repo
    return sandbox


@pytest.fixture
def start(
    daemon_factory: Any, box: Any, k8s_cluster: K8sCluster, namespace: str
) -> Callable[..., Any]:
    def run(plain: dict[str, str] | None = None, **overrides: str) -> Any:
        env = k8s_env(k8s_cluster, namespace, **(plain or {}))
        return daemon_factory(box, plain_env=env, **overrides)

    return run


def job(box: Any, *steps: dict[str, Any], **extra: Any) -> int:
    body = {
        "repositoryName": box.repo.name,
        "commit": box.repo.head,
        "shallowClone": True,
        "dockerSteps": list(steps),
        **extra,
    }
    return int(box.enqueue(body))


def logs(box: Any, job_id: int) -> dict[str, dict[str, Any]]:
    return {e["key"]: e for e in box.job(job_id)["execution_logs"] or []}


def nothing_left(cluster: K8sCluster, namespace: str, timeout: float = 120) -> list[str]:
    left = wait_for(lambda: not leftovers(cluster, namespace), timeout, interval=1)
    return [] if left else leftovers(cluster, namespace)


def test_two_steps_complete_through_the_sandbox(
    start: Callable[..., Any], box: Any, k8s_cluster: K8sCluster, namespace: str
) -> None:
    daemon = start()
    job_id = job(
        box,
        step("cat src/hello.txt; echo first > /job/out.txt", key="one"),
        step('cat /job/out.txt; echo "files: $(cat extra/data.txt)"', key="two"),
        files={"extra/data.txt": {"content": "hello from a job file"}},
    )
    done = box.wait_state(job_id, FINAL, timeout=240)
    assert done["state"] == "completed", (done["failure_message"], daemon.log_text[-3000:])
    entries = logs(box, job_id)
    assert [k for k in entries if not k.startswith("teardown")] == [
        "setup.workspace",
        "step.kubernetes.one",
        "step.kubernetes.two",
    ]
    assert "teardown.kubernetes.job" in entries
    one, two = entries["step.kubernetes.one"], entries["step.kubernetes.two"]
    assert one["exitCode"] == 0 and two["exitCode"] == 0
    assert "stdout: hello" in one["out"]  # the repository was fetched and checked out
    assert "stdout: first" in two["out"]
    assert "stdout: files: hello from a job file" in two["out"]
    assert one["command"][0] == "/bin/sh"
    assert nothing_left(k8s_cluster, namespace) == []


def test_logs_stream_while_the_step_runs(
    start: Callable[..., Any], box: Any, k8s_cluster: K8sCluster, namespace: str
) -> None:
    daemon = start()
    job_id = job(box, step("echo early; sleep 25; echo late", key="slow"))
    entry = wait_for(
        lambda: logs(box, job_id).get("step.kubernetes.slow", {}).get("out", "").count("early"),
        180,
        interval=0.2,
    )
    assert entry, logs(box, job_id)
    seen = logs(box, job_id)["step.kubernetes.slow"]
    assert "late" not in seen["out"] and seen.get("exitCode") is None
    # The job token is in the Secret only: not in the Job, the pod, the logs or the daemon's log.
    name = f"sg-executor-job-batches-{job_id}"
    encoded = k8s_cluster.run(
        "get", "secret", f"{name}-secrets", "-n", namespace, "-o", "jsonpath={.data.TOKEN}"
    ).stdout
    token = base64.b64decode(encoded).decode()
    assert len(token) >= 16
    objects = k8s_cluster.run("get", "job,pods", "-n", namespace, "-o", "json").stdout
    assert token not in objects and encoded not in objects
    done = box.wait_state(job_id, FINAL, timeout=180)
    assert done["state"] == "completed"
    final = logs(box, job_id)["step.kubernetes.slow"]
    # The script's `set -x` trace (`+ echo early`) comes too: the API merges the streams.
    output = [line for line in final["out"].splitlines() if not line.startswith("stdout: +")]
    assert output == ["stdout: early", "stdout: late"]
    assert final["exitCode"] == 0
    assert token not in json.dumps(box.job(job_id)) and token not in daemon.log_text
    assert nothing_left(k8s_cluster, namespace) == []


def test_a_missing_image_errors_fast_with_the_reason(
    start: Callable[..., Any], box: Any, k8s_cluster: K8sCluster, namespace: str
) -> None:
    start()
    started = time.monotonic()
    job_id = job(box, step("true", image="executor-no-such-image:never"))
    done = box.wait_state(job_id, FINAL, timeout=120)
    assert done["state"] in ("errored", "failed")  # failed: no retries left
    assert "ErrImageNeverPull" in done["failure_message"]
    assert time.monotonic() - started < 110  # long before the 2 min start timeout + deadline
    assert nothing_left(k8s_cluster, namespace) == []


def test_a_step_that_never_ends_meets_the_deadline(
    start: Callable[..., Any], box: Any, k8s_cluster: K8sCluster, namespace: str
) -> None:
    start(plain={"KUBERNETES_JOB_DEADLINE": "20"})
    job_id = job(box, step("echo started; sleep 3600", key="forever"))
    done = box.wait_state(job_id, FINAL, timeout=180)
    assert done["state"] in ("errored", "failed")  # failed: no retries left
    assert "DeadlineExceeded" in done["failure_message"]
    assert "started" in logs(box, job_id)["step.kubernetes.forever"]["out"]
    assert nothing_left(k8s_cluster, namespace) == []


def test_memory_past_the_limit_is_oomkilled(
    start: Callable[..., Any], box: Any, k8s_cluster: K8sCluster, namespace: str
) -> None:
    start(plain={"EXECUTOR_KUBERNETES_RESOURCE_LIMIT_MEMORY": "48Mi"})
    job_id = job(box, step("dd if=/dev/zero of=/dev/null bs=200M count=1", key="eat"))
    done = box.wait_state(job_id, FINAL, timeout=180)
    assert done["state"] in ("errored", "failed")  # failed: no retries left
    # Kubernetes says OOMKilled where the engine reports it; this machine's (cgroup v1 in a VM)
    # does not, and the message then names the SIGKILL and the limit.
    message = done["failure_message"]
    assert "OOMKilled" in message or "out of memory? the memory limit is 48Mi" in message, message
    assert "step.kubernetes.eat" in done["failure_message"]
    assert nothing_left(k8s_cluster, namespace) == []


def test_cancel_while_pending_leaves_nothing(
    start: Callable[..., Any], box: Any, k8s_cluster: K8sCluster, namespace: str
) -> None:
    start(plain={"EXECUTOR_KUBERNETES_NODE_SELECTOR": "executor-test=nowhere"})
    job_id = job(box, step("true"))
    pending = wait_for(lambda: leftovers(k8s_cluster, namespace), 120, interval=0.5)
    assert any(name.startswith("pod/") for name in pending) or pending
    box.cancel(job_id)
    assert box.wait_state(job_id, FINAL, timeout=120)["state"] in ("canceled", "failed")
    assert nothing_left(k8s_cluster, namespace) == []


def test_cancel_while_running_leaves_nothing(
    start: Callable[..., Any], box: Any, k8s_cluster: K8sCluster, namespace: str
) -> None:
    start()
    job_id = job(box, step("echo running; sleep 600", key="long"))
    assert wait_for(
        lambda: "running" in logs(box, job_id).get("step.kubernetes.long", {}).get("out", ""),
        180,
        interval=0.3,
    )
    box.cancel(job_id)
    box.wait_state(job_id, FINAL, timeout=120)
    assert nothing_left(k8s_cluster, namespace) == []


def test_kill_9_then_restart_leaves_nothing(
    start: Callable[..., Any], box: Any, k8s_cluster: K8sCluster, namespace: str
) -> None:
    first = start()
    job_id = job(box, step("echo running; sleep 600", key="long"))
    assert wait_for(
        lambda: "running" in logs(box, job_id).get("step.kubernetes.long", {}).get("out", ""),
        180,
        interval=0.3,
    )
    first.kill()
    assert leftovers(k8s_cluster, namespace)  # the killed daemon could not clean up
    # The restarted daemon polls another queue, so it cannot take the job again: only its
    # janitor (at start) acts on what the dead one left.
    second = start(queue_name="codeintel")
    assert nothing_left(k8s_cluster, namespace) == [], second.log_text[-3000:]


def test_a_namespace_that_does_not_exist_refuses_start(
    start: Callable[..., Any], namespace: str
) -> None:
    daemon = start(plain={"EXECUTOR_KUBERNETES_NAMESPACE": namespace + "-missing"})
    assert daemon.wait(120) == 2
    assert "EXECUTOR_KUBERNETES_NAMESPACE" in daemon.log_text
    assert "does not exist" in daemon.log_text


def test_a_wrong_kubeconfig_refuses_start(
    start: Callable[..., Any], tmp_path: Any, k8s_cluster: K8sCluster
) -> None:
    garbage = tmp_path / "garbage.kubeconfig"
    garbage.write_text("this: is: not: a kubeconfig\n")
    nowhere = tmp_path / "nowhere.kubeconfig"
    text = k8s_cluster.kubeconfig.read_text().replace(
        "https://127.0.0.1:6443", "https://127.0.0.1:1"
    )
    nowhere.write_text(text)
    for path in (garbage, nowhere, tmp_path / "missing.kubeconfig"):
        daemon = start(plain={"EXECUTOR_KUBERNETES_CONFIG_PATH": str(path)})
        assert daemon.wait(120) == 2, daemon.log_text[-2000:]
        assert "EXECUTOR_KUBERNETES_CONFIG_PATH" in daemon.log_text, daemon.log_text[-2000:]


def test_twenty_jobs_with_four_slots(
    start: Callable[..., Any], box: Any, k8s_cluster: K8sCluster, namespace: str
) -> None:
    start(maximum_num_jobs="4")
    ids = [job(box, step(f"echo job {i}", key="only")) for i in range(20)]
    most = 0
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        jobs = k8s_cluster.run(
            "get", "jobs", "-n", namespace, "-l", "app.kubernetes.io/managed-by", "-o", "name"
        ).stdout.split()
        most = max(most, len(jobs))
        if all(box.job(i)["state"] in FINAL for i in ids):
            break
        time.sleep(0.5)
    states = [box.job(i)["state"] for i in ids]
    assert states == ["completed"] * 20, states
    assert 1 <= most <= 4
    for i, job_id in enumerate(ids):
        assert f"stdout: job {i}" in logs(box, job_id)["step.kubernetes.only"]["out"]
    assert nothing_left(k8s_cluster, namespace) == []


def test_a_pvc_that_never_binds_is_a_clear_error(
    start: Callable[..., Any], box: Any, k8s_cluster: K8sCluster, namespace: str
) -> None:
    """The test cluster has no storage provisioner: the job's PVC stays unbound, its pod
    unschedulable; after the start timeout the job errors with the scheduler's reason, and the
    PVC goes with the rest."""
    start(
        plain={
            "KUBERNETES_JOB_VOLUME_TYPE": "pvc",
            "KUBERNETES_JOB_VOLUME_SIZE": "16Mi",
            "EXECUTOR_KUBERNETES_POD_START_TIMEOUT": "15s",
        }
    )
    job_id = job(box, step("true"))
    assert wait_for(
        lambda: any(
            n.startswith("persistentvolumeclaim/") for n in leftovers(k8s_cluster, namespace)
        ),
        120,
        interval=0.5,
    )
    done = box.wait_state(job_id, FINAL, timeout=180)
    assert done["state"] in ("errored", "failed")
    assert "could not be scheduled" in done["failure_message"], done["failure_message"]
    assert "PersistentVolumeClaim" in done["failure_message"]
    assert nothing_left(k8s_cluster, namespace) == []


def test_skip_json_after_a_pre_step_skips_to_the_named_step(
    start: Callable[..., Any], box: Any, k8s_cluster: K8sCluster, namespace: str
) -> None:
    """The handler's `.pre` protocol in the pod: the `.pre` step (in /job) names `step.2.pre`;
    the steps between run no script (one in another directory), the named one runs."""
    start()
    job_id = job(
        box,
        step('echo \'{"nextStep": "step.2.pre"}\' > skip.json', key="step.1.pre"),
        {**step("echo SKIPPED-RUN", key="step.1.run"), "dir": "src"},
        step("echo SKIPPED-POST", key="step.1.post"),
        step("echo ran; test ! -e /job/skip.json && echo cleared", key="step.2.pre"),
        step("echo after", key="step.2.run"),
    )
    done = box.wait_state(job_id, FINAL, timeout=240)
    assert done["state"] == "completed", done["failure_message"]
    entries = logs(box, job_id)
    outputs = {key: entry.get("out", "") for key, entry in entries.items()}
    assert "SKIPPED" not in outputs["step.kubernetes.step.1.run"]
    assert "SKIPPED" not in outputs["step.kubernetes.step.1.post"]
    assert "stdout: ran" in outputs["step.kubernetes.step.2.pre"]
    assert "stdout: cleared" in outputs["step.kubernetes.step.2.pre"]
    assert "stdout: after" in outputs["step.kubernetes.step.2.run"]
    assert nothing_left(k8s_cluster, namespace) == []
