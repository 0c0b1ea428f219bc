"""Go `text/template`, configured the way Sourcegraph Batch Changes uses it.

Owns the `${{ … }}` templating of batch specs: a lexer, parser and evaluator with Go's
semantics and error texts (`lexer`, `parse`, `exec`, `funcs`, `printing`, `printf`), the
Sourcegraph helpers (`sg_funcs`, `glob`), the step and changeset contexts (`step_context`)
and the static pre-evaluation of `if:` (`partial_eval`). Knows nothing of how steps run.

Facts taken from Go's (`text/template`, `text/template/parse`, `fmt`) and src-cli's
(`lib/batches/template`) sources are noted, with their source file, in each module's docstring.
"""

from __future__ import annotations

from .errors import TemplateError
from .gofunc import CallError, GoFunc
from .partial_eval import is_static_bool, parse_and_partial_eval
from .step_context import (
    BatchChangeAttributes,
    ChangedFiles,
    ChangesetTemplateContext,
    Repository,
    StepContext,
    StepResult,
    StepsContext,
    eval_step_condition,
    render_changeset_template_field,
    render_step_template,
    validate_batch_spec_template,
)
from .template import Template, render
from .values import NO_VALUE, FileMatchPathList, StrList

__all__ = [
    "NO_VALUE",
    "BatchChangeAttributes",
    "CallError",
    "ChangedFiles",
    "ChangesetTemplateContext",
    "FileMatchPathList",
    "GoFunc",
    "Repository",
    "StepContext",
    "StepResult",
    "StepsContext",
    "StrList",
    "Template",
    "TemplateError",
    "eval_step_condition",
    "is_static_bool",
    "parse_and_partial_eval",
    "render",
    "render_changeset_template_field",
    "render_step_template",
    "validate_batch_spec_template",
]
