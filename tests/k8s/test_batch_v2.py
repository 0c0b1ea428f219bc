"""Batch changes on Kubernetes: V2 jobs (`native_server_side_execution`) run by the Kubernetes
runtime, `.pre`/`.post` in the helper image `executor-batcheshelper` (also `setup-workspace`),
give the same changeset specs as V1 jobs run by the Docker runtime, for the README's spec over
the sample repositories (`tests/e2e/test_batch_apply_v2_e2e.py` is the same on Docker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_sandbox import apply_and_wait, specs_by_workspace
from k8s_access import K8sCluster
from runtime_env import k8s_env, leftovers, new_namespace

pytestmark = [pytest.mark.k8s, pytest.mark.docker, pytest.mark.slow]

SPEC = Path(__file__).resolve().parents[2] / "examples" / "hello-world.batch.yaml"


@pytest.fixture
def namespace(k8s_cluster: K8sCluster) -> Iterator[str]:
    name = new_namespace(k8s_cluster)
    yield name
    k8s_cluster.run("delete", "namespace", name, "--wait=false", check=False)


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

    first, second = (
        apply_and_wait(v1, SPEC, capsys, "600s"),
        apply_and_wait(v2, SPEC, capsys, "600s"),
    )
    assert [w["state"] for w in second["workspaces"]] == ["completed"] * 4, second
    for job in v2.jobs(queue="batches"):
        keys = [e["key"] for e in v2.job(job["id"])["execution_logs"]]
        assert "step.kubernetes.step.0.pre" in keys and "step.kubernetes.step.0.post" in keys
    assert specs_by_workspace(second) == specs_by_workspace(first)
    assert len(specs_by_workspace(first)) == 4
    assert leftovers(k8s_cluster, namespace) == []
