"""From a query string to a validated plan: Sourcegraph's query pipeline after parsing.

Ports, from `internal/search/query`: `query.go` (`Init`, `For`, `Pipeline`), the normalizing
passes of `transformer.go` (`LowercaseFieldNames`, `SubstituteAliases`, `SubstituteCountAll`,
`substituteConcat` with `space`, `standard` and `fuzzyRegexp`, `escapeParensHeuristic`,
`BuildPlan`, `ConcatRevFilters`), then `validate.py` on each query of the plan; and the
search-type
choice of `internal/search/client/client.go` (`overrideSearchType`: a `patterntype:` in the
query wins over the default).

Keyword search (`patterntype:keyword`) ANDs adjacent patterns instead of joining them, as
Sourcegraph's keyword mode does. `patterntype:structural` needs comby: refused with one line.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from executor.sandbox.search.parser import parse
from executor.sandbox.search.scanner import ALIASES
from executor.sandbox.search.tree import (
    And,
    Basic,
    Concat,
    Labels,
    Node,
    Operator,
    Or,
    Parameter,
    Pattern,
    QueryError,
    SearchType,
    is_pattern_expression,
    new_operator,
)
from executor.sandbox.search.validate import validate

__all__ = ["STRUCTURAL_UNAVAILABLE", "plan_query", "search_type_of"]

STRUCTURAL_UNAVAILABLE = (
    "patterntype:structural needs comby, which the sandbox does not have; use"
    " patterntype:regexp or a literal pattern"
)

_TYPES = {t.value: t for t in SearchType} | {"regex": SearchType.REGEX}


def search_type_of(query: str, default: SearchType) -> SearchType:
    """`overrideSearchType`: the last `patterntype:` of the query, else `default`."""
    try:
        nodes = parse(query, SearchType.LITERAL)
    except QueryError:
        return default  # the real parse reports the error
    found = default
    for param in _parameters(nodes):
        if param.field.lower() == "patterntype" and param.value in _TYPES:
            found = _TYPES[param.value]
    return found


def _parameters(nodes: Sequence[Node]) -> list[Parameter]:
    out: list[Parameter] = []
    for node in nodes:
        if isinstance(node, Parameter):
            out.append(node)
        elif isinstance(node, Operator):
            out.extend(_parameters(node.operands))
    return out


def _map(nodes: Sequence[Node], fn: Callable[[Node], Node | None]) -> list[Node]:
    """Apply `fn` to every leaf; None removes it; operators are rebuilt (`MapParameter`)."""
    out: list[Node] = []
    for node in nodes:
        if isinstance(node, Operator):
            out.extend(new_operator(_map(node.operands, fn), node.kind))
        else:
            mapped = fn(node)
            if mapped is not None:
                out.append(mapped)
    return out


def _normalize(search_type: SearchType) -> Callable[[Node], Node | None]:
    def normalize(node: Node) -> Node | None:
        if not isinstance(node, Parameter):
            return node
        name = node.field.lower()
        if name == "content":
            kind = Labels.Regexp if search_type is SearchType.REGEX else Labels.Literal
            labels = node.labels | kind | Labels.IsAlias
            return Pattern(node.value, node.negated, labels, node.start, node.end)
        labels = node.labels
        if name in ALIASES:
            name, labels = ALIASES[name], labels | Labels.IsAlias
        value = node.value
        if name == "count" and value.lower() == "all":
            value = "99999999"
        return replace(node, field=name, value=value, labels=labels)

    return normalize


def _space(patterns: list[Pattern]) -> list[Node]:
    if len(patterns) == 1:
        return [patterns[0]]
    return [Pattern(" ".join(p.value for p in patterns), False, patterns[0].labels)]


def _standard(patterns: list[Pattern]) -> list[Node]:
    """Adjacent literals join with spaces; regexp patterns stand alone (ANDed)."""
    out: list[Node] = []
    literals: list[Pattern] = []
    for pattern in patterns:
        if pattern.labels & Labels.Regexp:
            if literals:
                out.extend(_space(literals))
            out.append(pattern)
            literals = []
        else:
            literals.append(pattern)
    if literals:
        out.extend(_space(literals))
    return out


def _fuzzy_regexp(patterns: list[Pattern]) -> list[Node]:
    if len(patterns) == 1:
        return [patterns[0]]
    values = [re.escape(p.value) if p.labels & Labels.Literal else p.value for p in patterns]
    return [Pattern("(?:" + ").*?(?:".join(values) + ")", False, Labels.Regexp)]


def _substitute_concat(
    nodes: Sequence[Node], join: Callable[[list[Pattern]], list[Node]]
) -> list[Node]:
    """`substituteConcat`: join runs of non-negated patterns under each concat."""
    out: list[Node] = []
    for node in nodes:
        if not isinstance(node, Operator):
            out.append(node)
        elif node.kind is not Concat:
            out.extend(new_operator(_substitute_concat(node.operands, join), node.kind))
        else:
            run: list[Pattern] = []
            for child in node.operands:
                if isinstance(child, Pattern) and not child.negated:
                    run.append(child)
                    continue
                if run:
                    out.extend(join(run))
                    run = []
                out.extend(_substitute_concat([child], join))
            if run:
                out.extend(join(run))
    return out


def _concat_to_and(nodes: Sequence[Node]) -> list[Node]:
    out: list[Node] = []
    for node in nodes:
        if isinstance(node, Operator):
            kind = And if node.kind is Concat else node.kind
            out.extend(new_operator(_concat_to_and(node.operands), kind))
        else:
            out.append(node)
    return out


def _escape_parens(value: str) -> str:
    """`escapeParens`: `()` → `\\(\\)`, a trailing unescaped `(` → `\\(`."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            out.append(value[i : i + 2])
            i += 2
        elif ch == "(" and i + 1 == len(value):
            out.append("\\(")
            i += 1
        elif value.startswith("()", i):
            out.append("\\(\\)")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _process(nodes: list[Node], search_type: SearchType) -> list[Node]:
    """`For(searchType)`."""
    nodes = _map(nodes, _normalize(search_type))
    if search_type is SearchType.REGEX:

        def escape(node: Node) -> Node:
            if isinstance(node, Pattern) and not node.labels & Labels.Quoted:
                return replace(node, value=_escape_parens(node.value))
            return node

        return _substitute_concat(_map(nodes, escape), _fuzzy_regexp)
    if search_type is SearchType.KEYWORD:
        return _concat_to_and(nodes)
    if search_type is SearchType.LITERAL:
        return _substitute_concat(nodes, _space)
    return _substitute_concat(nodes, _standard)


def _product(basics: list[Basic], extra: Basic) -> list[Basic]:
    if not basics:
        return [extra]
    out = []
    for basic in basics:
        if basic.pattern is None or extra.pattern is None:
            pattern = basic.pattern or extra.pattern
        else:
            pattern = new_operator([basic.pattern, extra.pattern], And)[0]
        out.append(Basic(basic.parameters + extra.parameters, pattern))
    return out


def _distribute(prefixes: list[Basic], nodes: Sequence[Node]) -> list[Basic]:
    """`distribute`/`BuildPlan`: or-expressions over parameters become separate queries."""
    for node in nodes:
        if isinstance(node, Operator):
            if is_pattern_expression(node.operands):
                prefixes = _product(prefixes, Basic((), node))
            elif node.kind is Or:
                result: list[Basic] = []
                for operand in node.operands:
                    for basic in _distribute([], [operand]):
                        result.extend(_product(prefixes, basic))
                prefixes = result
            else:
                prefixes = _distribute(prefixes, node.operands)
        elif isinstance(node, Parameter):
            prefixes = _product(prefixes, Basic((node,), None))
        else:
            prefixes = _product(prefixes, Basic((), node))
    return prefixes


def _concat_rev(basic: Basic) -> Basic:
    """`ConcatRevFilters`: `rev:R` becomes `@R` on every non-negated `repo:`."""
    revs = basic.values("rev")
    if not revs:
        return basic
    rev = revs[-1].value
    params = tuple(
        replace(p, value=f"{p.value}@{rev}") if p.field == "repo" and not p.negated else p
        for p in basic.parameters
        if p.field != "rev"
    )
    return Basic(params, basic.pattern)


def plan_query(
    query: str, default: SearchType = SearchType.STANDARD
) -> tuple[SearchType, list[Basic]]:
    """`Pipeline(Init(query, searchType))`: the search type and the validated plan."""
    search_type = search_type_of(query, default)
    if search_type is SearchType.STRUCTURAL:
        raise QueryError(STRUCTURAL_UNAVAILABLE)
    if search_type is SearchType.LUCKY:
        search_type = SearchType.STANDARD
    nodes = _process(parse(query, search_type), search_type)
    plan = _distribute([], nodes)
    for basic in plan:
        validate(basic)
    return search_type, [_concat_rev(b) for b in plan]
