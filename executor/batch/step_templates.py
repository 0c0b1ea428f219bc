"""Rendering a step's ``${{ }}`` templates: the engine's adapter to ``executor.batch.template``.

Owns: turning :class:`~executor.batch.steps.StepContextData` (built from wire results) into
the template package's ``StepContext`` and the two operations the engine needs:
:func:`render_step` (src-cli ``RenderStepTemplate``) and :func:`eval_condition`
(``EvalStepCondition``). Template errors become :class:`StepTemplateError` with Go's text
(``template: step-run:1:7: executing "step-run" at <outputs.x>: map has no entry …``).

Must not know: docker, git, events.
"""

from __future__ import annotations

from executor.batch.execution import AfterStepResult, Changes
from executor.batch.steps import StepContextData
from executor.batch.template import (
    BatchChangeAttributes,
    ChangedFiles,
    Repository,
    StepContext,
    StepResult,
    StepsContext,
    TemplateError,
    eval_step_condition,
    render_step_template,
)

__all__ = ["StepTemplateError", "eval_condition", "render_step", "to_step_context"]


class StepTemplateError(ValueError):
    """A template failed to parse or execute; ``str()`` is Go's message with the position."""


def _changed(changes: Changes) -> ChangedFiles:
    return ChangedFiles(
        modified=list(changes.modified or []),
        added=list(changes.added or []),
        deleted=list(changes.deleted or []),
        renamed=list(changes.renamed or []),
    )


def _result(result: AfterStepResult) -> StepResult:
    return StepResult(
        changed_files=_changed(result.changed_files), stdout=result.stdout, stderr=result.stderr
    )


def to_step_context(ctx: StepContextData) -> StepContext:
    """The template package's ``StepContext`` for ``ctx``."""
    return StepContext(
        batch_change=BatchChangeAttributes(
            name=ctx.batch_change.name, description=ctx.batch_change.description
        ),
        outputs=ctx.outputs,
        step=_result(ctx.step),
        steps=StepsContext(changes=_changed(ctx.steps_changes), path=ctx.path),
        previous_step=_result(ctx.previous_step),
        repository=Repository(
            name=ctx.repository_name,
            branch=ctx.repository_branch,
            file_matches=list(ctx.search_result_paths),
        ),
    )


def render_step(name: str, text: str, ctx: StepContextData) -> str:
    """``RenderStepTemplate(name, text, ctx)``; parse errors read ``parsing step run: …``."""
    if "${{" not in text:
        return text  # nothing to evaluate; also what Go renders for such text
    try:
        return render_step_template(text, to_step_context(ctx), name=name)
    except TemplateError as err:
        raise StepTemplateError(str(err)) from err


def eval_condition(condition: str, ctx: StepContextData) -> bool:
    """``EvalStepCondition``: empty → run; else run iff the trimmed result is ``true``."""
    try:
        return eval_step_condition(condition, to_step_context(ctx))
    except TemplateError as err:
        raise StepTemplateError(str(err)) from err
