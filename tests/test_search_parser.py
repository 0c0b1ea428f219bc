"""Sourcegraph's own parser test cases, ported as data (`tests/fixtures/search_query/
parser_test.json`, from `internal/search/query/parser_test.go`), run against
`executor.sandbox.search` (parser, scanner, tree). Pure and fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from executor.sandbox.search.parser import Heuristics, Parser, parse, parse_grammar
from executor.sandbox.search.scanner import scan_balanced_pattern, scan_delimited, scan_field
from executor.sandbox.search.tree import (
    Labels,
    Node,
    Operator,
    Parameter,
    Pattern,
    QueryError,
    SearchType,
    tree_string,
)

CASES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "search_query" / "parser_test.json").read_text()
)


def _cases(name: str) -> list[Any]:
    cases: list[Any] = CASES[name]["cases"]
    return cases


def _outcome(fn: Any, query: str) -> str:
    try:
        return tree_string(fn(query))
    except QueryError as err:
        return str(err)


def _labels(nodes: list[Node]) -> Labels:
    found = Labels.NONE
    for node in nodes:
        if isinstance(node, Operator):
            found |= _labels(list(node.operands))
        else:
            found |= node.labels
    return found


@pytest.mark.parametrize(("query", "grammar", "heuristic"), _cases("TestParse"))
def test_parse(query: str, grammar: str, heuristic: str) -> None:
    got_grammar = _outcome(parse_grammar, query)
    got_heuristic = _outcome(lambda q: parse(q, SearchType.REGEX), query)
    assert got_grammar == grammar
    assert ("Same" if got_heuristic == got_grammar else got_heuristic) == heuristic


@pytest.mark.parametrize(("query", "expected"), _cases("TestParseAndOrLiteral"))
def test_parse_literal(query: str, expected: str) -> None:
    try:
        nodes = parse(query, SearchType.LITERAL)
    except QueryError as err:
        assert f"ERROR: {err}" == expected
        return
    assert f"{tree_string(nodes)} ({','.join(_labels(nodes).names())})" == expected


@pytest.mark.parametrize(("text", "expected"), _cases("TestScanField"))
def test_scan_field(text: str, expected: list[Any]) -> None:
    assert list(scan_field(text)) == expected


@pytest.mark.parametrize(("text", "delimiter", "value", "error"), _cases("TestScanDelimited"))
def test_scan_delimited(text: str, delimiter: str, value: str, error: str) -> None:
    try:
        got, _ = scan_delimited(text, True, delimiter)
    except QueryError as err:
        assert str(err) == error
        return
    assert (got, error) == (value, "")


@pytest.mark.parametrize(("text", "expected"), _cases("TestScanBalancedPattern"))
def test_scan_balanced_pattern(text: str, expected: str) -> None:
    value, _, ok = scan_balanced_pattern(text)
    assert (value if ok else "ERROR") == expected


@pytest.mark.parametrize(("text", "node", "labels"), _cases("TestParseParameterList"))
def test_parse_leaves(text: str, node: list[Any], labels: str) -> None:
    # The test names parensAsPatterns, which newer parsers split off as balancedPattern.
    heuristics = (
        Heuristics.PARENS_AS_PATTERNS
        | Heuristics.BALANCED_PATTERN
        | Heuristics.ALLOW_DANGLING_PARENS
    )
    parser = Parser(text, heuristics, SearchType.REGEX)
    first = parser.parse_leaves(Labels.Regexp)[0]
    assert isinstance(first, Pattern | Parameter)
    name = first.field if isinstance(first, Parameter) else None
    assert [name, first.value, first.negated] == node
    if isinstance(first, Pattern) or labels:
        assert ",".join(first.labels.names()) == labels


GOLDENS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "search_query" / "parse_goldens.json").read_text()
)
# Labels the golden files' Sourcegraph versions set differently (heuristic bookkeeping, and the
# per-type leaf labels): compared only for the labels that decide how a pattern is searched.
_DECIDING = {"Literal", "Regexp", "Quoted", "Structural"}


def _pretty(node: Node) -> Any:
    if isinstance(node, Operator):
        return {node.kind.value: [_pretty(n) for n in node.operands]}
    assert isinstance(node, Pattern)
    labels = [name for name in node.labels.names() if name in _DECIDING]
    span = {"start": {"line": 0, "column": node.start}, "end": {"line": 0, "column": node.end}}
    return {"value": node.value, "negated": node.negated, "labels": labels, "range": span}


def _deciding(tree: Any) -> Any:
    if isinstance(tree, list):
        return [_deciding(t) for t in tree]
    if "labels" in tree:
        return {**tree, "labels": [name for name in tree["labels"] if name in _DECIDING]}
    return {kind: _deciding(children) for kind, children in tree.items()}


@pytest.mark.parametrize(("name", "kind", "query", "golden"), GOLDENS["cases"])
def test_parse_goldens(name: str, kind: str, query: str, golden: Any) -> None:
    got = [_pretty(n) for n in parse(query, SearchType(kind))]
    assert got == _deciding(golden), name
