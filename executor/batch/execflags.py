"""``src batch exec`` flags, parsed like Go's ``flag`` package, and one entry point for both hosts.

Owns: :func:`parse_exec_flags` (``-f``, ``-repo``, ``-tmp``, ``-workspaceFiles``,
``-binaryDiffs``, ``-run-as-image-user``, ``-timeout``; ``-x v``, ``-x=v``, ``--x`` forms),
and :func:`run_batch_exec`, which resolves the paths against a working directory, reads
``input.json`` and runs the engine. Used by the daemon (``hostrunner``) and the CLI.

Must not know: Docker, the queue, where events go (a callback receives each line).

Facts (src-cli ``cmd/src/batch_exec.go``): missing ``-f`` / ``-tmp`` / ``-repo`` →
``input file parameter missing`` / ``tempDir parameter missing`` / ``repoDir parameter
missing``; extra arguments → ``additional arguments not allowed``; a relative ``-tmp`` is
created; ``-workspaceFiles`` defaults to the working directory (``filepath.Abs("")``);
reading ``input.json`` fails as ``unmarshaling workspace execution input file: …``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from executor.batch.engine import BatchEngine, EngineOptions
from executor.batch.execution import WorkspacesExecutionInput
from executor.batch.step_prepare import ContainerRunner, StepFailure
from executor.config.goparse import parse_go_bool, parse_go_duration
from executor.workspace.confined import UnsafePath, read_confined

__all__ = ["ExecFlags", "FlagError", "parse_exec_flags", "run_batch_exec"]


class FlagError(ValueError):
    """Bad ``batch exec`` arguments (src exits with 1 or 2 for these)."""


@dataclass(frozen=True)
class ExecFlags:
    file: str = ""
    repo: str = ""
    tmp: str = ""
    workspace_files: str = ""
    binary_diffs: bool = False
    run_as_image_user: bool = False
    timeout: float = 3600.0


#: The workspace execution input is a job file; larger than any request body the frontend takes.
_MAX_INPUT = 128 * 1024 * 1024
_STRING_FLAGS = {"f": "file", "repo": "repo", "tmp": "tmp", "workspaceFiles": "workspace_files"}
_BOOL_FLAGS = {"binaryDiffs": "binary_diffs", "run-as-image-user": "run_as_image_user"}


def _duration(text: str) -> float:
    """`-timeout`'s value, as Go's ``flag`` parses a ``time.Duration``."""
    try:
        return parse_go_duration(text)
    except ValueError:
        raise FlagError(f'invalid value "{text}" for flag -timeout: parse error') from None


def parse_exec_flags(args: Sequence[str]) -> ExecFlags:
    """Parse the arguments after ``batch exec`` the way Go's ``flag.FlagSet`` does."""
    values: dict[str, object] = {}
    rest = list(args)
    while rest:
        arg = rest[0]
        if arg == "--":
            rest.pop(0)
            break
        if not arg.startswith("-") or arg == "-":
            break
        rest.pop(0)
        name, has_value, value = arg.lstrip("-").partition("=")
        if name in _BOOL_FLAGS:
            try:
                values[_BOOL_FLAGS[name]] = not has_value or parse_go_bool(value)
            except ValueError:
                raise FlagError(f'invalid boolean value "{value}" for -{name}') from None
            continue
        if name not in _STRING_FLAGS and name != "timeout":
            raise FlagError(f"flag provided but not defined: -{name}")
        if not has_value:
            if not rest:
                raise FlagError(f"flag needs an argument: -{name}")
            value = rest.pop(0)
        if name == "timeout":
            values["timeout"] = _duration(value)
        else:
            values[_STRING_FLAGS[name]] = value
    if rest:
        raise FlagError("additional arguments not allowed")
    flags = ExecFlags(**values)  # type: ignore[arg-type]
    for attr, message in (
        ("file", "input file parameter missing"),
        ("tmp", "tempDir parameter missing"),
        ("repo", "repoDir parameter missing"),
    ):
        if not getattr(flags, attr):
            raise FlagError(message)
    return flags


async def run_batch_exec(
    flags: ExecFlags,
    *,
    cwd: Path,
    runner_for: Callable[[ExecFlags, Path], ContainerRunner],
    emit: Callable[[str], None],
    environ: Mapping[str, str],
) -> tuple[int, BatchEngine | None]:
    """Run ``batch exec`` in ``cwd``; returns the exit code and the engine (if it started).

    ``runner_for(flags, cwd)`` builds the container runner; ``environ`` is src's
    ``os.Environ()`` (secrets and forwarded variables). Errors before the first event
    raise :class:`StepFailure` with src's message.
    """
    tmp = cwd / flags.tmp
    tmp.mkdir(parents=True, exist_ok=True)
    repo = (cwd / flags.repo).resolve()
    workspace_files = (cwd / flags.workspace_files).resolve()
    try:
        # Confined to `cwd` (no link followed, regular files only): `executor.workspace.confined`.
        raw = read_confined(cwd, flags.file, max_bytes=_MAX_INPUT)
    except UnsafePath as err:
        raise StepFailure(f"open {flags.file}: {err}") from err
    except OSError as err:
        raise StepFailure(f"open {flags.file}: {err.strerror}") from err
    if raw is None:
        raise StepFailure(f"open {flags.file}: No such file or directory")
    try:
        task = WorkspacesExecutionInput.model_validate_json(raw)
    except (ValidationError, ValueError) as err:
        raise StepFailure(f"unmarshaling workspace execution input file: {err}") from err
    options = EngineOptions(
        repo_dir=repo,
        tmp_dir=tmp.resolve(),
        workspace_files_dir=workspace_files,
        binary_diffs=flags.binary_diffs,
        timeout=flags.timeout,
        global_env=[f"{k}={v}" for k, v in environ.items()],
        git_env=dict(environ),
    )
    engine = BatchEngine(task, runner_for(flags, cwd), options, emit)
    return await engine.execute(), engine
