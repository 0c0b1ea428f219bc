"""The ``batch exec`` engine: run one workspace's steps and print src-cli's JSON log events.

Owns: the step loop of src-cli's ``RunSteps`` in executor mode (``if:`` skips, resume from
``cachedStepResult``, template rendering, one container per step, cumulative diff and
changed files, outputs) and the event sequence ``src batch exec`` writes on stdout.

Must not know: how a container is started (a :class:`ContainerRunner` does that: the
daemon's Docker runtime with its labels and limits), the queue or log uploads.

Event sequence (src-cli ``cmd/src/batch_exec.go``, ``internal/batches/ui/json_lines.go``;
step numbers in events are 1-based, ``stepIndex`` in results 0-based):

``PREPARING_DOCKER_IMAGES`` STARTED/PROGRESS/SUCCESS, ``EXECUTING_TASK`` STARTED
``{taskID}``, [``TASK_SKIPPING_STEPS`` PROGRESS ``{taskID, startStep}``], per step either
``TASK_STEP_SKIPPED`` PROGRESS ``{taskID, step}`` or ``TASK_PREPARING_STEP`` STARTED →
SUCCESS|FAILURE, ``TASK_STEP`` STARTED ``{taskID, step, env}``, PROGRESS ``{out}``…,
SUCCESS ``{taskID, step, diff, outputs}`` | FAILURE ``{taskID, step, error, exitCode}``;
then one ``CACHE_AFTER_STEP_RESULT`` SUCCESS ``{key, value}`` per result (all written
after the loop, also when a step failed) and ``EXECUTING_TASK`` SUCCESS|FAILURE.

Results: every executed step's ``AfterStepResult``; with a cached result, that one is
returned alone when no further step ran (so the server still gets a result), else dropped.
``TASK_STEP`` metadata is v1 (diff as text) as in src-cli, whose steps UI never receives
the ``binaryDiffs`` flag; the cached results are v2 (base64 diff) with ``-binaryDiffs``.

Deviations, on purpose: a failing ``if:`` or ``outputs`` keeps the earlier results (src-cli
drops them, resp. emits no ``TASK_STEP`` FAILURE for outputs).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executor.batch.cache import CacheKeyError, CacheRepository, key_for_workspace, mounts_metadata
from executor.batch.diff import (
    GitError,
    apply_diff,
    changes_in_diff,
    snapshot_git_dir,
    staged_diff,
)
from executor.batch.execution import (
    AfterStepResult,
    LogEventStatus,
    WorkspacesExecutionInput,
    cache_after_step_result_metadata,
    format_event,
    task_step_metadata,
)
from executor.batch.gojson import GoStruct
from executor.batch.spec import Step
from executor.batch.step_prepare import (
    ContainerRunner,
    PreparedStep,
    StepContainer,
    StepFailure,
    prepare_step,
)
from executor.batch.step_templates import StepTemplateError, eval_condition, render_step
from executor.batch.steps import (
    OutputCapture,
    OutputError,
    StepContextData,
    render_outputs,
    step_failed_message,
)
from executor.config.goparse import format_go_duration

__all__ = [
    "TASK_STEP_METADATA_VERSION",
    "BatchEngine",
    "ContainerRunner",
    "EngineOptions",
    "StepContainer",
    "StepFailure",
]

#: src-cli's ``stepsExecutionJSONLines`` never gets ``binaryDiffs``: TASK_STEP is always v1.
TASK_STEP_METADATA_VERSION = 1


@dataclass(frozen=True)
class EngineOptions:
    """The ``batch exec`` flags, resolved to absolute paths, plus the outer environment."""

    repo_dir: Path
    tmp_dir: Path
    workspace_files_dir: Path
    binary_diffs: bool = False
    timeout: float = 3600.0
    #: ``os.Environ()`` of src: source of pass-through env vars (secrets) and cache keys.
    global_env: Sequence[str] = ()
    #: The environment git runs with (PATH, HOME, …); see ``executor.batch.diff.git_env``.
    git_env: Mapping[str, str] = field(default_factory=dict)


class BatchEngine:
    """Runs one ``WorkspacesExecutionInput``; ``emit`` receives each JSON event line."""

    def __init__(
        self,
        task: WorkspacesExecutionInput,
        runner: ContainerRunner,
        options: EngineOptions,
        emit: Callable[[str], None],
    ) -> None:
        self.task = task
        self.runner = runner
        self.options = options
        self._emit = emit
        self.task_id = _random_id()
        #: How many step containers this engine started (0 for a fully cached workspace).
        self.containers_started = 0
        self.results: list[AfterStepResult] = []
        #: The private copy of the repository's git dir (`diff.snapshot_git_dir`).
        self._git_dir: Path | None = None

    def event(self, operation: str, status: LogEventStatus, metadata: Any = None) -> None:
        self._emit(format_event(operation, status, metadata))

    def _meta(self, **fields: Any) -> GoStruct:
        pairs = [("taskID", self.task_id), *fields.items()]
        return GoStruct.of([(k, v) for k, v in pairs if v])

    async def execute(self) -> int:
        """Run everything; returns src's exit code (0, or 1 after any error)."""
        steps = list(self.task.steps or [])
        if not steps:
            raise StepFailure("invalid execution, no steps to process")
        self._prepare_images(steps)
        self.event("EXECUTING_TASK", "STARTED", self._meta())
        error: str | None = None
        try:
            async with asyncio.timeout(self.options.timeout):
                await self._run_steps(steps)
        except StepFailure as err:
            error = str(err)
        except TimeoutError:
            limit = format_go_duration(self.options.timeout)
            error = f"Timeout reached. Execution took longer than {limit}."
        except OSError as err:
            # After TimeoutError (a subclass): writing step files failed; keep the results.
            error = str(err)
        cache_error = self._write_cache_results(steps)
        error = error or cache_error
        if error is not None:
            self.event("EXECUTING_TASK", "FAILURE", self._meta(error=error))
            return 1
        self.event("EXECUTING_TASK", "SUCCESS", self._meta())
        return 0

    def _prepare_images(self, steps: Sequence[Step]) -> None:
        # Images are not pulled up front: `docker run` reports a missing image per step.
        images = list(dict.fromkeys(s.container for s in steps))
        self.event("PREPARING_DOCKER_IMAGES", "STARTED")
        for done in range(1, len(images) + 1):
            self.event(
                "PREPARING_DOCKER_IMAGES",
                "PROGRESS",
                GoStruct.of([("done", done), ("total", len(images))]),
            )
        self.event("PREPARING_DOCKER_IMAGES", "SUCCESS")

    def _write_cache_results(self, steps: Sequence[Step]) -> str | None:
        task = self.task
        repo = CacheRepository(
            id=task.repository.id,
            name=task.repository.name,
            base_ref=_ensure_ref_prefix(task.branch.name),
            base_rev=task.branch.target.oid,
            file_matches=sorted(set(task.search_result_paths or [])),
        )
        for result in self.results:
            try:
                key = key_for_workspace(
                    repository=repo,
                    steps=steps,
                    step_index=result.step_index,
                    path=task.path,
                    only_fetch_workspace=task.only_fetch_workspace,
                    batch_change=task.batch_change_attributes,
                    global_env=self.options.global_env,
                    mounts=mounts_metadata(steps, self.options.workspace_files_dir),
                )
            except CacheKeyError as err:
                return f"calculating step cache key: {err}"
            self.event(
                "CACHE_AFTER_STEP_RESULT", "SUCCESS", cache_after_step_result_metadata(key, result)
            )
        return None

    async def _run_steps(self, steps: Sequence[Step]) -> None:
        task, opts = self.task, self.options
        ctx = StepContextData(
            batch_change=task.batch_change_attributes,
            repository_name=task.repository.name,
            repository_branch=task.branch.name,
            search_result_paths=sorted(set(task.search_result_paths or [])),
            path=task.path,
        )
        start = 0
        cached_only = False
        private = opts.tmp_dir / "executor-git-dir"
        if private.resolve().is_relative_to(opts.repo_dir.resolve()):
            raise StepFailure("the temp dir (-tmp) must not be inside the repository (-repo)")
        try:
            self._git_dir = await snapshot_git_dir(opts.repo_dir, private)
        except (GitError, OSError) as err:
            raise StepFailure(f"preparing the repository: {err}") from err
        if task.cached_step_result_found:
            cached = task.cached_step_result
            ctx.outputs = dict(cached.outputs or {})
            ctx.previous_step = cached
            self.results.append(cached)
            if cached.step_index == len(steps) - 1:
                return
            if cached.diff:
                try:
                    await apply_diff(
                        opts.repo_dir, cached.diff, env=opts.git_env, git_dir=self._git_dir
                    )
                except GitError as err:
                    raise StepFailure(f"applying diff of cache result: {err}") from err
            start = cached.step_index + 1
            cached_only = True
            self.event("TASK_SKIPPING_STEPS", "PROGRESS", self._meta(startStep=start + 1))
        for index in range(start, len(steps)):
            ctx.step = AfterStepResult()
            try:
                run_it = eval_condition(steps[index].if_condition(), ctx)
            except StepTemplateError as err:
                raise StepFailure(f"evaluating step condition: {err}") from err
            if not run_it:
                self.event("TASK_STEP_SKIPPED", "PROGRESS", self._meta(step=index + 1))
                continue
            result = await self._run_step(index, steps[index], ctx)
            if cached_only:
                self.results.clear()  # a fresh step ran: the cached entry is not re-sent
                cached_only = False
            self.results.append(result)
            ctx.previous_step = result

    async def _run_step(self, index: int, step: Step, ctx: StepContextData) -> AfterStepResult:
        number = index + 1
        self.event("TASK_PREPARING_STEP", "STARTED", self._meta(step=number))
        step_dir = Path(tempfile.mkdtemp(prefix=f"step-{index}-", dir=self.options.tmp_dir))
        try:
            try:
                prepared = prepare_step(
                    index,
                    step,
                    ctx,
                    step_dir,
                    repo_dir=self.options.repo_dir,
                    workspace_files_dir=self.options.workspace_files_dir,
                    global_env=self.options.global_env,
                )
            except StepFailure as err:
                meta = self._meta(step=number, error=str(err))
                self.event("TASK_PREPARING_STEP", "FAILURE", meta)
                self._step_failed(number, str(err), -1)
                raise
            self.event("TASK_PREPARING_STEP", "SUCCESS", self._meta(step=number))
            return await self._execute(index, step, ctx, prepared)
        finally:
            shutil.rmtree(step_dir, ignore_errors=True)

    def _step_failed(self, number: int, error: str, exit_code: int) -> None:
        self.event(
            "TASK_STEP",
            "FAILURE",
            task_step_metadata(
                version=TASK_STEP_METADATA_VERSION,
                task_id=self.task_id,
                step=number,
                error=error,
                exit_code=exit_code,
            ),
        )

    async def _execute(
        self,
        index: int,
        step: Step,
        ctx: StepContextData,
        prepared: PreparedStep,
    ) -> AfterStepResult:
        number, opts = index + 1, self.options
        container, run_script = prepared.container, prepared.run_script
        self.event(
            "TASK_STEP",
            "STARTED",
            task_step_metadata(
                version=TASK_STEP_METADATA_VERSION,
                task_id=self.task_id,
                step=number,
                env=container.env,
            ),
        )

        def progress(out: str) -> None:
            meta = task_step_metadata(
                version=TASK_STEP_METADATA_VERSION, task_id=self.task_id, step=number, out=out
            )
            self.event("TASK_STEP", "PROGRESS", meta)

        capture = OutputCapture(prepared.marker, progress)
        self.containers_started += 1
        try:
            exit_code = await self.runner.run_container(container, capture)
        finally:
            capture.finish()
        stdout, stderr = capture.text("stdout"), capture.text("stderr")
        if exit_code != 0:
            message = step_failed_message(
                run=run_script,
                container=step.container,
                stdout=stdout,
                stderr=stderr,
                exit_code=exit_code,
            )
            self._step_failed(number, message, exit_code)
            raise StepFailure(message, exit_code)
        try:
            diff = await staged_diff(opts.repo_dir, env=opts.git_env, git_dir=self._git_dir)
        except GitError as err:
            self._step_failed(number, f"getting diff produced by step: {err}", -1)
            raise StepFailure(f"getting diff produced by step: {err}") from err
        result = AfterStepResult(
            version=2 if opts.binary_diffs else 1,
            changed_files=changes_in_diff(diff),
            stdout=stdout,
            stderr=stderr,
            step_index=index,
            diff=diff,
            outputs={},
        )
        ctx.step = result
        try:
            render_outputs(
                step.outputs, ctx.outputs, lambda name, text: render_step(name, text, ctx)
            )
        except (StepTemplateError, OutputError) as err:
            self._step_failed(number, f"setting step outputs: {err}", -1)
            raise StepFailure(f"setting step outputs: {err}") from err
        result.outputs = dict(ctx.outputs)
        self.event(
            "TASK_STEP",
            "SUCCESS",
            task_step_metadata(
                version=TASK_STEP_METADATA_VERSION,
                task_id=self.task_id,
                step=number,
                diff=diff,
                outputs=result.outputs,
            ),
        )
        return result


def _ensure_ref_prefix(ref: str) -> str:
    return ref if ref.startswith("refs/heads/") else "refs/heads/" + ref


def _random_id() -> str:
    """A short random task ID (src-cli: base-x encoding of a random int)."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return "".join(secrets.choice(alphabet) for _ in range(12))
