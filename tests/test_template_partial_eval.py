"""Every case of Sourcegraph's `lib/batches/template/partial_eval_test.go`."""

from __future__ import annotations

import pytest

from executor.batch.template import (
    BatchChangeAttributes,
    Repository,
    StepContext,
    TemplateError,
    is_static_bool,
    parse_and_partial_eval,
)

CTX = StepContext(
    batch_change=BatchChangeAttributes(name="test-batch-change", description="test-description"),
    repository=Repository(
        name="github.com/sourcegraph/src-cli", file_matches=["main.go", "README.md"]
    ),
)

EVALUATED = [
    ('this is my template ${{ "hardcoded string" }}', "this is my template hardcoded string"),
    ("${{ 1234 }}", "1234"),
    ("${{ true }} ${{ false }}", "true false"),
    (
        "${{ repository.name }} ${{ batch_change.name }} ${{ batch_change.description }}",
        "github.com/sourcegraph/src-cli test-batch-change test-description",
    ),
    (
        "AAA${{ repository.name }}BBB${{ batch_change.name }}CCC${{ batch_change.description }}DDD",
        "AAAgithub.com/sourcegraph/src-cliBBBtest-batch-changeCCCtest-descriptionDDD",
    ),
    ("${{ eq repository.name outputs.repo.name }}", "{{eq repository.name outputs.repo.name}}"),
    ('${{ eq repository.name "github.com/sourcegraph/src-cli" }}', "true"),
    ("${{ eq 5 5 }}", "true"),
    ('${{ not (eq repository.name "bitbucket-repo") }}', "true"),
    ("${{ not 1234 }} ${{ not false }} ${{ not true }}", "false true false"),
    ('${{ ne repository.name "github.com/sourcegraph/src-cli" }}', "false"),
    ("${{ ne 5 5 }}", "false"),
    ('${{ matches repository.name "github.com*" }}', "true"),
    ('${{ eq false (matches repository.name "github.com*") }}', "false"),
    ('${{ eq false (eq false (matches repository.name "github.com*")) }}', "true"),
]

ABORTED = [
    ("${{ repository.secretlocation }}", "{{repository.secretlocation}}"),
    ("${{ repository.name.doesnotexist }}", "{{repository.name.doesnotexist}}"),
    ("${{ repository.search_result_paths }}", "{{repository.search_result_paths}}"),
    ("${{ outputs.runtime.value }}", "{{outputs.runtime.value}}"),
    ("${{ step.modified_files }}", "{{step.modified_files}}"),
    ("${{ previous_step.modified_files }}", "{{previous_step.modified_files}}"),
    ("${{ eq repository.name outputs.repo.name }}", "{{eq repository.name outputs.repo.name}}"),
    (
        '${{ eq repository.name "github.com/sourcegraph/src-cli" '
        '"github.com/sourcegraph/sourcegraph" }}',
        '{{eq repository.name "github.com/sourcegraph/src-cli" '
        '"github.com/sourcegraph/sourcegraph"}}',
    ),
    (
        '${{ eq false (eq false (matches outputs.runtime.value "github.com*")) }}',
        '{{eq false (eq false (matches outputs.runtime.value "github.com*"))}}',
    ),
]

BUILTIN_SUCCESS = [
    ('${{ join (split repository.name "/") "-" }}', "github.com-sourcegraph-src-cli"),
    ('${{ split repository.name "/" "-" }}', '{{split repository.name "/" "-"}}'),
    ('${{ replace repository.name "github" "foobar" }}', "foobar.com/sourcegraph/src-cli"),
    ('${{ join_if "SEP" repository.name "postfix" }}', "github.com/sourcegraph/src-cliSEPpostfix"),
    ('${{ matches repository.name "github.com*" }}', "true"),
]

BUILTIN_ABORTED = [
    ('${{ join "foobar" "-" }}', '{{join "foobar" "-"}}'),
    (
        '${{ join (split repository.name "/") "-" "too" "many" "args" }}',
        '{{join (split repository.name "/") "-" "too" "many" "args"}}',
    ),
]


@pytest.mark.parametrize(
    ("template", "want"), EVALUATED + ABORTED + BUILTIN_SUCCESS + BUILTIN_ABORTED
)
def test_parse_and_partial_eval(template: str, want: str) -> None:
    assert parse_and_partial_eval(template, CTX) == want


@pytest.mark.parametrize(
    ("template", "want_static", "want_bool"),
    [
        ("true", True, True),
        ("false", True, False),
        ("${{ repository.name }}", True, False),
        ('${{ eq repository.name "github.com/sourcegraph/src-cli" }}', True, True),
        ('${{ eq repository.name "hans wurst" }}', True, False),
        ('   ${{ eq false (eq false (matches repository.name "github.com*")) }}   ', True, True),
        ('${{ eq false (eq false (matches outputs.repo.name "github.com*")) }}', False, False),
        ("adfadsfasdfadsfasdfasdfadsf", True, False),
    ],
)
def test_is_static_bool(template: str, want_static: bool, want_bool: bool) -> None:
    assert is_static_bool(template, CTX) == (want_static, want_bool)


def test_partial_eval_quirks() -> None:
    # Go's == on interfaces: an int and a float64 are simply unequal, never an error.
    assert parse_and_partial_eval("${{ eq 5 5.0 }}", CTX) == "false"
    # Declarations and comments keep the template non-static.
    assert is_static_bool("${{ $x := true }}", CTX) == (False, False)
    assert is_static_bool("${{/* c */}}true", CTX) == (False, False)
    # Stages of a pipeline are evaluated independently; the last one wins.
    assert parse_and_partial_eval('${{ "x" | not true }}', CTX) == "false"
    # A bad glob is "not static", not an error.
    assert parse_and_partial_eval('${{ matches repository.name "[" }}', CTX) == (
        '{{matches repository.name "["}}'
    )


def test_partial_eval_parse_errors_propagate() -> None:
    with pytest.raises(TemplateError, match='template: partial-eval:1: function "nope"'):
        is_static_bool("${{ nope }}", CTX)
