"""Kubernetes runtime overhead: one-step jobs through the executor vs bare kubectl Jobs, and cancel.

On the test cluster (`scripts/k8s-cluster.sh up`; `EXECUTOR_K8S_STATE`), in a namespace of its
own, measured in the same run:

* **executor**: a one-step job (`echo hello`) enqueued in the sandbox → `completed`, N times
  one after the other. It includes what the executor adds: the Secret, `setup-workspace`
  (the repository fetched through the sandbox's `/.executors/git`), live log streaming, the
  mark, and the teardown that waits for the pod to be gone (before the next job can start).
* **bare**: `kubectl create` of a Job with the same pod shape (an init container
  `setup-workspace` in the same image doing `git init`, the step `echo hello` in the step image,
  `main` echoing `complete`, hostNetwork, `imagePullPolicy: Never`) → `status.succeeded=1`,
  then `kubectl delete --wait`: the floor the cluster itself sets.
* **cancel → pod gone**: a job whose step sleeps is cancelled in the sandbox once its step is
  running; seconds until no pod of its Job is left (the heartbeat interval is 1 s).

    .venv/bin/python -m bench.k8s [--jobs 5] [--cancels 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from bench._common import (
    FINAL,
    IMAGE,
    K8S_GIT_IMAGE,
    Daemon,
    bench_env,
    kubernetes_env,
    make_repo,
    median,
    percentile,
    report,
    sandbox,
    step_job,
    wait_until,
)

STATE = Path(os.environ.get("EXECUTOR_K8S_STATE", "/var/tmp/executor-k8s"))
GIT_IMAGE = K8S_GIT_IMAGE


def kubectl(*args: str, input: str | None = None) -> str:
    argv = [str(STATE / "bin" / "kubectl"), f"--kubeconfig={STATE / 'admin.kubeconfig'}", *args]
    done = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def bare_job(name: str) -> dict[str, Any]:
    def container(cname: str, image: str, script: str) -> dict[str, Any]:
        return {
            "name": cname,
            "image": image,
            "imagePullPolicy": "Never",
            "command": ["sh", "-c", script],
            "workingDir": "/job",
            "resources": {"limits": {"memory": "256Mi"}, "requests": {"memory": "32Mi"}},
            "volumeMounts": [{"name": "job-data", "mountPath": "/job"}],
        }

    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "hostNetwork": True,
                    "volumes": [{"name": "job-data", "emptyDir": {}}],
                    "initContainers": [
                        container("setup-workspace", GIT_IMAGE, "git init -q /job/repo"),
                        container("step-0", IMAGE, "echo hello"),
                    ],
                    "containers": [container("main", GIT_IMAGE, "echo complete")],
                }
            },
        },
    }


def bare_once(namespace: str) -> float:
    name = f"bare-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(bare_job(name)))
    wait_until(
        lambda: (
            kubectl("get", "job", name, "-n", namespace, "-o", "jsonpath={.status.succeeded}")
            == "1"
        ),
        timeout=300,
        interval=0.1,
    )
    kubectl("delete", "job", name, "-n", namespace, "--cascade=foreground", "--wait=true")
    return time.monotonic() - started


def job_pods(namespace: str, job_id: int) -> list[str]:
    out = kubectl(
        "get", "pods", "-n", namespace, "-l", f"job-name=sg-executor-job-batches-{job_id}",
        "-o", "name",
    )  # fmt: skip
    return out.split()


def executor_once(box: Any, body: dict[str, Any], proc: Daemon) -> float:
    started = time.monotonic()
    job_id = box.enqueue(body)
    wait_until(lambda: box.record(job_id).state in FINAL, 300, 0.05)
    assert box.record(job_id).state == "completed", proc.log_path.read_text()[-3000:]
    return time.monotonic() - started


def cancel_once(box: Any, body: dict[str, Any], namespace: str) -> float:
    job_id = box.enqueue(body)
    wait_until(lambda: job_pods(namespace, job_id), 300, 0.1)
    time.sleep(3.0)  # the step runs
    box.client.post(f"/.sandbox/jobs/{job_id}/cancel").raise_for_status()
    started = time.monotonic()
    wait_until(lambda: not job_pods(namespace, job_id), 300, 0.1)
    took = time.monotonic() - started
    wait_until(lambda: box.record(job_id).state in FINAL, 300, 0.1)
    return took


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--cancels", type=int, default=3)
    args = parser.parse_args(argv)
    namespace = f"k8sbench-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", namespace)
    executor: list[float] = []
    bare: list[float] = []
    cancels: list[float] = []
    try:
        with sandbox() as box:
            repo, head = make_repo(box.scratch)
            box.add_repo("github.com/bench/k8s", repo)
            env = bench_env(box, box.scratch / "ws", heartbeat_interval="1s")
            env.update(kubernetes_env(STATE / "admin.kubeconfig", namespace))
            proc = Daemon(env, box.scratch / "daemon.log")
            try:
                body = step_job("github.com/bench/k8s", head, "echo hello")
                for _ in range(args.jobs):
                    executor.append(executor_once(box, body, proc))
                    bare.append(bare_once(namespace))
                slow = step_job("github.com/bench/k8s", head, "echo running; sleep 600")
                cancels = [cancel_once(box, slow, namespace) for _ in range(args.cancels)]
            finally:
                proc.stop()
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")
    rows: list[tuple[str, Any]] = [
        ("jobs", args.jobs),
        ("executor: enqueue → completed, median s", median(executor)),
        ("bare kubectl Job → succeeded+deleted, median s", median(bare)),
        ("overhead (executor - bare), median s", median(executor) - median(bare)),
        ("cancel → pod gone, p50 s", percentile(cancels, 50) if cancels else float("nan")),
        ("cancel → pod gone, max s", max(cancels) if cancels else float("nan")),
    ]
    result = {
        "executor_s": [round(v, 3) for v in executor],
        "bare_s": [round(v, 3) for v in bare],
        "cancel_s": [round(v, 3) for v in cancels],
    }
    report("k8s", rows, result)


if __name__ == "__main__":
    main()
