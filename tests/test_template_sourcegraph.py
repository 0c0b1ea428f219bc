"""Every case of Sourcegraph's `lib/batches/template/templating_test.go`.

Transcribed from sourcegraph/sourcegraph-public-snapshot (file version d81a866e) and
sourcegraph/src-cli `lib/batches/template`. The YAML document `rawYaml` is written out as the
value yaml.v3 decodes it to.
"""

from __future__ import annotations

import pytest

from executor.batch.template import (
    BatchChangeAttributes,
    ChangedFiles,
    ChangesetTemplateContext,
    Repository,
    StepContext,
    StepResult,
    StepsContext,
    TemplateError,
    eval_step_condition,
    render_changeset_template_field,
    render_step_template,
    validate_batch_spec_template,
)

TEST_CHANGES = ChangedFiles(
    modified=["go.mod"], added=["main.go.swp"], deleted=[".DS_Store"], renamed=["new-filename.txt"]
)
TEST_REPO = Repository(
    name="github.com/sourcegraph/src-cli", branch="main", file_matches=["README.md", "main.go"]
)
# rawYaml decoded by yaml.v3 into `any`.
PARSED_YAML: dict[str, object] = {
    "dist": "release",
    "env": ["GO111MODULE=on", "CGO_ENABLED=0"],
    "before": {"hooks": ["go mod download", "go mod tidy", "go generate ./schema"]},
}
BATCH_CHANGE = BatchChangeAttributes(
    name="test-batch-change", description="This batch change is just an experiment"
)

# -- TestValidateBatchSpecTemplate --------------------------------------------------------

FULL_SPEC = """name: valid-batch-spec
on:
- repository: github.com/fake/fake

steps:
- run: |
    ${{ repository.search_result_paths }}
    ${{ repository.name }}
    ${{ batch_change.name }}
    ${{ batch_change.description }}
    ${{ previous_step.modified_files }}
    ${{ previous_step.added_files }}
    ${{ previous_step.deleted_files }}
    ${{ previous_step.renamed_files }}
    ${{ previous_step.stdout }}
    ${{ previous_step.stderr}}
    ${{ step.modified_files }}
    ${{ step.added_files }}
    ${{ step.deleted_files }}
    ${{ step.renamed_files }}
    ${{ step.stdout}}
    ${{ step.stderr}}
    ${{ steps.modified_files }}
    ${{ steps.added_files }}
    ${{ steps.deleted_files }}
    ${{ steps.renamed_files }}
    ${{ steps.path }}
  container: my-container

changesetTemplate:
title: |
  ${{ repository.search_result_paths }}
  ${{ repository.name }}
  ${{ repository.branch }}
  ${{ batch_change.name }}
  ${{ batch_change.description }}
  ${{ steps.modified_files }}
  ${{ steps.added_files }}
  ${{ steps.deleted_files }}
  ${{ steps.renamed_files }}
  ${{ steps.path }}
  ${{ batch_change_link }}
  body: I'm a changeset yay!
  branch: my-branch
  commit:
    message: I'm a changeset yay!
"""

VALIDATE_CASES: list[tuple[str, str, str | None]] = [
    ("full batch spec, all valid template variables", FULL_SPEC, None),
    (
        "valid template helpers",
        """${{ join repository.search_result_paths "\\n" }}
        ${{ join_if "---" "a" "b" "" "d" }}
        ${{ replace "a/b/c/d" "/" "-" }}
        ${{ split repository.name "/" }}
        ${{ matches repository.name "github.com/my-org/terra*" }}
        ${{ index steps.modified_files 1 }}""",
        None,
    ),
    (
        "invalid step template variable",
        "${{ resipotory.search_result_paths }}",
        "validating batch spec template: unknown templating variable: 'resipotory'",
    ),
    (
        "invalid step template variable, 1 level nested",
        "${{ repository.search_resalt_paths }}",
        "validating batch spec template: unknown templating variable: "
        "'repository.search_resalt_paths'",
    ),
    (
        "invalid changeset template variable",
        "${{ batch_chang_link }}",
        "validating batch spec template: unknown templating variable: 'batch_chang_link'",
    ),
    (
        "invalid changeset template variable, 1 level nested",
        "${{ steps.mofidied_files }}",
        "validating batch spec template: unknown templating variable: 'steps.mofidied_files'",
    ),
    (
        "escaped templating (github expression syntax) is ignored",
        '${{ "${{ ignore_me }}" }}',
        None,
    ),
    (
        "output variables are ignored",
        """${{ outputs.IDontExist }}
            ${{OUTPUTS.anotherOne}}
            ${{ join outputs.myArray "," }}
            ${{ index outputs.env.something 1 }}""",
        None,
    ),
    (
        "output variables are ignored, but invalid step template variable still fails",
        "${{ outputs.unknown }} ${{ outputz.unknown }}",
        "validating batch spec template: unknown templating variable: 'outputz'",
    ),
]


@pytest.mark.parametrize(("name", "spec", "want_err"), VALIDATE_CASES)
def test_validate_batch_spec_template(name: str, spec: str, want_err: str | None) -> None:
    valid, err = validate_batch_spec_template(spec)
    assert valid is (want_err is None), name
    assert err == want_err, name


# -- TestEvalStepCondition ----------------------------------------------------------------


def condition_ctx() -> StepContext:
    return StepContext(
        batch_change=BATCH_CHANGE,
        previous_step=StepResult(
            TEST_CHANGES, "this is previous step's stdout", "this is previous step's stderr"
        ),
        steps=StepsContext(changes=TEST_CHANGES, path="sub/directory/of/repo"),
        outputs={},
        repository=TEST_REPO,
    )


@pytest.mark.parametrize(
    ("run", "want"),
    [
        ("true", True),
        ("  true    ", True),
        ("TRUE", False),
        ("false", False),
        ("FALSE", False),
        ('${{ eq repository.name "github.com/sourcegraph/src-cli" }}', True),
        ('${{ eq steps.path "sub/directory/of/repo" }}', True),
        ('${{ matches repository.name "github.com/sourcegraph/*" }}', True),
    ],
)
def test_eval_step_condition(run: str, want: bool) -> None:
    assert eval_step_condition(run, condition_ctx()) is want


# -- TestRenderStepTemplate ---------------------------------------------------------------

STEP_ALIASES = """${{ repository.search_result_paths }}
${{ repository.name }}
${{ batch_change.name }}
${{ batch_change.description }}
${{ previous_step.modified_files }}
${{ previous_step.added_files }}
${{ previous_step.deleted_files }}
${{ previous_step.renamed_files }}
${{ previous_step.stdout }}
${{ previous_step.stderr}}
${{ outputs.lastLine }}
${{ index outputs.project.env 1 }}
${{ step.modified_files }}
${{ step.added_files }}
${{ step.deleted_files }}
${{ step.renamed_files }}
${{ step.stdout}}
${{ step.stderr}}
${{ steps.modified_files }}
${{ steps.added_files }}
${{ steps.deleted_files }}
${{ steps.renamed_files }}
${{ steps.path }}
"""
STEP_ALIASES_WANT = """README.md main.go
github.com/sourcegraph/src-cli
test-batch-change
This batch change is just an experiment
[go.mod]
[main.go.swp]
[.DS_Store]
[new-filename.txt]
this is previous step's stdout
this is previous step's stderr
lastLine is this
CGO_ENABLED=0
[go.mod]
[main.go.swp]
[.DS_Store]
[new-filename.txt]
this is current step's stdout
this is current step's stderr
[go.mod]
[main.go.swp]
[.DS_Store]
[new-filename.txt]
sub/directory/of/repo
"""
STEP_EMPTY = """${{ repository.search_result_paths }}
${{ repository.name }}
${{ previous_step.modified_files }}
${{ previous_step.added_files }}
${{ previous_step.deleted_files }}
${{ previous_step.renamed_files }}
${{ previous_step.stdout }}
${{ previous_step.stderr}}
${{ step.modified_files }}
${{ step.added_files }}
${{ step.deleted_files }}
${{ step.renamed_files }}
${{ step.stdout}}
${{ step.stderr}}
${{ steps.modified_files }}
${{ steps.added_files }}
${{ steps.deleted_files }}
${{ steps.renamed_files }}
${{ steps.path }}
"""
STEP_EMPTY_WANT = "\n\n[]\n[]\n[]\n[]\n\n\n[]\n[]\n[]\n[]\n\n\n[]\n[]\n[]\n[]\n\n"


def full_step_ctx() -> StepContext:
    return StepContext(
        batch_change=BATCH_CHANGE,
        previous_step=StepResult(
            TEST_CHANGES, "this is previous step's stdout", "this is previous step's stderr"
        ),
        outputs={"lastLine": "lastLine is this", "project": PARSED_YAML},
        step=StepResult(
            TEST_CHANGES, "this is current step's stdout", "this is current step's stderr"
        ),
        steps=StepsContext(changes=TEST_CHANGES, path="sub/directory/of/repo"),
        repository=TEST_REPO,
    )


def test_render_step_template_lower_case_aliases() -> None:
    assert render_step_template(STEP_ALIASES, full_step_ctx(), name="testing") == STEP_ALIASES_WANT


def test_render_step_template_empty_context() -> None:
    assert render_step_template(STEP_EMPTY, StepContext(), name="testing") == STEP_EMPTY_WANT


def test_render_step_template_empty_outputs_is_missing_key() -> None:
    # The older test version expected `<no value>` here; with missingkey=error an unset
    # outputs map makes `outputs.lastLine` an error.
    with pytest.raises(TemplateError, match='map has no entry for key "lastLine"'):
        render_step_template("${{ outputs.lastLine }}", StepContext(), name="testing")


# -- TestRenderStepMap --------------------------------------------------------------------


def test_render_step_map() -> None:
    ctx = StepContext(
        previous_step=StepResult(
            TEST_CHANGES, "this is previous step's stdout", "this is previous step's stderr"
        ),
        outputs={},
        repository=TEST_REPO,
    )
    given = {
        "/tmp/my-file.txt": "${{ previous_step.modified_files }}",
        "/tmp/my-other-file.txt": "${{ previous_step.added_files }}",
        "/tmp/my-other-file2.txt": "${{ previous_step.deleted_files }}",
    }
    have = {k: render_step_template(v, ctx, name=k) for k, v in given.items()}
    assert have == {
        "/tmp/my-file.txt": "[go.mod]",
        "/tmp/my-other-file.txt": "[main.go.swp]",
        "/tmp/my-other-file2.txt": "[.DS_Store]",
    }


# -- TestRenderChangesetTemplateField -----------------------------------------------------

CS_ALIASES = """${{ repository.search_result_paths }}
${{ repository.name }}
${{ batch_change.name }}
${{ batch_change.description }}
${{ outputs.lastLine }}
${{ index outputs.project.env 1 }}
${{ steps.modified_files }}
${{ steps.added_files }}
${{ steps.deleted_files }}
${{ steps.renamed_files }}
${{ steps.path }}
${{ batch_change_link }}
"""
CS_ALIASES_WANT = """README.md main.go
github.com/sourcegraph/src-cli
test-batch-change
This batch change is just an experiment
lastLine is this
CGO_ENABLED=0
[modified-file.txt]
[added-file.txt]
[deleted-file.txt]
[renamed-file.txt]
infrastructure/sub-project
${{ batch_change_link }}"""
CS_EMPTY = """${{ repository.search_result_paths }}
${{ repository.name }}
${{ steps.modified_files }}
${{ steps.added_files }}
${{ steps.deleted_files }}
${{ steps.renamed_files }}
${{ batch_change_link }}
"""
CS_EMPTY_WANT = "[]\n[]\n[]\n[]\n${{ batch_change_link }}"


def test_render_changeset_template_field_lower_case_aliases() -> None:
    ctx = ChangesetTemplateContext(
        batch_change=BATCH_CHANGE,
        outputs={"lastLine": "lastLine is this", "project": PARSED_YAML},
        repository=TEST_REPO,
        steps=StepsContext(
            changes=ChangedFiles(
                modified=["modified-file.txt"],
                added=["added-file.txt"],
                deleted=["deleted-file.txt"],
                renamed=["renamed-file.txt"],
            ),
            path="infrastructure/sub-project",
        ),
    )
    assert render_changeset_template_field(CS_ALIASES, ctx, name="testing") == CS_ALIASES_WANT


def test_render_changeset_template_field_empty_context() -> None:
    got = render_changeset_template_field(CS_EMPTY, ChangesetTemplateContext(), name="testing")
    assert got == CS_EMPTY_WANT


def test_changeset_context_has_no_previous_step_or_steps_stdout() -> None:
    ctx = ChangesetTemplateContext()
    with pytest.raises(TemplateError, match='function "previous_step" not defined'):
        render_changeset_template_field("${{ previous_step.stdout }}", ctx)
    with pytest.raises(TemplateError, match='map has no entry for key "stdout"'):
        render_changeset_template_field("${{ steps.stdout }}", ctx)
