"""Sourcegraph's search query grammar: the scanner, the parser with its heuristics, and the
parse tree.

A port of the parser of `internal/search/query/parser.go` (scanners in `scanner.py`, the
tree in `tree.py`):

    OrTerm     → AndTerm { OR AndTerm }
    AndTerm    → Term { AND Term }
    Term       → (OrTerm) | Parameters
    Parameters → Parameter { " " Parameter }

A parameter is `(-?)field:value` where `field` is a known field name (`fields.go`); any other
`word:` text is part of a pattern (`entrypoint:` in `entrypoint: ["x"]` is a pattern). Values
may be quoted with `"` or `'` (strict escapes); patterns are quoted per search type: in regexp
mode `"..."`/`'...'` are literal and `/.../` regexp; in standard mode `/.../` is regexp and
quotes are part of the pattern; in keyword mode both. Balanced parentheses are patterns, not
groups, unless they hold a field or an operator; an unbalanced query is re-parsed with every
parenthesis taken literally (`allowDanglingParens`), as Sourcegraph does, before giving up with
its own error texts. Explicit parentheses around a group disable the `Hoist` heuristic, as in
the parser version whose `parser_test.go` the fixtures come from.

Pure: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import replace

from executor.sandbox.search.scanner import (
    scan_any_pattern,
    scan_balanced_pattern,
    scan_delimited,
    scan_field,
    scan_predicate,
    scan_value,
)
from executor.sandbox.search.tree import (
    And,
    Concat,
    Labels,
    Node,
    Operator,
    Or,
    Parameter,
    Pattern,
    QueryError,
    SearchType,
    contains_pattern,
    exists,
    hoist,
    new_operator,
)

__all__ = ["Heuristics", "Parser", "parse", "parse_grammar"]


class _ExpectedOperand(QueryError):
    """`ExpectedOperand`: triggers the fallback parser."""


# -- the parser ----------------------------------------------------------------------------


class Heuristics(enum.IntFlag):
    """Parser heuristics (`heuristics` in `parser.go`)."""

    NONE = 0
    PARENS_AS_PATTERNS = enum.auto()
    ALLOW_DANGLING_PARENS = enum.auto()
    DISAMBIGUATED = enum.auto()
    BALANCED_PATTERN = enum.auto()
    EMPTY_PARENS = enum.auto()


_UNCLEAR_PARENS = (
    "unsupported expression. The combination of parentheses in the query have an unclear"
    " meaning. Try using the content: filter to quote patterns that contain parentheses"
)
_UNCLEAR_PARENS_KEYWORD = (
    "unsupported expression. The combination of parentheses in the query has an unclear"
    ' meaning. Use "..." to quote patterns that contain parentheses'
)
_NOT_EXPRESSION = (
    "it looks like you tried to use an expression after NOT. The NOT operator can only be used"
    " with simple search patterns or filters, and is not supported for expressions or"
    " subqueries"
)


class Parser:
    def __init__(self, buf: str, heuristics: Heuristics, leaf: SearchType) -> None:
        self.buf = buf
        self.heuristics = heuristics
        self.pos = 0
        self.balanced = 0
        self.leaf = leaf

    def done(self) -> bool:
        return self.pos >= len(self.buf)

    def match(self, keyword: str) -> bool:
        return self.buf[self.pos : self.pos + len(keyword)].lower() == keyword

    def expect(self, keyword: str) -> bool:
        if not self.match(keyword):
            return False
        self.pos += len(keyword)
        return True

    def match_keyword(self, keyword: str) -> bool:
        """`and`/`or` preceded by space or `)` and followed by space or `(`."""
        pos, buf = self.pos, self.buf
        if pos == 0 or buf[:pos].isspace():
            return False
        if not (buf[pos - 1].isspace() or buf[pos - 1] == ")"):
            return False
        after = pos + len(keyword)
        if after >= len(buf) or not (buf[after].isspace() or buf[after] == "("):
            return False
        return self.match(keyword)

    def match_unary_keyword(self, keyword: str) -> bool:
        pos, buf = self.pos, self.buf
        if pos != 0 and not (buf[pos - 1].isspace() or buf[pos - 1] in "()"):
            return False
        after = pos + len(keyword)
        if after >= len(buf) or not buf[after].isspace():
            return False
        return self.match(keyword)

    def skip_spaces(self) -> None:
        while self.pos < len(self.buf) and self.buf[self.pos].isspace():
            self.pos += 1

    def parse_quoted(self, delimiter: str) -> tuple[str, bool]:
        start = self.pos
        try:
            value, advance = scan_delimited(self.buf[self.pos :], False, delimiter)
        except QueryError:
            return "", False
        self.pos += advance
        if not self.done() and not (self.buf[self.pos].isspace() or self.match(")")):
            self.pos = start
            return "", False
        return value, True

    def parse_string_quotes(self) -> Pattern | None:
        start = self.pos
        for quote in ('"', "'"):
            if self.match(quote):
                value, ok = self.parse_quoted(quote)
                if ok:
                    return Pattern(value, False, Labels.Literal | Labels.Quoted, start, self.pos)
        return None

    def parse_regexp_quotes(self) -> Pattern | None:
        if not self.match("/"):
            return None
        start = self.pos
        value, ok = self.parse_quoted("/")
        if not ok:
            return None
        if value == "":
            return Pattern("//", False, Labels.Literal, start, self.pos)
        return Pattern(value, False, Labels.Regexp, start, self.pos)

    def parse_field_value(self, name: str) -> tuple[str, Labels]:
        for quote in ('"', "'"):
            if self.match(quote):
                value, advance = scan_delimited(self.buf[self.pos :], True, quote)
                self.pos += advance
                return value, Labels.Quoted
        value, advance, ok = scan_predicate(name, self.buf[self.pos :])
        if ok:
            self.pos += advance
            return value, Labels.IsPredicate
        value, advance, ok = scan_balanced_pattern(self.buf[self.pos :])
        if ok:
            self.pos += advance
            return value, Labels.NONE
        value, advance = scan_value(self.buf[self.pos :], False)
        self.pos += advance
        return value, Labels.NONE

    def parse_pattern(self, label: Labels) -> Pattern:
        if label & (Labels.Standard | Labels.Regexp):
            found = self.parse_regexp_quotes()
            if found is not None:
                return found
        if label & (Labels.Regexp | Labels.QuotesAsLiterals):
            found = self.parse_string_quotes()
            if found is not None:
                return found
        if self.heuristics & Heuristics.BALANCED_PATTERN:
            value, advance, ok = scan_balanced_pattern(self.buf[self.pos :])
            if ok:
                pattern = Pattern(value, False, label, self.pos, self.pos + advance)
                self.pos += advance
                return pattern
        start = self.pos
        if label & Labels.Regexp:
            dangling = bool(self.heuristics & Heuristics.ALLOW_DANGLING_PARENS)
            value, advance = scan_value(self.buf[self.pos :], dangling)
        else:
            value, advance = scan_any_pattern(self.buf[self.pos :])
        if self.heuristics & Heuristics.ALLOW_DANGLING_PARENS:
            label |= Labels.HeuristicDanglingParens
        self.pos += advance
        return Pattern(value, False, label, start, self.pos)

    def parse_parameter(self) -> Parameter | None:
        start = self.pos
        name, negated, advance = scan_field(self.buf[self.pos :])
        if not name:
            return None
        self.pos += advance
        value, labels = self.parse_field_value(name)
        return Parameter(name, value, negated, labels, start, self.pos)

    def parse_leaves(self, label: Labels) -> list[Node]:
        nodes: list[Node] = []
        start = self.pos
        dangling = bool(self.heuristics & Heuristics.ALLOW_DANGLING_PARENS)
        while True:
            self.skip_spaces()
            if self.done():
                break
            if self.match("(") and not dangling:
                if self.heuristics & Heuristics.PARENS_AS_PATTERNS:
                    value, advance, ok = scan_balanced_pattern(self.buf[self.pos :])
                    if ok:
                        if label & Labels.Literal:
                            label |= Labels.HeuristicParensAsPatterns
                        nodes.append(Pattern(value, False, label, self.pos, self.pos + advance))
                        self.pos += advance
                        continue
                self.expect("(")
                self.balanced += 1
                self.heuristics |= Heuristics.DISAMBIGUATED
                nodes.extend(self.parse_or())
            elif self.match(")") and not dangling:
                if self.balanced <= 0:
                    if label & Labels.QuotesAsLiterals:
                        raise QueryError(_UNCLEAR_PARENS_KEYWORD)
                    raise QueryError(_UNCLEAR_PARENS)
                self.balanced -= 1
                self.heuristics |= Heuristics.DISAMBIGUATED
                if not nodes:
                    if self.heuristics & Heuristics.EMPTY_PARENS:
                        labels = Labels.Literal | Labels.HeuristicParensAsPatterns
                        nodes = [Pattern("()", False, labels, start, self.pos)]
                    else:
                        nodes = [Parameter("", "")]
                break
            elif self.match_keyword("and") or self.match_keyword("or"):
                break  # the caller advances
            elif self.match_unary_keyword("not"):
                not_start = self.pos
                self.expect("not")
                self.skip_spaces()
                if self.match("("):
                    raise QueryError(_NOT_EXPRESSION)
                try:
                    parameter = self.parse_parameter()
                except QueryError:  # Sourcegraph ignores it and reads a pattern from here
                    parameter = None
                if parameter is not None:
                    if parameter.negated:
                        raise QueryError(
                            f'unexpected NOT before "-{parameter.field}:{parameter.value}".'
                            " Remove NOT and try again"
                        )
                    nodes.append(replace(parameter, negated=True, start=not_start))
                    continue
                pattern = self.parse_pattern(label)
                nodes.append(replace(pattern, negated=True, start=not_start, end=self.pos))
            else:
                parameter = self.parse_parameter()
                nodes.append(parameter if parameter is not None else self.parse_pattern(label))
        return _partition_parameters(nodes)

    def leaf_label(self) -> Labels:
        if self.leaf is SearchType.REGEX:
            return Labels.Regexp
        if self.leaf in (SearchType.LITERAL, SearchType.STRUCTURAL):
            return Labels.Literal
        if self.leaf is SearchType.KEYWORD:
            return Labels.Literal | Labels.Standard | Labels.QuotesAsLiterals
        return Labels.Literal | Labels.Standard

    def parse_and(self) -> list[Node]:
        left = self.parse_leaves(self.leaf_label())
        if not left:
            raise _ExpectedOperand(f"expected operand at {self.pos}")
        if not self.expect("and"):
            return left
        return new_operator([*left, *self.parse_and()], And)

    def parse_or(self) -> list[Node]:
        left = self.parse_and()
        if not left:
            raise _ExpectedOperand(f"expected operand at {self.pos}")
        self.expect(")")
        if not self.expect("or"):
            return left
        return new_operator([*left, *self.parse_or()], Or)


def _partition_parameters(nodes: list[Node]) -> list[Node]:
    patterns: list[Node] = []
    params: list[Node] = []
    for node in nodes:
        if isinstance(node, Pattern) or (isinstance(node, Operator) and contains_pattern(node)):
            patterns.append(node)
        else:
            params.append(node)
    if len(patterns) > 1:
        return new_operator([*params, *new_operator(patterns, Concat)], And)
    return new_operator([*params, *patterns], And)


def _validate_pure_literal_pattern(nodes: Sequence[Node], balanced: bool) -> None:
    def impure(node: Node) -> bool:
        return (
            isinstance(node, Operator)
            and node.kind is Concat
            and any(isinstance(n, Operator) and n.kind in (Or, And) for n in node.operands)
        )

    if exists(nodes, impure):
        if not balanced:
            raise QueryError(
                "this literal search query contains unbalanced parentheses. I tried to guess"
                " what you meant, but wasn't able to. Maybe you missed a parenthesis?"
                " Otherwise, try using the content: filter if the pattern is unbalanced"
            )
        raise QueryError(
            "i'm having trouble understanding that query. The combination of parentheses is"
            " the problem. Try using the content: filter to quote patterns that contain"
            " parentheses"
        )


def _fallback(query: str, leaf: SearchType) -> list[Node]:
    parser = Parser(query, Heuristics.ALLOW_DANGLING_PARENS, leaf)
    nodes = parser.parse_or()
    return new_operator(hoist(nodes) or nodes, And)


def parse(query: str, search_type: SearchType) -> list[Node]:
    """`Parse`: the raw parse tree of `query` (before aliases and pattern joining)."""
    if not query.strip():
        return []
    heuristics = Heuristics.BALANCED_PATTERN | Heuristics.EMPTY_PARENS
    if search_type is not SearchType.KEYWORD:
        heuristics |= Heuristics.PARENS_AS_PATTERNS
    parser = Parser(query, heuristics, search_type)
    try:
        nodes = parser.parse_or()
    except _ExpectedOperand:
        try:
            return _fallback(query, search_type)
        except QueryError:
            pass
        raise
    if parser.balanced != 0:
        try:
            return _fallback(query, search_type)
        except QueryError:
            raise QueryError("unbalanced expression") from None
    if not parser.heuristics & Heuristics.DISAMBIGUATED:
        nodes = hoist(nodes) or nodes
    if search_type in (SearchType.LITERAL, SearchType.STANDARD):
        _validate_pure_literal_pattern(nodes, parser.balanced == 0)
    return new_operator(nodes, And)


def parse_grammar(query: str) -> list[Node]:
    """The grammar alone, without heuristics (`parseAndOrGrammar` in `parser_test.go`)."""
    if not query.strip():
        return []
    parser = Parser(query, Heuristics.NONE, SearchType.REGEX)
    nodes = parser.parse_or()
    if parser.balanced != 0:
        raise QueryError("unbalanced expression: unmatched closing parenthesis )")
    return new_operator(nodes, And)
