"""The step/changeset contexts and the wrappers src-cli puts around rendering."""

from __future__ import annotations

import pytest

from executor.batch.template import (
    BatchChangeAttributes,
    ChangedFiles,
    ChangesetTemplateContext,
    FileMatchPathList,
    Repository,
    StepContext,
    StepResult,
    StepsContext,
    StrList,
    TemplateError,
    eval_step_condition,
    render_changeset_template_field,
    render_step_template,
)


def test_step_context_variable_tree() -> None:
    ctx = StepContext(
        batch_change=BatchChangeAttributes("bc", "desc"),
        outputs={"o": 1.0},
        step=StepResult(ChangedFiles(modified=["s.go"]), "so", "se"),
        steps=StepsContext(ChangedFiles(added=["a"]), "dir"),
        previous_step=StepResult(ChangedFiles(deleted=["d"]), "po", "pe"),
        repository=Repository("r", "refs/heads/main", ["b.go", "B.go", "a.go"]),
    )
    data = ctx.to_data()
    assert data == {
        "previous_step": {
            "modified_files": [],
            "added_files": [],
            "deleted_files": ["d"],
            "renamed_files": [],
            "stdout": "po",
            "stderr": "pe",
        },
        "step": {
            "modified_files": ["s.go"],
            "added_files": [],
            "deleted_files": [],
            "renamed_files": [],
            "stdout": "so",
            "stderr": "se",
        },
        "steps": {
            "modified_files": [],
            "added_files": ["a"],
            "deleted_files": [],
            "renamed_files": [],
            "stdout": "",
            "stderr": "",
            "path": "dir",
        },
        "outputs": {"o": 1.0},
        "repository": {
            "search_result_paths": ["B.go", "a.go", "b.go"],
            "name": "r",
            "branch": "refs/heads/main",
        },
        "batch_change": {"name": "bc", "description": "desc"},
    }
    repo = data["repository"]
    assert isinstance(repo, dict)
    assert isinstance(repo["search_result_paths"], FileMatchPathList)
    steps = data["steps"]
    assert isinstance(steps, dict)
    assert isinstance(steps["added_files"], StrList)


def test_changeset_context_variable_tree() -> None:
    data = ChangesetTemplateContext(steps=StepsContext(path="p")).to_data()
    assert set(data) == {"repository", "batch_change", "outputs", "steps", "batch_change_link"}
    assert data["batch_change_link"] == "${{ batch_change_link }}"
    steps = data["steps"]
    assert isinstance(steps, dict)
    assert set(steps) == {"modified_files", "added_files", "deleted_files", "renamed_files", "path"}


@pytest.mark.parametrize(
    ("condition", "want"),
    [
        (True, True),
        (False, False),
        (None, True),
        ("", True),
        ("${{ outputs.flag }}", True),  # "true\n" trims to "true"
        ('${{ eq outputs.flag "true" }}', False),  # the newline is kept for eq
        ('${{ matches repository.name "*/other" }}', False),
        ("random string", False),
    ],
)
def test_eval_step_condition(condition: str | bool | None, want: bool) -> None:
    ctx = StepContext(outputs={"flag": "true\n"}, repository=Repository(name="g/o/r"))
    assert eval_step_condition(condition, ctx) is want


def test_eval_step_condition_wraps_errors() -> None:
    with pytest.raises(TemplateError) as info:
        eval_step_condition("${{ outputs.nope }}", StepContext())
    assert str(info.value) == (
        'parsing step if: template: step-condition:1:4: executing "step-condition" '
        'at <outputs>: map has no entry for key "nope"'
    )
    with pytest.raises(TemplateError) as info:
        eval_step_condition("${{ nope }}", StepContext())
    assert str(info.value) == (
        'parsing step if: parsing step run: template: step-condition:1: function "nope" not defined'
    )


def test_render_step_template_wraps_only_parse_errors() -> None:
    with pytest.raises(TemplateError) as info:
        render_step_template("${{ ", StepContext())
    assert str(info.value) == "parsing step run: template: step-run:1: unclosed action"
    with pytest.raises(TemplateError) as info:
        render_step_template("${{ steps.x }}", StepContext(), name="FOO")
    assert str(info.value).startswith('template: FOO:1:4: executing "FOO" at <steps>:')


def test_step_fields_are_not_trimmed_but_changeset_fields_are() -> None:
    ctx = StepContext(previous_step=StepResult(stdout="hello.txt\n"))
    assert render_step_template("${{ previous_step.stdout }}", ctx) == "hello.txt\n"
    cs = ChangesetTemplateContext(batch_change=BatchChangeAttributes(name="n"))
    assert render_changeset_template_field("  \n${{ batch_change.name }}\n\t", cs) == "n"


def test_struct_style_access_on_dot() -> None:
    ctx = StepContext(
        batch_change=BatchChangeAttributes(name="bc"),
        previous_step=StepResult(stdout="out"),
        repository=Repository(file_matches=["b", "a"]),
        outputs={"x": "y"},
    )
    out = render_step_template(
        "${{ .BatchChange.Name }} ${{ .PreviousStep.Stdout }} "
        "${{ .Repository.SearchResultPaths }} ${{ $.Outputs.x }}",
        ctx,
    )
    assert out == "bc out a b y"


def test_helpers_inside_steps() -> None:
    ctx = StepContext(
        previous_step=StepResult(ChangedFiles(modified=["a.go", "b.go"])),
        outputs={"list": ["x", "y"], "n": 3.0},
    )
    tmpl = (
        '${{ join previous_step.modified_files " " }}|'
        "${{ range $i, $f := previous_step.modified_files }}${{ $i }}:${{ $f }};${{ end }}|"
        "${{ range outputs.list }}${{ . }}${{ end }}|${{ len outputs.list }}|"
        "${{ eq outputs.n 3.0 }}|"
        '${{ index outputs "missing" | printf "%v" }}'
    )
    assert render_step_template(tmpl, ctx) == "a.go b.go|0:a.go;1:b.go;|xy|2|true|<nil>"
