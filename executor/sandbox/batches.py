"""The sandbox as a batch changes frontend: apply a batch spec, run its workspaces as V1 jobs
(or V2 batcheshelper jobs, `executor.sandbox.batches_v2`, with `native_execution`) on the
`batches` queue, turn finished jobs into cached step results and changeset specs.

`BatchService.apply` does what Sourcegraph's batch spec creation, workspace resolution and
`batch_spec_workspace_creator` do (`internal/batches/service`, `internal/batches/background`):
1. parse and validate the spec (every error at once, src-cli's texts);
2. resolve workspaces (`executor.sandbox.workspaces`);
3. look the secrets up: each pass-through step env name is an executor secret (given with the
   request, else stored by `executor sandbox secret set`); a missing one fails the apply;
4. per workspace, compute the cache key of every step that is not statically skipped, with
   the same inputs the engine uses (repository ID/name, base ref and commit, file matches,
   path, `onlyFetchWorkspace`, steps, batch change name and description, the secrets as the
   global env), and take entries from step 0 on, stopping at the first miss. A hit for the
   last such step builds the changeset specs at once: no job. Otherwise one job is enqueued
   (V1 payload, `internal/executor/types/job.go`): `input.json` (`WorkspacesExecutionInput`, with
   `cachedStepResultFound`/`cachedStepResult` on a partial hit), `repositoryDirectory:
   repository`, `shallowClone`, `sparseCheckout: [<path>/*]` with `onlyFetchWorkspace`, the
   secrets as cliStep env and `redactedValues`, and the single cliStep
   `batch exec -f input.json -repo repository -tmp .src-tmp -binaryDiffs` (key `batch-exec`,
   dir `.`). With `native_execution` (Sourcegraph's `batchChanges.nativeServerSideExecution`)
   the job carries the V2 docker steps instead: `.pre`/`.run`/`.post` per step around the
   batch helper image, `apply-diff` and `step<N>.json` for a partial cache hit.

`BatchService.resolve` does steps 1 and 2 only (`src batch repositories`). `apply(clear_cache=True)`
skips step 4's lookup (src-cli's `-clear-cache`); `apply(step_timeout=S)` appends `-timeout <S>ms`
to the cliStep (src-cli's `-timeout`). `status` pages workspaces and changeset specs (`limit`,
`offset`) with `summary`, the counts of all (aggregate queries), which `summary()` returns alone.

`BatchService.on_finish` is the store's mark-call hook (§8.7): it decodes the `stdout: ` JSON
lines of the `step.src.batch-exec` (or `step.src.0`, `*.post`) log entries, stores every
`CACHE_AFTER_STEP_RESULT` entry (also for errored and failed jobs) and, on complete, builds
the changeset specs from the result with the highest `stepIndex` (the spec parsed once per
batch change); a complete without step results becomes failed `found no step results`.

Knows the batch helpers and the batch tables; no HTTP.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from executor.batch.cache import CacheRepository, key_for_workspace
from executor.batch.execution import (
    AfterStepResult,
    BatchChangeAttributes,
    Commit,
    WorkspaceBranch,
    WorkspaceRepo,
    WorkspacesExecutionInput,
    cache_entries,
    parse_log_events,
)
from executor.batch.spec import (
    BatchSpec,
    BatchSpecValidationError,
    parse_batch_spec,
    parse_batch_spec_once,
)
from executor.sandbox.batch_store import BatchStore, WorkspaceRow
from executor.sandbox.batches_v2 import DEFAULT_HELPER_IMAGE, v2_docker_steps
from executor.sandbox.changesets import ChangesetBuildError, SpecRepository, build_changeset_specs
from executor.sandbox.workspaces import HostedRepo, ResolvedWorkspace, resolve_workspaces
from executor.wire import Job

__all__ = [
    "CLI_STEP_COMMAND",
    "NO_RESULTS_MESSAGE",
    "ApplyError",
    "BatchService",
    "BatchSpecValidationError",
]

log = logging.getLogger("executor.sandbox.batches")

CLI_STEP_COMMAND = (
    "batch", "exec", "-f", "input.json", "-repo", "repository", "-tmp", ".src-tmp",
    "-binaryDiffs",
)  # fmt: skip
NO_RESULTS_MESSAGE = "found no step results"
_RESULT_LOG_KEYS = ("step.src.0", "step.src.batch-exec")


class ApplyError(ValueError):
    """The spec is valid but cannot be applied here (workspaces, secrets, mounts)."""


@dataclass(frozen=True)
class _RunOptions:
    clear_cache: bool = False
    step_timeout: float | None = None


def _timeout_flag(seconds: float | None) -> list[str]:
    """`-timeout D` for `batch exec`, D a Go duration (whole milliseconds)."""
    return [] if seconds is None else ["-timeout", f"{round(seconds * 1000)}ms"]


def _is_result_entry(key: str) -> bool:
    return key.endswith(".post") or key in _RESULT_LOG_KEYS


def _attributes(spec: BatchSpec) -> BatchChangeAttributes:
    return BatchChangeAttributes(name=spec.name, description=spec.description)


def _cache_repo(ws: WorkspaceRow) -> CacheRepository:
    return CacheRepository(
        id=ws.repository_id,
        name=ws.repository,
        base_ref=ws.branch,
        base_rev=ws.commit,
        file_matches=list(ws.file_matches),
    )


def _spec_repo(ws: WorkspaceRow) -> SpecRepository:
    return SpecRepository(
        ws.repository_id, ws.repository, ws.branch, ws.commit, tuple(ws.file_matches)
    )


class BatchService:
    """Batch specs over one sandbox database."""

    def __init__(
        self,
        db_path: str,
        *,
        native_execution: bool = False,
        helper_image: str = DEFAULT_HELPER_IMAGE,
    ) -> None:
        self.store = BatchStore(db_path)
        #: Sourcegraph's `batchChanges.nativeServerSideExecution`: V2 jobs (`batches_v2`).
        self.native_execution = native_execution
        self.helper_image = helper_image

    # -- apply -----------------------------------------------------------------------------

    def parse(self, raw: str) -> BatchSpec:
        """Parse and validate a spec; refuse what the sandbox cannot run."""
        spec = parse_batch_spec(raw)
        for number, step in enumerate(spec.steps or [], start=1):
            if step.mount:
                raise ApplyError(f"step {number}: mount is not supported by the sandbox")
        return spec

    def resolve(self, raw: str) -> list[ResolvedWorkspace]:
        """The workspaces a spec would run in, creating nothing (`src batch repositories`)."""
        return resolve_workspaces(self.parse(raw), self._hosted())

    def _hosted(self) -> dict[str, HostedRepo]:
        return {
            name: HostedRepo(name, path, rowid) for rowid, name, path in self.store.hosted_repos()
        }

    def apply(
        self,
        raw: str,
        *,
        namespace: str = "",
        secrets: Mapping[str, str] | None = None,
        clear_cache: bool = False,
        step_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Create a batch spec and its workspaces; enqueue the jobs. The status dict.

        `clear_cache` ignores cached step results (src-cli's `-clear-cache`; new results
        replace them); `step_timeout` becomes `batch exec -timeout` (src-cli's `-timeout`)."""
        spec = self.parse(raw)
        resolved = resolve_workspaces(spec, self._hosted())
        env = self._secret_env(spec, dict(secrets or {}))
        spec_id = self.store.create_batch_spec(spec.name, namespace, raw)
        options = _RunOptions(clear_cache, step_timeout)
        with self.store.transaction() as conn:
            for ws in resolved:
                self._add_workspace(conn, spec_id, spec, namespace, ws, env, options)
        return self.status(spec_id) or {}

    def _secret_env(self, spec: BatchSpec, given: dict[str, str]) -> dict[str, str]:
        stored = self.store.secrets()
        env: dict[str, str] = {}
        for name in spec.required_env_vars():
            value = given.get(name, stored.get(name))
            if value is None:
                raise ApplyError(
                    f'executor secret "{name}" not found: the steps read it from the'
                    f" environment; set it with `executor sandbox secret set {name} VALUE`"
                    f" or SANDBOX_SECRET_{name}"
                )
            env[name] = value
        return env

    def _add_workspace(
        self,
        conn: sqlite3.Connection,
        spec_id: int,
        spec: BatchSpec,
        namespace: str,
        resolved: ResolvedWorkspace,
        env: dict[str, str],
        options: _RunOptions,
    ) -> None:
        draft = WorkspaceRow(
            id=0,
            batch_spec_id=spec_id,
            repository=resolved.repo.name,
            repository_id=resolved.repo.graphql_id,
            branch=resolved.branch,
            commit=resolved.commit,
            path=resolved.path,
            only_fetch_workspace=resolved.only_fetch_workspace,
            file_matches=list(resolved.file_matches),
            skipped_steps=list(resolved.skipped_steps),
            cache="miss",
            job_id=None,
            failure_message=None,
        )
        ws = replace(draft, id=self.store.add_workspace(conn, draft))
        ws_id = ws.id
        cached, complete = None, False
        if not options.clear_cache:
            cached, complete = self._cached_result(conn, spec, namespace, ws, env)
        if complete and cached is not None:
            conn.execute("UPDATE batch_workspaces SET cache = 'hit' WHERE id = ?", (ws_id,))
            try:
                specs = build_changeset_specs(spec, _spec_repo(ws), cached, ws.path)
            except ChangesetBuildError as err:
                self.store.set_workspace_failure(conn, ws_id, str(err))
                return
            self.store.add_changeset_specs(conn, spec_id, ws_id, specs)
            return
        if cached is not None:
            conn.execute("UPDATE batch_workspaces SET cache = 'partial' WHERE id = ?", (ws_id,))
        payload = self.job_payload(spec, ws, cached, env, step_timeout=options.step_timeout)
        self.store.enqueue_workspace_job(conn, ws_id, payload, ws.repository)

    def cache_keys(self, spec: BatchSpec, ws: WorkspaceRow, env: Mapping[str, str]) -> list[str]:
        """The key of every step that is not statically skipped, in step order."""
        steps = list(spec.steps or [])
        global_env = [f"{k}={v}" for k, v in env.items()]
        return [
            key_for_workspace(
                repository=_cache_repo(ws),
                steps=steps,
                step_index=index,
                path=ws.path,
                only_fetch_workspace=ws.only_fetch_workspace,
                batch_change=_attributes(spec),
                global_env=global_env,
            )
            for index in range(len(steps))
            if index not in ws.skipped_steps
        ]

    def _cached_result(
        self,
        conn: sqlite3.Connection,
        spec: BatchSpec,
        namespace: str,
        ws: WorkspaceRow,
        env: Mapping[str, str],
    ) -> tuple[AfterStepResult | None, bool]:
        """(latest cached result walking from step 0 until a miss, whether all steps hit)."""
        keys = self.cache_keys(spec, ws, env)
        found: AfterStepResult | None = None
        for number, key in enumerate(keys, start=1):
            value = self.store.cache_entry(conn, namespace, key)
            if value is None:
                return found, False
            try:
                found = AfterStepResult.model_validate_json(value)
            except ValueError:
                return found, False
            if number == len(keys):
                return found, True
        return found, False

    def job_payload(
        self,
        spec: BatchSpec,
        ws: WorkspaceRow,
        cached: AfterStepResult | None,
        env: Mapping[str, str],
        *,
        step_timeout: float | None = None,
    ) -> dict[str, Any]:
        """The Job wire body (without id and token) for one workspace (§8.5): V1 (one
        `batch exec` cliStep), or V2 (batcheshelper docker steps) with `native_execution`."""
        execution_input = WorkspacesExecutionInput(
            batch_change_attributes=_attributes(spec),
            repository=WorkspaceRepo(id=ws.repository_id, name=ws.repository),
            branch=WorkspaceBranch(name=ws.branch, target=Commit(oid=ws.commit)),
            path=ws.path,
            only_fetch_workspace=ws.only_fetch_workspace,
            steps=list(spec.steps or []),
            search_result_paths=list(ws.file_matches),
            cached_step_result_found=cached is not None,
            cached_step_result=cached or AfterStepResult(),
            skipped_steps={i: {} for i in ws.skipped_steps},
        )
        files: dict[str, Any] = {"input.json": {"content": execution_input.to_json().encode()}}
        secret_env = [f"{k}={v}" for k, v in env.items()]
        steps: dict[str, Any]
        if self.native_execution:
            docker_steps, extra = v2_docker_steps(
                steps=list(spec.steps or []),
                skipped=ws.skipped_steps,
                path=ws.path,
                cached=cached,
                secret_env=env,
                helper_image=self.helper_image,
            )
            files.update({name: {"content": content} for name, content in extra.items()})
            steps = {"dockerSteps": docker_steps}
        else:
            command = [*CLI_STEP_COMMAND, *_timeout_flag(step_timeout)]
            cli = {"key": "batch-exec", "command": command, "dir": "."}
            steps = {"cliSteps": [{**cli, "env": secret_env}]}
        job = Job.model_validate(
            {
                "id": 0,
                "repositoryName": ws.repository,
                "repositoryDirectory": "repository",
                "commit": ws.commit,
                "shallowClone": True,
                "sparseCheckout": [f"{ws.path}/*"] if ws.only_fetch_workspace else [],
                "files": files,
                **steps,
                # SECURITY: the executor redacts secret values from every uploaded log.
                "redactedValues": {v: f"${{{{ secrets.{k} }}}}" for k, v in env.items() if v},
            }
        )
        job.version = 2  # file content as base64, like the admin enqueue route
        payload = job.to_wire()
        for key in ("id", "token"):
            payload.pop(key, None)
        return payload

    # -- results ---------------------------------------------------------------------------

    def on_finish(
        self, conn: sqlite3.Connection, queue: str, job_id: int, outcome: str, message: str | None
    ) -> tuple[str, str | None]:
        """The store's mark hook: cache entries, changeset specs, `found no step results`."""
        if queue != "batches":
            return outcome, message
        ws = self.store.workspace_for_job(conn, job_id)
        if ws is None:
            return outcome, message  # a job enqueued by hand, not by a batch spec
        try:
            return self._finish(conn, ws, job_id, outcome, message)
        except Exception as err:  # a broken result must fail the job, not the mark call
            log.exception("processing the results of job %s failed", job_id)
            text = f"processing step results: {err}"
            self.store.set_workspace_failure(conn, ws.id, text)
            return "failed", text

    def _finish(
        self, conn: sqlite3.Connection, ws: WorkspaceRow, job_id: int, outcome: str, msg: str | None
    ) -> tuple[str, str | None]:
        row = conn.execute("SELECT execution_logs FROM jobs WHERE id = ?", (job_id,)).fetchone()
        logs: list[dict[str, Any]] = _json_list(row[0] if row else None)
        events = []
        for entry in logs:
            if _is_result_entry(str(entry.get("key", ""))):
                events += parse_log_events(str(entry.get("out", "")))
        entries = cache_entries(events)
        spec_row = self.store.batch_spec_of_conn(conn, ws.batch_spec_id)
        namespace = str(spec_row["namespace"])
        self.store.put_cache_entries(conn, namespace, [(k, v.to_json()) for k, v in entries])
        if outcome != "complete":
            return outcome, msg
        if not entries:
            self.store.set_workspace_failure(conn, ws.id, NO_RESULTS_MESSAGE)
            return "failed", NO_RESULTS_MESSAGE
        latest = max((value for _, value in entries), key=lambda v: v.step_index)
        spec = parse_batch_spec_once(str(spec_row["raw"]))
        try:
            specs = build_changeset_specs(spec, _spec_repo(ws), latest, ws.path)
        except ChangesetBuildError as err:
            self.store.set_workspace_failure(conn, ws.id, str(err))
            return "failed", str(err)
        self.store.add_changeset_specs(conn, ws.batch_spec_id, ws.id, specs)
        return outcome, msg

    # -- status ----------------------------------------------------------------------------

    def status(self, spec_id: int, limit: int = -1, offset: int = 0) -> dict[str, Any] | None:
        """The batch spec, its workspaces (with job states) and its changeset specs: `limit`
        of each from `offset` (-1 = all), with the counts of all of them in `summary`."""
        row = self.store.batch_spec(spec_id)
        if row is None:
            return None
        workspaces = []
        for ws, job_state, job_failure in self.store.workspaces(spec_id, limit, offset):
            if ws.job_id is None:
                state = "failed" if ws.failure_message else "completed"
            else:
                state = job_state or "queued"
            workspaces.append(
                {
                    "id": ws.id,
                    "repository": ws.repository,
                    "repository_id": ws.repository_id,
                    "branch": ws.branch,
                    "commit": ws.commit,
                    "path": ws.path,
                    "onlyFetchWorkspace": ws.only_fetch_workspace,
                    "searchResultPaths": ws.file_matches,
                    "cache": ws.cache,
                    "job_id": ws.job_id,
                    "state": state,
                    "failure_message": ws.failure_message or job_failure,
                }
            )
        specs = [
            {"id": cid, "workspace_id": wid, "repository": repo, "spec": spec}
            for cid, wid, repo, spec in self.store.changeset_specs(spec_id, limit, offset)
        ]
        return {
            **self._header(row),
            "summary": self.store.summary(spec_id),
            "workspaces": workspaces,
            "changeset_specs": specs,
        }

    def summary(self, spec_id: int) -> dict[str, Any] | None:
        """The batch spec's header and counts only (cheap at any size)."""
        row = self.store.batch_spec(spec_id)
        return None if row is None else {**self._header(row), **self.store.summary(spec_id)}

    @staticmethod
    def _header(row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "name": row["name"],
            "namespace": row["namespace"],
            "applied": row["applied_at"] is not None,
        }


def _json_list(text: str | None) -> list[dict[str, Any]]:
    data = json.loads(text or "[]")
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []
