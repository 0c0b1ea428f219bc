"""The Kubernetes runtime: every docker step of a job in one pod (Sourcegraph's single-job pod).

Modules, from pure to talking:

* `spec`: names, labels and the Secret/PVC/Job manifests, as pure functions of a `JobPlan`
  and `executor.config.kubernetes.KubernetesSettings`;
* `failures`: reading a pod's status (which container runs, why it cannot start or failed);
* `follow`: following a container's `pods/log` live into its log entry;
* `client`: `KubeClient`, the API calls (kubernetes_asyncio, imported only there);
* `runner`: `KubernetesRuntime.run_job` (create, follow, fail fast, teardown);
* `janitor`: removing labelled objects no running job owns;
* `access`: the checks of `executor validate` (reachability, RBAC).

Importing this package imports none of them: `executor.run.serve` loads `runner` (and so the
client library) only when the Kubernetes runtime is selected.
"""

__all__: list[str] = []
