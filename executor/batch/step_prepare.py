"""Preparing one step for its container: rendered script, files, mounts and env.

Owns: src-cli's ``executeSingleStep`` preparation (``createRunScriptFile``,
``createFilesToMount``, ``getAbsoluteMountPath``, env ``Resolve`` + ``RenderStepMap``), the
:class:`StepContainer` request handed to a :class:`ContainerRunner`, and :class:`StepFailure`.

Must not know: Docker argv (the runner maps host paths into the container), git, events.

Facts (src-cli ``internal/batches/executor/run_steps.go``): the run script is written to a
temp file, mode 0644, and contains the rendered ``run`` only; each ``files`` value is
rendered into its own temp file and bind-mounted read-only at its key; each ``mount`` path
is resolved inside the workspace-files directory (absolute paths must lie inside it;
``mount path %s does not exist``; directories get a trailing ``/``) and bind-mounted
read-only; env = ``step.env.Resolve(globalEnv)`` then every value rendered. Errors are
wrapped ``parsing step run: ``, ``parsing step files: ``, ``resolving step environment: ``
and ``parsing step environment: ``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from executor.batch.env import EnvError
from executor.batch.spec import Step
from executor.batch.step_templates import StepTemplateError, render_step
from executor.batch.steps import StepContextData, wrapper_script
from executor.runtime.stream import OutputSink

__all__ = [
    "ContainerRunner",
    "PreparedStep",
    "StepContainer",
    "StepFailure",
    "mount_source",
    "prepare_step",
]


@dataclass(frozen=True)
class StepContainer:
    """What one step's container needs, as host paths; the runner maps them into Docker."""

    index: int
    image: str
    #: The entry script (run it with ``sh``); it runs ``step.sh`` from its own directory.
    script: Path
    repo_dir: Path
    #: The working directory relative to ``repo_dir`` (the workspace ``path``; "" = root).
    workdir: str
    env: Mapping[str, str]
    #: Read-only bind mounts, host path → container path (``files:`` and ``mount:``).
    mounts: Sequence[tuple[str, str]] = ()


class ContainerRunner(Protocol):
    """Starts a step container, streams its output lines to ``sink``, returns the exit code."""

    async def run_container(self, container: StepContainer, sink: OutputSink) -> int: ...


class StepFailure(Exception):
    """A step failed; ``exit_code`` is -1 when there was no process exit code."""

    def __init__(self, message: str, exit_code: int = -1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class PreparedStep:
    container: StepContainer
    #: The rendered ``run`` (shown in failure messages).
    run_script: str
    #: The end-of-output marker the entry script prints (see ``steps.OutputCapture``).
    marker: str


def prepare_step(
    index: int,
    step: Step,
    ctx: StepContextData,
    step_dir: Path,
    *,
    repo_dir: Path,
    workspace_files_dir: Path,
    global_env: Sequence[str],
) -> PreparedStep:
    """Render ``run``, ``files`` and ``env`` and write the scripts into ``step_dir``."""
    try:
        run_script = render_step("step-run", step.run, ctx)
    except StepTemplateError as err:
        raise StepFailure(f"parsing step run: {err}") from err
    marker = f"__SRC_BATCH_EXEC_END_{secrets.token_hex(16)}__"
    (step_dir / "step.sh").write_text(run_script, encoding="utf-8")
    (step_dir / "run.sh").write_text(wrapper_script('"$(dirname "$0")/step.sh"', marker))
    # Readable whatever user the image runs as (``-run-as-image-user``); the directory is
    # mounted into the container as it is, and ``mkdtemp`` made it 0700.
    step_dir.chmod(0o755)
    for name in ("step.sh", "run.sh"):
        (step_dir / name).chmod(0o644)
    mounts: list[tuple[str, str]] = []
    for n, (target, text) in enumerate(sorted((step.files or {}).items())):
        try:
            content = render_step(f"files-{target}", text, ctx)
        except StepTemplateError as err:
            raise StepFailure(f"parsing step files: {err}") from err
        source = step_dir / f"file-{n}"
        source.write_text(content, encoding="utf-8")
        source.chmod(0o644)
        mounts.append((str(source), target))
    for mount in step.mount or []:
        mounts.append((mount_source(workspace_files_dir, mount.path), mount.mountpoint))
    try:
        resolved = step.env.resolve(global_env)
    except EnvError as err:
        raise StepFailure(f"resolving step environment: {err}") from err
    env: dict[str, str] = {}
    for name, value in resolved.items():
        try:
            env[name] = render_step(f"env-{name}", value, ctx)
        except StepTemplateError as err:
            raise StepFailure(f"parsing step environment: {err}") from err
    container = StepContainer(
        index=index,
        image=step.container,
        script=step_dir / "run.sh",
        repo_dir=repo_dir,
        workdir=ctx.path,
        env=env,
        mounts=mounts,
    )
    return PreparedStep(container=container, run_script=run_script, marker=marker)


def mount_source(base: Path, mount_path: str) -> str:
    """``getAbsoluteMountPath``: the path must exist inside ``base``; dirs end in ``/``."""
    outside = (
        f"mount path {mount_path} is not in the same directory or subdirectory as the batch spec"
    )
    candidate = Path(mount_path)
    if candidate.is_absolute():
        if not candidate.is_relative_to(base):
            raise StepFailure(outside)
        candidate = candidate.relative_to(base)
    full = (base / candidate).resolve()
    if not full.is_relative_to(base.resolve()):
        raise StepFailure(outside)
    if not full.exists():
        raise StepFailure(f"mount path {mount_path} does not exist")
    text = str(base / candidate)
    return text + "/" if full.is_dir() and not text.endswith("/") else text
