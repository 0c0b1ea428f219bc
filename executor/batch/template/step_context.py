"""Sourcegraph's template contexts and the functions that render batch-spec fields.

Owns: `StepContext` / `ChangesetTemplateContext` (src-cli `template.StepContext` etc.), the
variable tree each exposes, and `render_step_template`, `eval_step_condition`,
`render_changeset_template_field`, `validate_batch_spec_template`. Knows nothing of how
steps run; callers fill the contexts with plain values.

Facts (src-cli `lib/batches/template/templating.go`):
- Variables are niladic *functions* returning maps (`ToFuncMap`), so `repository.name` is a
  call plus a map lookup: an unknown top-level name is a parse error, an unknown key an
  execution error. Dot is the context struct itself, so `.Repository.Name` works too.
- Step context: `batch_change{name,description}`, `repository{name,branch,
  search_result_paths}`, `previous_step`/`step` `{modified_files,added_files,deleted_files,
  renamed_files,stdout,stderr}`, `steps{the four lists, stdout:"", stderr:"", path}`,
  `outputs`. Changeset context: `repository`, `batch_change`, `outputs`, `steps{four lists,
  path}` and `batch_change_link`, which renders as the literal `${{ batch_change_link }}`.
- `search_result_paths` is the *sorted* file matches, printing space-joined.
- Template names: `step-condition` (if), `step-run` (run), `outputs-<name>`, the env var or
  file path for env/files, `title`/`body`/`branch`/`message`/`authorName`/`authorEmail`.
- `RenderStepTemplate` wraps *parse* errors as `parsing step run: …`; `EvalStepCondition`
  wraps every error as `parsing step if: …` and runs the step iff the trimmed output is
  exactly `true`; changeset fields are `TrimSpace`d and returned unwrapped.
- Values must follow `values.py`: JSON numbers in outputs are floats, YAML ints are ints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import TemplateError
from .gofunc import GoFunc
from .template import Template
from .values import FileMatchPathList, GoStruct, StrList

__all__ = [
    "BatchChangeAttributes",
    "ChangedFiles",
    "ChangesetTemplateContext",
    "Repository",
    "StepContext",
    "StepResult",
    "StepsContext",
    "eval_step_condition",
    "render_changeset_template_field",
    "render_step_template",
    "validate_batch_spec_template",
]

BATCH_CHANGE_LINK = "${{ batch_change_link }}"


@dataclass
class ChangedFiles:
    """`git.Changes`: files changed relative to the base commit."""

    modified: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)

    def to_data(self) -> dict[str, object]:
        return {
            "modified_files": StrList(self.modified),
            "added_files": StrList(self.added),
            "deleted_files": StrList(self.deleted),
            "renamed_files": StrList(self.renamed),
        }

    def to_struct(self) -> GoStruct:
        return GoStruct(
            "git.Changes",
            {
                "Modified": StrList(self.modified),
                "Added": StrList(self.added),
                "Deleted": StrList(self.deleted),
                "Renamed": StrList(self.renamed),
            },
        )


@dataclass
class StepResult:
    """`execution.AfterStepResult` as templates see it: changed files, stdout, stderr."""

    changed_files: ChangedFiles = field(default_factory=ChangedFiles)
    stdout: str = ""
    stderr: str = ""

    def to_data(self) -> dict[str, object]:
        return {**self.changed_files.to_data(), "stdout": self.stdout, "stderr": self.stderr}

    def to_struct(self) -> GoStruct:
        return GoStruct(
            "execution.AfterStepResult",
            {
                "ChangedFiles": self.changed_files.to_struct(),
                "Stdout": self.stdout,
                "Stderr": self.stderr,
            },
        )


@dataclass
class BatchChangeAttributes:
    name: str = ""
    description: str = ""

    def to_data(self) -> dict[str, object]:
        return {"name": self.name, "description": self.description}

    def to_struct(self) -> GoStruct:
        fields: dict[str, object] = {"Name": self.name, "Description": self.description}
        return GoStruct("template.BatchChangeAttributes", fields)


@dataclass
class Repository:
    name: str = ""
    branch: str = ""
    file_matches: list[str] = field(default_factory=list)

    def search_result_paths(self) -> FileMatchPathList:
        return FileMatchPathList(sorted(self.file_matches, key=lambda p: p.encode()))

    def to_data(self) -> dict[str, object]:
        return {
            "search_result_paths": self.search_result_paths(),
            "name": self.name,
            "branch": self.branch,
        }

    def to_struct(self) -> GoStruct:
        return GoStruct(
            "template.Repository",
            {
                "Name": self.name,
                "Branch": self.branch,
                "FileMatches": StrList(self.file_matches),
                # A method in Go; evaluated eagerly here since it has no arguments.
                "SearchResultPaths": self.search_result_paths(),
            },
        )


@dataclass
class StepsContext:
    changes: ChangedFiles = field(default_factory=ChangedFiles)
    path: str = ""

    def to_struct(self) -> GoStruct:
        fields: dict[str, object] = {"Changes": self.changes.to_struct(), "Path": self.path}
        return GoStruct("template.StepsContext", fields)


@dataclass
class StepContext:
    """What a step's `run`, `env`, `files`, `outputs`, `if` and `container` may reference."""

    batch_change: BatchChangeAttributes = field(default_factory=BatchChangeAttributes)
    outputs: dict[str, object] = field(default_factory=dict)
    step: StepResult = field(default_factory=StepResult)
    steps: StepsContext = field(default_factory=StepsContext)
    previous_step: StepResult = field(default_factory=StepResult)
    repository: Repository = field(default_factory=Repository)

    def to_data(self) -> dict[str, object]:
        """The variable tree: one entry per template variable function."""
        steps = StepResult(self.steps.changes).to_data()
        steps["path"] = self.steps.path
        return {
            "previous_step": self.previous_step.to_data(),
            "step": self.step.to_data(),
            "steps": steps,
            "outputs": self.outputs,
            "repository": self.repository.to_data(),
            "batch_change": self.batch_change.to_data(),
        }

    def to_struct(self) -> GoStruct:
        """Dot: the `*template.StepContext` struct."""
        return GoStruct(
            "template.StepContext",
            {
                "BatchChange": self.batch_change.to_struct(),
                "Outputs": self.outputs,
                "Step": self.step.to_struct(),
                "Steps": self.steps.to_struct(),
                "PreviousStep": self.previous_step.to_struct(),
                "Repository": self.repository.to_struct(),
            },
            pointer=True,
        )


@dataclass
class ChangesetTemplateContext:
    """What `changesetTemplate` fields may reference."""

    batch_change: BatchChangeAttributes = field(default_factory=BatchChangeAttributes)
    steps: StepsContext = field(default_factory=StepsContext)
    outputs: dict[str, object] = field(default_factory=dict)
    repository: Repository = field(default_factory=Repository)

    def to_data(self) -> dict[str, object]:
        steps = self.steps.changes.to_data()
        steps["path"] = self.steps.path
        return {
            "repository": self.repository.to_data(),
            "batch_change": self.batch_change.to_data(),
            "outputs": self.outputs,
            "steps": steps,
            "batch_change_link": BATCH_CHANGE_LINK,
        }

    def to_struct(self) -> GoStruct:
        return GoStruct(
            "template.ChangesetTemplateContext",
            {
                "BatchChangeAttributes": self.batch_change.to_struct(),
                "Steps": self.steps.to_struct(),
                "Outputs": self.outputs,
                "Repository": self.repository.to_struct(),
            },
            pointer=True,
        )


def context_funcs(data: dict[str, object]) -> dict[str, GoFunc]:
    """`ToFuncMap`: each variable becomes a function with no parameters."""
    return {key: GoFunc(lambda v=value: v) for key, value in data.items()}


def _build(name: str, source: str, ctx: StepContext | ChangesetTemplateContext) -> Template:
    return Template(name, source, funcs=context_funcs(ctx.to_data()))


def render_step_template(source: str, ctx: StepContext, *, name: str = "step-run") -> str:
    """src-cli `RenderStepTemplate`: parse errors gain the prefix `parsing step run: `."""
    try:
        tmpl = _build(name, source, ctx)
    except TemplateError as e:
        raise TemplateError(f"parsing step run: {e}") from e
    return tmpl.execute(ctx.to_struct())


def eval_step_condition(condition: str | bool | None, ctx: StepContext) -> bool:
    """src-cli `EvalStepCondition`: run the step iff the trimmed render is exactly `true`."""
    if condition is True or condition is False:
        condition = "true" if condition else "false"
    if not condition:
        return True
    try:
        out = render_step_template(condition, ctx, name="step-condition")
    except TemplateError as e:
        raise TemplateError(f"parsing step if: {e}") from e
    return go_trim_space(out) == "true"


def render_changeset_template_field(
    source: str, ctx: ChangesetTemplateContext, *, name: str = "title"
) -> str:
    """src-cli `RenderChangesetTemplateField`: render, then `strings.TrimSpace`."""
    tmpl = _build(name, source, ctx)
    return go_trim_space(tmpl.execute(ctx.to_struct()))


_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
_GO_SPACE += "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def go_trim_space(s: str) -> str:
    """`strings.TrimSpace`: Go's `unicode.IsSpace` set, not Python's."""
    return s.strip(_GO_SPACE)


_OUTPUT_RE = re.compile(r"(?i)\$\{\{\s*[^}]*\s*outputs\.[^}]*\}\}")
_INDEX_RE = re.compile(r"(?i)\$\{\{\s*index\s*[^}]*\}\}")
_FUNC_RE = re.compile(r'(?i)function "(?P<key>[^"]+)" not defined')
_KEY_RE = re.compile(r'(?i)at <(?P<outer>[^>]+)>:.*for key "(?P<inner>[^"]+)"')


def validate_batch_spec_template(spec: str) -> tuple[bool, str | None]:
    """src-cli `ValidateBatchSpecTemplate`: a dry run with empty contexts.

    Returns `(True, None)` or `(False, message)`, e.g.
    `validating batch spec template: unknown templating variable: 'resipotory'`.
    """
    funcs = context_funcs(StepContext().to_data())
    funcs.update(context_funcs(ChangesetTemplateContext().to_data()))
    spec = _INDEX_RE.sub("", _OUTPUT_RE.sub("", spec))
    try:
        tmpl = Template("validateBatchSpecTemplate", spec, funcs=funcs)
    except TemplateError as e:
        m = _FUNC_RE.search(str(e))
        if m:
            key = m.group("key")
            return False, f"validating batch spec template: unknown templating variable: '{key}'"
        return False, f"validating batch spec template: {e}"
    try:
        tmpl.execute(StepContext().to_struct())
    except TemplateError as e:
        m = _KEY_RE.search(str(e))
        if m:
            var = f"{m.group('outer')}.{m.group('inner')}"
            return False, f"validating batch spec template: unknown templating variable: '{var}'"
        return False, f"validating batch spec template: {e}"
    return True, None
