"""Sourcegraph's validation and partition test cases (`tests/fixtures/search_query/
validate_test.json`, from `internal/search/query/validate_test.go`), plus the pipeline's
pattern handling per search type. Pure and fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from executor.sandbox.search.languages import resolve_language
from executor.sandbox.search.parser import parse
from executor.sandbox.search.query import plan_query, search_type_of
from executor.sandbox.search.tree import (
    Node,
    QueryError,
    SearchType,
    partition_search_pattern,
    tree_string,
)

CASES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "search_query" / "validate_test.json").read_text()
)


@pytest.mark.parametrize(("query", "error"), CASES["TestValidation"]["cases"])
def test_validation(query: str, error: str) -> None:
    with pytest.raises(QueryError) as raised:
        plan_query(query, SearchType.REGEX)
    assert str(raised.value) == error


@pytest.mark.parametrize(("query", "expected"), CASES["TestPartitionSearchPattern"]["cases"])
def test_partition_search_pattern(query: str, expected: str) -> None:
    try:
        parameters, pattern = partition_search_pattern(parse(query, SearchType.REGEX))
    except QueryError as err:
        assert str(err) == expected
        return
    nodes: list[Node] = [*parameters, *([pattern] if pattern is not None else [])]
    assert tree_string(nodes) == expected


def _plan(query: str, default: SearchType = SearchType.STANDARD) -> tuple[str, list[str]]:
    search_type, plan = plan_query(query, default)
    shown = [
        " ".join([tree_string(list(b.parameters)), b.pattern.go_string() if b.pattern else ""])
        for b in plan
    ]
    return search_type.value, [s.strip() for s in shown]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Standard: adjacent literals join with spaces, /.../ is a regexp, quotes are text.
        ("foo bar", ("standard", ['"foo bar"'])),
        ("foo /ba.r/ baz", ("standard", ['(and "foo" "ba.r" "baz")'])),
        ('"foo bar"', ("standard", ['"\\"foo bar\\""'])),
        # Regexp: patterns join with .*?, quotes are literal strings.
        ("foo bar patterntype:regexp", ("regexp", ['"patterntype:regexp" "(?:foo).*?(?:bar)"'])),
        ('"a.b" patternType:regexp', ("regexp", ['"patterntype:regexp" "a.b"'])),
        ('f:package.json "bootstrap": ".?4 patterntype:regexp',
         ("regexp", ['"file:package.json" "patterntype:regexp" '
                     '"(?:\\"bootstrap\\":).*?(?:\\".?4)"'])),
        # Keyword: adjacent patterns are ANDed, quotes group.
        ('foo "bar baz" patterntype:keyword',
         ("keyword", ['"patterntype:keyword" (and "foo" "bar baz")'])),
        # Literal: everything is text.
        ("/a/ patterntype:literal", ("literal", ['"patterntype:literal" "/a/"'])),
        # Aliases, count:all, content:, unknown fields inside patterns.
        ("r:a f:b l:go path:c count:all",
         ("standard", ['"repo:a" "file:b" "lang:go" "file:c" "count:99999999"'])),
        ('entrypoint: ["sh"] file:compose',
         ("standard", ['"file:compose" "entrypoint: [\\"sh\\"]"'])),
        ("content:\"a  b\" repo:x", ("standard", ['"repo:x" "a  b"'])),
        # Or over parameters makes a plan of several queries; rev: moves onto repo:.
        ("(repo:a or repo:b) x", ("standard", ['"repo:a" "x"', '"repo:b" "x"'])),
        ("repo:a rev:dev x", ("standard", ['"repo:a@dev" "x"'])),
    ],
)  # fmt: skip
def test_pipeline(query: str, expected: tuple[str, list[str]]) -> None:
    assert _plan(query) == expected


def test_spec_version_default_and_override() -> None:
    assert search_type_of("foo", SearchType.KEYWORD) is SearchType.KEYWORD
    assert search_type_of("foo patterntype:regex", SearchType.KEYWORD) is SearchType.REGEX
    assert search_type_of("foo PatternType:literal", SearchType.STANDARD) is SearchType.LITERAL


@pytest.mark.parametrize(
    ("name", "canonical", "path"),
    [
        ("go", "Go", "cmd/main.go"),
        ("HCL", "Terraform", "infra/main.tf"),
        ("typescript", "TypeScript", "src/app.ts"),
        ("markdown", "Markdown", "docs/README.md"),
        ("YAML", "YAML", ".github/workflows/ci.yml"),
        ("Dockerfile", "Docker", "build/Dockerfile"),
    ],
)
def test_languages_come_from_pygments(name: str, canonical: str, path: str) -> None:
    language = resolve_language(name)
    assert language.name == canonical
    assert language.matches(path)
    assert not language.matches("notes.txt")


def test_unknown_language_names_it() -> None:
    with pytest.raises(QueryError, match=r'^unknown language: "stephenhas9cats"$'):
        resolve_language("stephenhas9cats")
