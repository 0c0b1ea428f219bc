"""Batch spec parsing and validation (src-cli's schema messages and semantic checks)."""

from __future__ import annotations

import pytest

from executor.batch.env import EnvError, Environment
from executor.batch.gojson import marshal
from executor.batch.spec import (
    NAME_PATTERN_MESSAGE,
    BatchSpecValidationError,
    OnQueryOrRepository,
    Step,
    parse_batch_spec,
    step_to_go,
)

FULL = """\
version: 2
name: hello-world.v2
description: Add Hello World to READMEs
on:
  - repositoriesMatchingQuery: file:README.md
  - repository: github.com/sourcegraph/src-cli
    branch: main
  - repository: github.com/sourcegraph/sourcegraph
    branches: [a, b]
workspaces:
  - rootAtLocationOf: package.json
    in: github.com/sourcegraph/*
    onlyFetchWorkspace: true
steps:
  - run: echo Hello World | tee -a $(find -name README.md)
    container: alpine:3
    env:
      - FOO
      - BAR: baz
    files:
      /tmp/x.txt: ${{ repository.name }}
    outputs:
      friendlyMessage:
        value: ${{ step.stdout }}
        format: yaml
    if: ${{ matches repository.name "github.com/sourcegraph/*" }}
    mount:
      - path: ./scripts/run.sh
        mountpoint: /tmp/run.sh
  - run: echo
    container: alpine:3
    env:
      A: "1"
    if: true
importChangesets:
  - repository: github.com/sourcegraph/sourcegraph
    externalIDs: [123, "456"]
transformChanges:
  group:
    - directory: client
      branch: my-batch-change-client
      repository: github.com/sourcegraph/src-cli
changesetTemplate:
  title: Hello World
  body: My first batch change!
  branch: hello-world
  fork: true
  commit:
    message: Append Hello World to all README.md files
    author:
      name: Sourcegraph
      email: batch-changes@sourcegraph.com
  published:
    - github.com/sourcegraph/*: draft
    - github.com/sourcegraph/src-cli@main: true
"""


def test_parses_every_section() -> None:
    spec = parse_batch_spec(FULL)
    assert spec.version == 2
    assert spec.name == "hello-world.v2"
    assert spec.on is not None
    assert spec.on[0].repositories_matching_query == "file:README.md"
    assert spec.on[1].get_branches() == ["main"]
    assert spec.on[2].get_branches() == ["a", "b"]
    assert spec.workspaces is not None and spec.workspaces[0].in_ == "github.com/sourcegraph/*"
    assert spec.workspaces[0].only_fetch_workspace is True
    assert spec.steps is not None
    first, second = spec.steps
    assert first.env.resolve(["FOO=outer", "BAR=ignored"]) == {"FOO": "outer", "BAR": "baz"}
    assert first.outputs is not None and first.outputs["friendlyMessage"].format == "yaml"
    assert first.mount is not None and first.mount[0].mountpoint == "/tmp/run.sh"
    assert first.if_condition().startswith("${{ matches")
    assert second.if_ is True and second.if_condition() == "true"
    assert spec.import_changesets is not None
    assert spec.import_changesets[0].external_ids == [123, "456"]
    assert spec.transform_changes is not None and spec.transform_changes.group is not None
    assert spec.transform_changes.group[0].branch == "my-batch-change-client"
    template = spec.changeset_template
    assert template is not None and template.fork is True
    assert template.commit.author is not None
    assert template.commit.author.email == "batch-changes@sourcegraph.com"
    assert template.published == [
        {"github.com/sourcegraph/*": "draft"},
        {"github.com/sourcegraph/src-cli@main": True},
    ]
    assert spec.required_env_vars() == ["FOO"]


def test_yaml_12_keeps_on_and_yes_as_strings() -> None:
    spec = parse_batch_spec("name: x\non:\n  - repository: yes\n")
    assert spec.on == [OnQueryOrRepository(repository="yes")]


def _errors(text: str) -> list[str]:
    with pytest.raises(BatchSpecValidationError) as info:
        parse_batch_spec(text)
    return info.value.errors


def test_name_pattern_gets_friendly_message() -> None:
    assert _errors("name: hello world\n") == [NAME_PATTERN_MESSAGE]
    # RE2's `$` does not match before a trailing newline, nor `\w` non-ASCII letters.
    assert _errors('name: "abc\\n"\n') == [NAME_PATTERN_MESSAGE]
    assert _errors("name: café\n") == [NAME_PATTERN_MESSAGE]


def test_all_errors_reported_at_once_with_paths() -> None:
    errors = _errors(
        "description: 1\nbogus: true\nsteps:\n  - container: alpine\n    if: 3\n"
        "changesetTemplate:\n  title: t\n  branch: b\n  commit: {}\n"
    )
    assert "name is required" in errors
    assert "Additional property bogus is not allowed" in errors
    assert "description: Invalid type. Expected: string, given: integer" in errors
    assert "steps.0: run is required" in errors
    assert "steps.0.if: Must validate one and only one schema (oneOf)" in errors
    assert "changesetTemplate.commit: message is required" in errors


def test_multi_error_text_format() -> None:
    with pytest.raises(BatchSpecValidationError) as info:
        parse_batch_spec("bogus: 1\n")
    assert str(info.value) == (
        "2 errors occurred:\n\t* name is required\n\t* Additional property bogus is not allowed"
    )


def test_type_lists_print_like_gojsonschema() -> None:
    assert _errors("name: x\nsteps: foo\n") == [
        "steps: Invalid type. Expected: [array,null], given: string"
    ]


def test_enum_and_format_messages() -> None:
    errors = _errors(
        "name: x\nversion: 3\nsteps:\n  - run: a\n    container: b\n"
        "    outputs: {o: {value: v, format: xml}}\n"
        "changesetTemplate:\n  title: t\n  branch: b\n"
        "  commit: {message: m, author: {name: n, email: not-an-email}}\n"
    )
    assert "version: version must be one of the following: 1, 2" in errors
    assert (
        "steps.0.outputs.o.format: steps.0.outputs.o.format must be one of the following: "
        '"json", "yaml", "text"'
    ) in errors
    assert "changesetTemplate.commit.author.email: Does not match format 'email'" in errors


def test_env_list_items_need_exactly_one_key() -> None:
    errors = _errors(
        "name: x\nsteps:\n  - run: a\n    container: b\n    env: [{A: b, C: d}]\n"
        "changesetTemplate: {title: t, branch: b, commit: {message: m}}\n"
    )
    assert "steps.0.env.0: Must have at most 1 properties" in errors
    with pytest.raises(EnvError, match=r"expected 1, got 2"):
        Environment.parse([{"A": "b", "C": "d"}])


def test_branch_and_branches_conflict() -> None:
    errors = _errors("name: x\non:\n  - repository: a\n    branch: x\n    branches: [y]\n")
    assert errors[0] == "on.0: Must validate one and only one schema (oneOf)"
    with pytest.raises(BatchSpecValidationError, match="both branch and branches specified"):
        OnQueryOrRepository(repository="a", branch="x", branches=["y"]).get_branches()


def test_published_rules_validated() -> None:
    errors = _errors(
        "name: x\nchangesetTemplate:\n  title: t\n  branch: b\n  commit: {message: m}\n"
        "  published: [{a: maybe}]\n"
    )
    assert "changesetTemplate.published.0.a: Does not match pattern '^draft$'" in errors


def test_transform_group_min_length_and_unique_external_ids() -> None:
    errors = _errors(
        "name: x\ntransformChanges:\n  group: [{directory: '', branch: b}]\n"
        "importChangesets: [{repository: r, externalIDs: [1, 1]}]\n"
    )
    assert (
        "transformChanges.group.0.directory: String length must be greater than or equal to 1"
        in errors
    )
    assert "importChangesets.0.externalIDs: array items[0,1] must be unique" in errors


def test_semantic_checks() -> None:
    assert _errors("name: x\nsteps:\n  - run: a\n    container: b\n") == [
        "batch spec includes steps but no changesetTemplate"
    ]
    errors = _errors(
        "name: x\nsteps:\n  - run: a\n    container: b\n"
        "    mount: [{path: 'a,b', mountpoint: '/x\"y'}]\n    files: {'t,u': v}\n"
        "changesetTemplate: {title: t, branch: b, commit: {message: m}}\n"
    )
    assert errors == [
        "step 1 mount path contains invalid characters",
        "step 1 mount mountpoint contains invalid characters",
        "step 1 files target path contains invalid characters",
    ]


def test_yaml_syntax_error_is_a_validation_error() -> None:
    assert _errors("name: [\n")[0].startswith("failed to normalize JSON: ")


def test_step_go_json_form() -> None:
    static = Step.model_validate({"run": "a", "container": "c", "env": {"B": "2", "A": "1"}})
    assert marshal(step_to_go(static)) == '{"run":"a","container":"c","env":{"A":"1","B":"2"}}'
    mixed = Step.model_validate(
        {
            "run": "a",
            "env": [{"foo": "bar"}, "quux"],
            "files": {"z": "1", "a": "2"},
            "outputs": {"o": {"value": "v"}},
            "mount": [{"path": "p", "mountpoint": "m"}],
            "if": False,
        }
    )
    assert marshal(step_to_go(mixed)) == (
        '{"run":"a","env":[{"foo":"bar"},"quux"],"files":{"a":"2","z":"1"},'
        '"outputs":{"o":{"value":"v"}},"mount":[{"mountpoint":"m","path":"p"}],"if":false}'
    )
    assert marshal(step_to_go(Step())) == '{"env":{}}'


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, "true"), (False, "false"), ("${{ x }}", "${{ x }}"), (None, "")],
)
def test_if_condition(raw: bool | str | None, expected: str) -> None:
    assert Step.model_validate({"if": raw}).if_condition() == expected


def test_env_resolution_rules() -> None:
    env = Environment.parse(["A", {"B": "static"}, "MISSING"])
    assert env.resolve(["A=1=2", "B=outer"]) == {"A": "1=2", "B": "static", "MISSING": ""}
    assert env.outer_vars() == ["A", "MISSING"]
    with pytest.raises(EnvError, match='unable to parse environment variable "NOEQ"'):
        env.resolve(["NOEQ"])
    with pytest.raises(EnvError):
        Environment.parse(False)
    with pytest.raises(EnvError):
        Environment.parse({"foo": False})
    assert Environment.parse({"foo": None}).to_go() == {"foo": ""}
