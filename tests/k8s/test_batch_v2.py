"""Batch changes on Kubernetes: V2 jobs (`native_server_side_execution`) run by the Kubernetes
runtime, `.pre`/`.post` in the helper image `executor-batcheshelper` (also `setup-workspace`),
give the same changeset specs as V1 jobs run by the Docker runtime, for the README's spec over
the sample repositories (`tests/e2e/test_batch_apply_v2_e2e.py` is the same on Docker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from k8s_access import K8sCluster
from runtime_env import k8s_env, leftovers, new_namespace

from executor.sandbox.batch_cli import main as batch_cli

pytestmark = [pytest.mark.k8s, pytest.mark.docker, pytest.mark.slow]

SPEC = Path(__file__).resolve().parents[2] / "examples" / "hello-world.batch.yaml"


@pytest.fixture
def namespace(k8s_cluster: K8sCluster) -> Iterator[str]:
    name = new_namespace(k8s_cluster)
    yield name
    k8s_cluster.run("delete", "namespace", name, "--wait=false", check=False)


def _apply(box: Any, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    argv = ["batch", "apply", str(SPEC), "--wait", "--json", "--wait-timeout", "600s"]
    code = batch_cli([*argv, "--url", box.url, "--token", box.token])
    out = capsys.readouterr().out
    if code != 0:
        for job in box.jobs(queue="batches"):
            logs = box.job(job["id"])["execution_logs"] or []
            out += "".join(f"\n--- {e['key']}\n{e.get('out', '')[-2000:]}" for e in logs[-3:])
    assert code == 0, out
    status: dict[str, Any] = json.loads(out)
    return status


def _by_workspace(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    paths = {w["id"]: w["path"] for w in status["workspaces"]}
    return {
        f"{item['repository']}:{paths[item['workspace_id']]}": item["spec"]
        for item in status["changeset_specs"]
    }


def test_v2_on_kubernetes_gives_docker_v1s_changeset_specs(
    sandbox_factory: Any,
    daemon_factory: Any,
    helper_image: str,
    k8s_cluster: K8sCluster,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    v1 = sandbox_factory()
    v2 = sandbox_factory(native_server_side_execution=True, batcheshelper_image=helper_image)
    for box in (v1, v2):
        box._call("POST", "/.sandbox/repos/samples")
    daemon_factory(frontend=v1, maximum_num_jobs="2")
    env = k8s_env(k8s_cluster, namespace, KUBERNETES_SINGLE_JOB_STEP_IMAGE=helper_image)
    daemon_factory(frontend=v2, plain_env=env, maximum_num_jobs="2")

    first, second = _apply(v1, capsys), _apply(v2, capsys)
    assert [w["state"] for w in second["workspaces"]] == ["completed"] * 4, second
    for job in v2.jobs(queue="batches"):
        keys = [e["key"] for e in v2.job(job["id"])["execution_logs"]]
        assert "step.kubernetes.step.0.pre" in keys and "step.kubernetes.step.0.post" in keys
    assert _by_workspace(second) == _by_workspace(first)
    assert len(_by_workspace(first)) == 4
    assert leftovers(k8s_cluster, namespace) == []
