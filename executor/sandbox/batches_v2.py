"""V2 ("native") batches jobs: the docker steps Sourcegraph's transform builds around batcheshelper.

With the sandbox setting `native_server_side_execution` (Sourcegraph: a workspace execution job
with `version = 2`, chosen by the site config `batchChanges.nativeServerSideExecution`), a
workspace's job carries docker steps instead of the single `batch exec` cliStep, exactly as
`cmd/frontend/internal/executorqueue/queues/batches/transform.go` (`transformRecord`,
`job.Version == 2`) builds them:

- with a cached partial result whose diff is not empty, first `apply-diff` (helper image, dir
  `repository`): `set -e`, `git apply -p0 ../state.diff`, `git add --all`, and the file
  `state.diff` = that diff; with any cached result, the file `step<N>.json` = the marshalled
  result and execution starts at step N+1;
- then, for every step i from there that is not statically skipped:
  `step.<i>.pre` (helper image, dir `.`, env = the secrets): `batcheshelper pre <i>`;
  `step.<i>.run` (the step's container, dir `repository[/<path>]`): `{ set +x; } 2>/dev/null`,
  `{ set -eo pipefail; } 2>/dev/null`,
  `(exec "<rel>/step<i>.sh" | tee <rel>/stdout<i>.log) 3>&1 1>&2 2>&3 | tee <rel>/stderr<i>.log`
  (`<rel>` leads from the run dir back to the job dir: `..`, `../../..`);
  `step.<i>.post` (helper image, dir `.`, env = the secrets): `batcheshelper post <i>`.

The helper image is Sourcegraph's `executors.batcheshelperImage:executors.batcheshelperImageTag`
(default `sourcegraph/batcheshelper:<version>`); here the project's own build,
`executor-batcheshelper:latest` (`scripts/build-images.sh`). The results come back in the
`.post` entries' `stdout: ` lines and are read by `BatchService.on_finish` as for V1.

Knows the wire's docker step shape and the batch results; no HTTP, no SQL.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from executor.batch.execution import AfterStepResult
from executor.batch.spec import Step

__all__ = ["DEFAULT_HELPER_IMAGE", "REPOSITORY_DIR", "v2_docker_steps"]

DEFAULT_HELPER_IMAGE = "executor-batcheshelper:latest"
#: The transform's `srcRepoDir`.
REPOSITORY_DIR = "repository"
_PATCH_FILE = "state.diff"


def _run_dir(path: str) -> str:
    return posixpath.join(REPOSITORY_DIR, path) if path else REPOSITORY_DIR


def _back_to_job_dir(run_dir: str) -> str:
    """`filepath.Rel("/"+runDir, "/")`: `..` per path element of the (cleaned) run dir."""
    parts = [p for p in posixpath.normpath("/" + run_dir).split("/") if p]
    return "/".join([".."] * len(parts)) or "."


def v2_docker_steps(
    *,
    steps: Sequence[Step],
    skipped: Sequence[int],
    path: str,
    cached: AfterStepResult | None,
    secret_env: Mapping[str, str],
    helper_image: str = DEFAULT_HELPER_IMAGE,
) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The docker steps (wire dicts) and the extra job files (`state.diff`, `step<N>.json`)."""
    env = [f"{k}={v}" for k, v in secret_env.items()]
    docker_steps: list[dict[str, Any]] = []
    files: dict[str, bytes] = {}
    start = 0
    if cached is not None:
        if cached.diff:
            docker_steps.append(
                {
                    "key": "apply-diff",
                    "image": helper_image,
                    "commands": ["set -e", f"git apply -p0 ../{_PATCH_FILE}", "git add --all"],
                    "dir": REPOSITORY_DIR,
                    "env": [],
                }
            )
            files[_PATCH_FILE] = cached.diff
        start = cached.step_index + 1
        files[f"step{cached.step_index}.json"] = cached.to_json().encode("utf-8")
    run_dir = _run_dir(path)
    rel = _back_to_job_dir(run_dir)
    for index in range(start, len(steps)):
        if index in skipped:
            continue
        run = (
            f'(exec "{rel}/step{index}.sh" | tee {rel}/stdout{index}.log) 3>&1 1>&2 2>&3'
            f" | tee {rel}/stderr{index}.log"
        )
        docker_steps += [
            {
                "key": f"step.{index}.pre",
                "image": helper_image,
                "commands": [f"batcheshelper pre {index}"],
                "dir": ".",
                "env": list(env),
            },
            {
                "key": f"step.{index}.run",
                "image": steps[index].container,
                "commands": ["{ set +x; } 2>/dev/null", "{ set -eo pipefail; } 2>/dev/null", run],
                "dir": run_dir,
                "env": [],
            },
            {
                "key": f"step.{index}.post",
                "image": helper_image,
                "commands": [f"batcheshelper post {index}"],
                "dir": ".",
                "env": list(env),
            },
        ]
    return docker_steps, files
