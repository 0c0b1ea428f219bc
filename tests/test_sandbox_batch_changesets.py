"""Changeset spec building (`executor.sandbox.changesets`) and static `if:` skipping."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from executor.batch.execution import AfterStepResult
from executor.batch.spec import parse_batch_spec
from executor.sandbox.changesets import (
    ChangesetBuildError,
    SpecRepository,
    build_changeset_specs,
    published_value,
    split_file_diffs,
)
from executor.sandbox.workspaces import statically_skipped_steps

REPO = SpecRepository("UmVwb3NpdG9yeTox", "github.com/acme/app", "refs/heads/main", "c0ffee")
DIFF = (
    b"diff --git README.md README.md\n--- README.md\n+++ README.md\n@@ -1 +1 @@\n-a\n+b\n"
    b"diff --git docs/x.md docs/x.md\nnew file mode 100644\n--- /dev/null\n+++ docs/x.md\n"
    b"@@ -0,0 +1 @@\n+x\n"
    b"diff --git web/y.md web/y.md\ndeleted file mode 100644\n--- web/y.md\n+++ /dev/null\n"
    b"@@ -1 +0,0 @@\n-y\n"
    b"diff --git img.png img.png\nnew file mode 100644\nindex 0000000..1111111\n"
    b"GIT binary patch\nliteral 1\nIcmZo*00001\n\nliteral 0\nHcmV?d00001\n\n"
)


def _spec(template: str, extra: str = "") -> Any:
    return parse_batch_spec(
        "name: demo\ndescription: the demo\non:\n  - repository: github.com/acme/app\n"
        "steps:\n  - run: x\n    container: y\n"
        f"changesetTemplate:\n{template}{extra}"
    )


BASIC = "  title: t\n  branch: feature\n  commit:\n    message: m\n"


def _result(diff: bytes = DIFF, **fields: Any) -> AfterStepResult:
    return AfterStepResult.model_validate(
        {"version": 2, "stepIndex": 0, "diff": base64.b64encode(diff).decode(), **fields}
    )


def test_template_fields_are_rendered_and_trimmed() -> None:
    template = (
        "  title: '  ${{ batch_change.name }} in ${{ repository.name }} '\n"
        "  body: ${{ outputs.x }} ${{ steps.added_files }} ${{ steps.path }}"
        " ${{ batch_change_link }}\n"
        "  branch: b-${{ repository.branch }}\n"
        "  commit:\n    message: ${{ batch_change.description }}\n"
        "    author:\n      name: ${{ outputs.who }}\n      email: me@example.com\n"
    )
    result = _result(outputs={"x": "X", "who": "Me\n"}, changedFiles={"added": ["docs/x.md"]})
    [spec] = build_changeset_specs(_spec(template), REPO, result, "sub")
    assert spec["title"] == "demo in github.com/acme/app"
    assert spec["body"] == "X [docs/x.md] sub ${{ batch_change_link }}"
    assert spec["headRef"] == "refs/heads/b-main"
    assert spec["commits"][0]["message"] == "the demo"
    assert (spec["commits"][0]["authorName"], spec["commits"][0]["authorEmail"]) == (
        "Me",
        "me@example.com",
    )
    assert "published" not in spec and "fork" not in spec


def test_unknown_template_variable_is_an_error() -> None:
    template = BASIC.replace("title: t", "title: ${{ outputs.nope.deeper }}")
    with pytest.raises(ChangesetBuildError, match="template: title"):
        build_changeset_specs(_spec(template), REPO, _result(outputs={}), "")


def test_empty_diff_builds_nothing() -> None:
    assert build_changeset_specs(_spec(BASIC), REPO, _result(b""), "") == []


@pytest.mark.parametrize(
    ("published", "branch", "expected"),
    [
        (None, "feature", None),
        (True, "feature", True),
        ("draft", "feature", "draft"),
        ([{"*": False}, {"github.com/acme/*": "draft"}], "feature", "draft"),
        ([{"github.com/acme/*": "draft"}, {"*": False}], "feature", False),
        ([{"*": False}, {"github.com/acme/app@other": True}], "feature", False),
        ([{"*": False}, {"github.com/acme/app@feature": True}], "feature", True),
        ([{"github.com/other/*": True}], "feature", None),
    ],
)
def test_published_rules(published: Any, branch: str, expected: Any) -> None:
    assert published_value(published, "github.com/acme/app", branch) == expected


def test_transform_changes_groups_split_the_diff_by_directory() -> None:
    groups = (
        "transformChanges:\n  group:\n"
        "    - directory: docs\n      branch: docs-branch\n"
        "    - directory: ./web\n      branch: web-branch\n      repository: github.com/acme/app\n"
        "    - directory: web\n      branch: never\n      repository: github.com/acme/other\n"
    )
    template = BASIC + "  published:\n    - '*': false\n    - '*@docs-branch': draft\n"
    specs = build_changeset_specs(_spec(template, groups), REPO, _result(), "")
    by_branch = {s["headRef"]: s for s in specs}
    assert list(by_branch) == [
        "refs/heads/feature",
        "refs/heads/docs-branch",
        "refs/heads/web-branch",
    ]

    def names(ref: str) -> list[str]:
        diff = base64.b64decode(by_branch[ref]["commits"][0]["diff"])
        return [name for name, _ in split_file_diffs(diff)]

    assert names("refs/heads/feature") == ["README.md", "img.png"]
    assert names("refs/heads/docs-branch") == ["docs/x.md"]
    assert names("refs/heads/web-branch") == ["web/y.md"]
    assert by_branch["refs/heads/docs-branch"]["published"] == "draft"
    assert by_branch["refs/heads/feature"]["published"] is False


def test_transform_changes_conflicting_branches_are_errors() -> None:
    same = "transformChanges:\n  group:\n    - directory: a\n      branch: feature\n"
    with pytest.raises(ChangesetBuildError, match="is the same as branch"):
        build_changeset_specs(_spec(BASIC, same), REPO, _result(), "")
    twice = (
        "transformChanges:\n  group:\n    - directory: a\n      branch: x\n"
        "    - directory: b\n      branch: x\n"
    )
    with pytest.raises(ChangesetBuildError, match="multiple changesets"):
        build_changeset_specs(_spec(BASIC, twice), REPO, _result(), "")


def test_static_if_conditions_per_repository() -> None:
    spec = parse_batch_spec(
        "name: demo\non:\n  - repository: r\nsteps:\n"
        "  - {run: a, container: c, if: false}\n"
        "  - {run: b, container: c, if: 'nope'}\n"
        "  - {run: c, container: c, if: '${{ eq repository.name \"github.com/acme/app\" }}'}\n"
        "  - {run: d, container: c, if: '${{ outputs.x }}'}\n"
        "  - {run: e, container: c, if: true}\n"
        "  - {run: f, container: c, if: '${{ batch_change.name }}'}\n"
        "changesetTemplate:\n" + BASIC
    )
    assert statically_skipped_steps(spec, "github.com/acme/app") == [0, 1, 5]
    assert statically_skipped_steps(spec, "github.com/acme/other") == [0, 1, 2, 5]
