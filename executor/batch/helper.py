"""``executor batch helper pre|post <i>``: Sourcegraph's ``batcheshelper``, on the engine's parts.

Owns: the two halves of a V2 ("native") batch step, run in helper containers around the user's
step container (`executor-protocol.md` §8.5, `batch-exec.md` §7.3/§7.4): ``pre`` decides
whether step ``i`` runs and writes ``step<i>.sh``; ``post`` turns the step's effect into an
``AfterStepResult`` and a cache entry. The files they read and write in the working directory
(the job directory: ``/data`` under Docker, ``/job`` on Kubernetes) are batcheshelper's:
``input.json``, ``step<j>.json`` (the result of step j), ``skip.json``, ``step<i>.sh``,
``step<i>files/``, ``stdout<i>.log``, ``stderr<i>.log`` and the clone in ``repository``.

Must not know: the queue, Docker, how the containers are started. Templates, ``if:``, files,
env, outputs, diffs, changed files and cache keys are the ``batch exec`` engine's own functions
(``step_prepare.prepare_step``, ``step_templates``, ``steps.render_outputs``, ``diff``,
``cache.key_for_workspace``), so a V2 run yields the same results as a V1 run of the same spec.

Facts (sourcegraph ``cmd/batcheshelper/main.go``, ``run/pre.go``, ``run/post.go``,
``util/util.go``, ``internal/executor/util``): flags ``-input`` (``input.json``),
``-previousStepPath`` (the working directory), ``-workspaceFiles``; the previous result is the
newest ``step<j>.json`` (j < i) that exists and is not ``skipped``. ``pre`` removes
``skip.json``, evaluates ``if:``; when false it logs ``TASK_STEP_SKIPPED`` ``{step: i+1}``,
writes ``step<i>.json`` = the zero result with ``version: 2, skipped: true`` and ``skip.json`` =
``{"nextStep":"step.<k>.pre"}`` (k = the next index not statically skipped). Otherwise it logs
``TASK_STEP`` STARTED ``{step: i+1, env}`` and writes ``step<i>.sh`` (mode 0777 before the
umask): one ``export K=V`` line per env var, then ``cp <tmp> <target>`` + ``chmod +x <target>``
per ``files`` target (sorted), then ``cp -r <abs> <mountpoint>`` + ``chmod -R +x <mountpoint>``
per mount, then the rendered ``run`` (all quoting is go-shellquote's ``Join``). ``post`` runs
``git add --all`` and ``git diff --cached --no-prefix --binary`` in ``repository``, reads the two
logs, renders the outputs with ``step`` = this result, logs ``TASK_STEP`` SUCCESS ``{version: 2,
step: i, diff, outputs}``, writes ``step<i>.json``, logs ``CACHE_AFTER_STEP_RESULT`` ``{key,
value}`` (key from ``KeyForWorkspace`` with ``BaseRef = branch.name``, ``FileMatches =
searchResultPaths``, the container's environment as global env, mounts under the workspace
files) and removes ``step<i>files/``. ``EXECUTOR_ADD_SAFE`` must parse as a Go bool.

Deviations, on purpose, each so that V2 equals V1: ``post`` stores ``changedFiles`` (Sourcegraph
leaves them empty, so ``step.*_files`` in outputs would read ``[]``); ``post`` keeps the
workspace files (Sourcegraph deletes them, which breaks later steps' mounts and cache keys);
``-workspaceFiles`` defaults to ``<working dir>/workspace-files`` (Sourcegraph's
``/job/workspace-files``, the same path on Kubernetes, also right under Docker's ``/data``);
``safe.directory`` is passed per git command instead of ``git config --global``; git runs with
the engine's isolated environment. No debug lines on stdout.

SECURITY: the helper containers get every secret of the job as env, and the repository's
``.git`` was writable by the previous step: ``post`` runs git on a private git dir outside the
job directory whose config is rebuilt from an allowlist (``executor.batch.helper_git``), hooks
and fsmonitor off, no external diff or textconv, so no filter driver, hook or other config a
step planted runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from executor.batch.cache import CacheKeyError, CacheRepository, key_for_workspace, mounts_metadata
from executor.batch.diff import GitError, changes_in_diff, staged_diff
from executor.batch.env import EnvError
from executor.batch.execution import (
    AfterStepResult,
    WorkspacesExecutionInput,
    cache_after_step_result_metadata,
    format_event,
    task_step_metadata,
    task_step_skipped_metadata,
)
from executor.batch.gojson import GoStruct, marshal
from executor.batch.helper_git import private_git_dir
from executor.batch.step_prepare import StepFailure, prepare_step
from executor.batch.step_templates import StepTemplateError, eval_condition, render_step
from executor.batch.steps import OutputError, StepContextData, render_outputs
from executor.config.goparse import parse_go_bool

__all__ = [
    "REPOSITORY_DIR",
    "SKIP_FILE",
    "HelperArgs",
    "HelperError",
    "go_shell_join",
    "parse_helper_args",
    "post_key",
    "pre_key",
    "run_helper",
    "run_key",
]

#: `internal/executor/types.SkipFile`; the handler reads it after every `.pre` step.
SKIP_FILE = "skip.json"
#: batcheshelper's `gitDir`; the transform's `srcRepoDir`.
REPOSITORY_DIR = "repository"

Emit = Callable[[str], None]


def pre_key(index: int) -> str:
    """``FormatPreKey``: ``step.<i>.pre``."""
    return f"step.{index}.pre"


def run_key(index: int) -> str:
    """``FormatRunKey``: ``step.<i>.run``."""
    return f"step.{index}.run"


def post_key(index: int) -> str:
    """``FormatPostKey``: ``step.<i>.post``."""
    return f"step.{index}.post"


class HelperError(Exception):
    """``pre``/``post`` failed; the message goes to stderr and the helper exits 1."""


@dataclass(frozen=True)
class HelperArgs:
    mode: str
    step: int
    input: str = "input.json"
    previous_step_path: str = ""
    workspace_files: str = ""


_FLAGS = {"input": "input", "previousStepPath": "previous_step_path"}
_FLAGS["workspaceFiles"] = "workspace_files"


def parse_helper_args(argv: Sequence[str]) -> HelperArgs:
    """``<pre|post> <step> [-input F] [-previousStepPath D] [-workspaceFiles D]``, any order.

    Like batcheshelper's own splitter, a token starting with ``-`` takes the next one as its
    value; ``-name=value`` and ``--name`` are accepted too (Go's ``flag``).
    """
    values: dict[str, str] = {}
    positional: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        token = items[i]
        if token.startswith("-") and token != "-":
            name, sep, value = token.lstrip("-").partition("=")
            if name not in _FLAGS:
                raise HelperError(f"flag provided but not defined: -{name}")
            if not sep:
                if i + 1 >= len(items):
                    raise HelperError(f"flag needs an argument: -{name}")
                i += 1
                value = items[i]
            values[_FLAGS[name]] = value
        else:
            positional.append(token)
        i += 1
    if len(positional) < 2:
        raise HelperError("missing arguments")
    if len(positional) > 2:
        raise HelperError("too many arguments")
    mode, raw_step = positional
    if mode not in ("pre", "post"):
        raise HelperError(f'invalid mode "{mode}"')
    try:
        step = int(raw_step, 10)
    except ValueError:
        raise HelperError(
            f'failed to parse step: strconv.Atoi: parsing "{raw_step}": invalid syntax'
        ) from None
    return HelperArgs(mode=mode, step=step, **values)


# --- go-shellquote `Join` -----------------------------------------------------------------

_SPECIAL = set("\\'\"`${[|&;<>()*?!")
_EXTRA_SPECIAL = set(" \t\n")


def _quote(word: str) -> str:
    if not word:
        return "''"
    if any(c in _EXTRA_SPECIAL for c in word):
        # Single quotes; quotes at either end become \' outside, inner ones '\''.
        inner = word.lstrip("'")
        leading = len(word) - len(inner)
        trimmed = inner.rstrip("'")
        trailing = len(inner) - len(trimmed)
        body = trimmed.replace("'", "'\\''")
        return "\\'" * leading + "'" + body + "'" + "\\'" * trailing
    first = "\\" + word[0] if word[0] in _SPECIAL or word[0] == "~" else word[0]
    return first + "".join("\\" + c if c in _SPECIAL else c for c in word[1:])


def go_shell_join(*args: str) -> str:
    """``shellquote.Join`` (kballard/go-shellquote ``quote.go``): ``/bin/sh`` splits it back."""
    return " ".join(_quote(a) for a in args)


# --- shared -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    task: WorkspacesExecutionInput
    previous: AfterStepResult
    cwd: Path
    workspace_files: Path
    environ: list[str]


def _load(args: HelperArgs, cwd: Path, environ: Mapping[str, str]) -> _Job:
    path = cwd / args.input
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise HelperError(
            f'failed to read execution input file "{args.input}": {err.strerror}'
        ) from None
    try:
        task = WorkspacesExecutionInput.model_validate_json(raw)
    except (ValidationError, ValueError) as err:
        raise HelperError(f"failed to unmarshal execution input: {err}") from None
    if not 0 <= args.step < len(task.steps or []):
        raise HelperError(f"step {args.step} out of range: the input has {len(task.steps or [])}")
    previous_dir = cwd / args.previous_step_path
    workspace_files = cwd / (args.workspace_files or "workspace-files")
    return _Job(
        task=task,
        previous=_previous_result(previous_dir, args.step),
        cwd=cwd,
        workspace_files=workspace_files,
        environ=[f"{k}={v}" for k, v in environ.items()],
    )


def _previous_result(directory: Path, step: int) -> AfterStepResult:
    """The newest ``step<j>.json`` before ``step`` that exists and was not skipped."""
    for index in range(step - 1, -1, -1):
        path = directory / f"step{index}.json"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as err:
            raise HelperError(f"failed to read step result file: {err.strerror}") from None
        try:
            result = AfterStepResult.model_validate_json(raw)
        except (ValidationError, ValueError) as err:
            raise HelperError(f"failed to unmarshal step result file: {err}") from None
        if not result.skipped:
            return result
    return AfterStepResult()


def _context(job: _Job) -> StepContextData:
    """``getStepContext``: ``steps.*`` = the changes in the previous diff, its outputs."""
    task, previous = job.task, job.previous
    changes = changes_in_diff(previous.diff or b"")
    return StepContextData(
        batch_change=task.batch_change_attributes,
        repository_name=task.repository.name,
        repository_branch=task.branch.name,
        search_result_paths=list(task.search_result_paths or []),
        path=task.path,
        outputs=dict(previous.outputs or {}),
        previous_step=previous.model_copy(update={"changed_files": changes}),
    )


def _write(path: Path, text: str) -> None:
    """``os.WriteFile(path, data, os.ModePerm)``: 0777 before the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o777)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
        out.write(text)


# --- pre ----------------------------------------------------------------------------------


def _pre(index: int, job: _Job, emit: Emit) -> None:
    task = job.task
    step = (task.steps or [])[index]
    ctx = _context(job)
    try:
        step.env.resolve(job.environ)
    except EnvError as err:
        raise HelperError(f"failed to resolve step env: {err}") from None
    try:
        run_it = eval_condition(step.if_condition(), ctx)
    except StepTemplateError as err:
        raise HelperError(f"failed to evaluate step condition: {err}") from None
    (job.cwd / SKIP_FILE).unlink(missing_ok=True)
    if not run_it:
        emit(
            format_event(
                "TASK_STEP_SKIPPED", "PROGRESS", task_step_skipped_metadata(step=index + 1)
            )
        )
        skipped = AfterStepResult(version=2, skipped=True)
        _write(job.cwd / f"step{index}.json", skipped.to_json())
        following = index + 1
        while following in task.skipped_step_indices():
            following += 1
        _write(job.cwd / SKIP_FILE, marshal(GoStruct.of([("nextStep", pre_key(following))])))
        return
    files_dir = job.cwd / f"step{index}files"
    files_dir.mkdir(exist_ok=True)
    try:
        prepared = prepare_step(
            index,
            step,
            ctx,
            files_dir,
            repo_dir=job.cwd / REPOSITORY_DIR,
            workspace_files_dir=job.workspace_files,
            global_env=job.environ,
        )
    except StepFailure as err:
        raise HelperError(str(err)) from None
    env = dict(prepared.container.env)
    emit(
        format_event("TASK_STEP", "STARTED", task_step_metadata(version=1, step=index + 1, env=env))
    )
    lines = [go_shell_join("export", f"{k}={v}") for k, v in env.items()]
    mounts = list(prepared.container.mounts)
    file_count = len(step.files or {})
    for source, target in mounts[:file_count]:  # prepare_step sorted them by target
        lines += [go_shell_join("cp", source, target), go_shell_join("chmod", "+x", target)]
    for source, target in mounts[file_count:]:
        lines += [go_shell_join("cp", "-r", source, target)]
        lines += [go_shell_join("chmod", "-R", "+x", target)]
    preamble = "".join(line + "\n" for line in lines)
    _write(job.cwd / f"step{index}.sh", preamble + prepared.run_script)


# --- post ---------------------------------------------------------------------------------


async def _post(index: int, job: _Job, emit: Emit, git_base_env: Mapping[str, str]) -> None:
    task = job.task
    step = (task.steps or [])[index]
    repo = job.cwd / REPOSITORY_DIR
    try:
        with tempfile.TemporaryDirectory(prefix="batcheshelper-") as private:
            git_dir = await private_git_dir(repo, Path(private) / "git", env=git_base_env)
            diff = await staged_diff(repo, env=git_base_env, git_dir=git_dir)
    except (GitError, OSError) as err:
        raise HelperError(f"failed to generate diff: {err}") from None
    streams: dict[str, str] = {}
    for name in ("stdout", "stderr"):
        try:
            raw = (job.cwd / f"{name}{index}.log").read_bytes()
        except OSError as err:
            raise HelperError(f"failed to read {name} file: {err.strerror}") from None
        streams[name] = raw.decode("utf-8", "replace")
    result = AfterStepResult(
        version=2,
        changed_files=changes_in_diff(diff),
        stdout=streams["stdout"],
        stderr=streams["stderr"],
        step_index=index,
        diff=diff,
        outputs={},
    )
    ctx = _context(job)
    ctx.step = result
    try:
        render_outputs(step.outputs, ctx.outputs, lambda name, text: render_step(name, text, ctx))
    except (StepTemplateError, OutputError) as err:
        raise HelperError(f"setting outputs: {err}") from None
    result.outputs = dict(ctx.outputs)
    meta = task_step_metadata(version=2, step=index, diff=diff, outputs=result.outputs)
    emit(format_event("TASK_STEP", "SUCCESS", meta))
    _write(job.cwd / f"step{index}.json", result.to_json())
    try:
        key = key_for_workspace(
            repository=CacheRepository(
                id=task.repository.id,
                name=task.repository.name,
                base_ref=task.branch.name,
                base_rev=task.branch.target.oid,
                file_matches=task.search_result_paths,
            ),
            steps=list(task.steps or []),
            step_index=index,
            path=task.path,
            only_fetch_workspace=task.only_fetch_workspace,
            batch_change=task.batch_change_attributes,
            global_env=job.environ,
            mounts=mounts_metadata(list(task.steps or []), job.workspace_files),
        )
    except CacheKeyError as err:
        raise HelperError(f"failed to compute cache key: {err}") from None
    emit(
        format_event(
            "CACHE_AFTER_STEP_RESULT", "SUCCESS", cache_after_step_result_metadata(key, result)
        )
    )
    shutil.rmtree(job.cwd / f"step{index}files", ignore_errors=True)


async def run_helper(
    args: HelperArgs,
    *,
    cwd: Path,
    environ: Mapping[str, str],
    emit: Emit,
) -> None:
    """Run ``pre`` or ``post`` for ``args.step`` in ``cwd``; ``environ`` is the container's.

    Raises :class:`HelperError` with batcheshelper's message on any failure.
    """
    if args.mode == "post":
        add_safe = environ.get("EXECUTOR_ADD_SAFE", "")
        if add_safe:
            try:
                parse_go_bool(add_safe)
            except ValueError:
                raise HelperError(
                    f'parsing EXECUTOR_ADD_SAFE boolean: strconv.ParseBool: parsing "{add_safe}": '
                    "invalid syntax"
                ) from None
    job = _load(args, cwd, environ)
    try:
        if args.mode == "pre":
            _pre(args.step, job, emit)
        else:
            await _post(args.step, job, emit, environ)
    except OSError as err:
        raise HelperError(f"{args.mode}: {err}") from None
