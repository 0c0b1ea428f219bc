"""Sourcegraph's search query grammar: the scanner, the parser with its heuristics, and the
parse tree.

A port of `internal/search/query` (`parser.go`, `labels.go`, `fields.go`, the `Hoist`
heuristic of `transformer.go` and the partition helpers of `validate.go`):

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

`Node.go_string()` prints a tree as Sourcegraph's `String()` methods do (Go's `strconv.Quote`),
which is how the ported test fixtures state their expected trees.

Pure: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

__all__ = [
    "ALIASES",
    "ALL_FIELDS",
    "And",
    "Concat",
    "Labels",
    "Node",
    "Operator",
    "OperatorKind",
    "Or",
    "Parameter",
    "Pattern",
    "QueryError",
    "SearchType",
    "go_quote",
    "hoist",
    "is_pattern_expression",
    "new_operator",
    "parse",
    "partition_search_pattern",
    "scan_balanced_pattern",
    "scan_delimited",
    "scan_field",
    "tree_string",
]


class QueryError(ValueError):
    """The query cannot be parsed or validated; the message is Sourcegraph's."""


class _ExpectedOperand(QueryError):
    """`ExpectedOperand`: triggers the fallback parser."""


class SearchType(enum.Enum):
    """`SearchType` in `types.go`, by the `patterntype:` value that selects it."""

    STANDARD = "standard"
    LITERAL = "literal"
    REGEX = "regexp"
    STRUCTURAL = "structural"
    KEYWORD = "keyword"
    LUCKY = "lucky"


class Labels(enum.IntFlag):
    """`labels.go`: annotations on nodes."""

    NONE = 0
    Literal = enum.auto()
    Regexp = enum.auto()
    Quoted = enum.auto()
    HeuristicParensAsPatterns = enum.auto()
    HeuristicDanglingParens = enum.auto()
    HeuristicHoisted = enum.auto()
    Structural = enum.auto()
    IsPredicate = enum.auto()
    IsAlias = enum.auto()
    Standard = enum.auto()
    QuotesAsLiterals = enum.auto()

    def names(self) -> list[str]:
        """Sorted label names, `["None"]` when empty (`labels.String()`)."""
        found = sorted(m.name or "" for m in Labels if m.value and self & m)
        return found or ["None"]


# `fields.go`: every field name the scanner recognises, and the aliases.
ALL_FIELDS = frozenset(
    {
        "case", "repo", "r", "context", "g", "file", "f", "path", "fork", "archived", "lang",
        "l", "language", "type", "patterntype", "content", "visibility", "repohasfile",
        "repohascommitafter", "before", "until", "after", "since", "author", "committer",
        "message", "m", "msg", "index", "count", "timeout", "rule", "rev", "revision",
        "select",
    }
)  # fmt: skip
ALIASES = {
    "r": "repo",
    "f": "file",
    "path": "file",
    "l": "lang",
    "language": "lang",
    "since": "after",
    "until": "before",
    "m": "message",
    "msg": "message",
    "revision": "rev",
}

# `predicate.go`: predicate names per field (`repo:has.file(...)`).
PREDICATES = {
    "repo": frozenset(
        {
            "contains.file", "has.file", "contains.path", "has.path", "contains.content",
            "has.content", "contains.commit.after", "has.commit.after", "has.description",
            "has.tag", "has", "has.key", "has.meta", "has.topic", "dependencies", "deps",
            "dependents", "revdeps",
        }
    ),
    "file": frozenset({"contains.content", "has.content", "has.owner", "has.contributor"}),
}  # fmt: skip


@dataclass(frozen=True)
class Pattern:
    """A search pattern fragment."""

    value: str
    negated: bool = False
    labels: Labels = Labels.NONE
    start: int = 0
    end: int = 0

    def go_string(self) -> str:
        if self.negated:
            return f"(not {go_quote(self.value)})"
        return go_quote(self.value)


@dataclass(frozen=True)
class Parameter:
    """`field:value`, `-field:value` (negated)."""

    field: str
    value: str
    negated: bool = False
    labels: Labels = Labels.NONE
    start: int = 0
    end: int = 0

    def go_string(self) -> str:
        if self.field == "":
            text = self.value
        elif self.negated:
            text = f"-{self.field}:{self.value}"
        else:
            text = f"{self.field}:{self.value}"
        return go_quote(text)


class OperatorKind(enum.Enum):
    OR = "or"
    AND = "and"
    CONCAT = "concat"


Or, And, Concat = OperatorKind.OR, OperatorKind.AND, OperatorKind.CONCAT


@dataclass(frozen=True)
class Operator:
    kind: OperatorKind
    operands: tuple[Node, ...] = field(default_factory=tuple)

    def go_string(self) -> str:
        return f"({self.kind.value} {' '.join(n.go_string() for n in self.operands)})"


Node = Pattern | Parameter | Operator


def tree_string(nodes: Sequence[Node]) -> str:
    """`Q.String()`: top-level nodes joined by spaces."""
    return " ".join(n.go_string() for n in nodes)


def go_quote(text: str) -> str:
    """Go's `strconv.Quote`."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_GO_ESCAPES["\v"] = "\\v"


# -- scanners ------------------------------------------------------------------------------


def scan_field(buf: str) -> tuple[str, bool, int]:
    """`ScanField`: an optional `-`, letters, `:`; only known fields. (field, negated, len)."""
    if not buf or not (buf[0] == "-" or _is_letter(buf[0])):
        return "", False, 0
    i = 1
    while i < len(buf) and _is_letter(buf[i]):
        i += 1
    if i >= len(buf) or buf[i] != ":" or buf[:i] == "-":
        return "", False, 0
    name = buf[:i]
    negated = name.startswith("-")
    if negated:
        name = name[1:]
    if name.lower() not in ALL_FIELDS:
        return "", False, 0
    return name, negated, i + 1


def _is_letter(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def scan_any_pattern(buf: str) -> tuple[str, int]:
    """`ScanAnyPattern`: everything up to whitespace."""
    i = 0
    while i < len(buf) and not buf[i].isspace():
        i += 1
    return buf[:i], i


def scan_value(buf: str, allow_dangling_parens: bool) -> tuple[str, int]:
    """`ScanValue`: up to whitespace or (unless allowed) a parenthesis; keeps `\\x` escapes."""
    out: list[str] = []
    i = 0
    while i < len(buf):
        ch = buf[i]
        if ch.isspace():
            break
        if ch in "()":
            if allow_dangling_parens:
                out.append(ch)
                i += 1
                continue
            break
        if ch == "\\" and i + 1 < len(buf):
            out.append(buf[i : i + 2])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out), i


def _keep_scanning(rest: str) -> bool:
    if scan_field(rest)[0]:
        return False
    head = rest[:4].lower()
    return not (head.startswith("and ") or head.startswith("or ") or head.startswith("not "))


def scan_balanced_pattern(buf: str) -> tuple[str, int, bool]:
    """`ScanBalancedPattern`: a pattern whose parentheses balance and hold no field or
    operator, e.g. `myFunction(arg1, arg2)`."""
    if not _keep_scanning(buf):
        return "", 0, False
    out: list[str] = []
    balanced = 0
    i = 0
    while i < len(buf):
        ch = buf[i]
        if ch.isspace() and balanced == 0:
            break
        i += 1
        if ch == "(":
            if not _keep_scanning(buf[i:]):
                return "", 0, False
            balanced += 1
            out.append(ch)
        elif ch == ")":
            balanced -= 1
            if balanced < 0:
                i -= 1
                balanced = 0
                break
            out.append(ch)
        elif ch.isspace():
            if not _keep_scanning(buf[i:]):
                return "", 0, False
            out.append(ch)
        elif ch == "\\":
            if i < len(buf):
                out.append("\\" + buf[i])
                i += 1
                continue
            out.append(ch)
        else:
            out.append(ch)
    return "".join(out), i, balanced == 0


def scan_delimited(buf: str, strict: bool, delimiter: str) -> tuple[str, int]:
    """`ScanDelimited`: a value in `delimiter`s with escapes; raises QueryError."""
    assert buf[:1] == delimiter, "scan_delimited expects the buffer to start with the delimiter"
    out: list[str] = []
    i = 1
    closed = False
    while i < len(buf):
        ch = buf[i]
        i += 1
        if ch == delimiter:
            closed = True
            break
        if ch != "\\":
            out.append(ch)
            continue
        if i >= len(buf):
            raise QueryError("unterminated escape sequence")
        ch = buf[i]
        i += 1
        if ch in "abfv":
            out.append("\\" + ch)
        elif ch in _DELIMITED_ESCAPES:
            out.append(_DELIMITED_ESCAPES[ch])
        elif ch in ("\\", delimiter):
            out.append(ch)
        elif strict:
            raise QueryError("unrecognized escape sequence")
        else:
            out.append("\\" + ch)
        if i >= len(buf):
            raise QueryError(f"unterminated literal: expected {delimiter}")
    if not closed:
        raise QueryError(f"unterminated literal: expected {delimiter}")
    return "".join(out), i


_DELIMITED_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def _scan_balanced_parens(buf: str) -> tuple[str, int, bool]:
    balance = 1
    i = 1
    while balance:
        if i >= len(buf):
            return "", 0, False
        ch = buf[i]
        i += 1
        if ch == "(":
            balance += 1
        elif ch == ")":
            balance -= 1
        elif ch == "\\":
            i += 1
    return buf[:i], i, True


def scan_predicate(name: str, buf: str) -> tuple[str, int, bool]:
    """`ScanPredicate`: `has.file(...)` after a field with registered predicates."""
    table = PREDICATES.get(ALIASES.get(name, name))
    if table is None:
        return "", 0, False
    i = 0
    while i < len(buf) and (buf[i].isalpha() or buf[i] == "."):
        i += 1
    predicate = buf[:i]
    if predicate not in table or buf[i : i + 1] != "(":
        return "", 0, False
    params, advance, ok = _scan_balanced_parens(buf[i:])
    if not ok:
        return "", 0, False
    return predicate + params, i + advance, True


# -- the parser ----------------------------------------------------------------------------


class _H(enum.IntFlag):
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


class _Parser:
    def __init__(self, buf: str, heuristics: _H, leaf: SearchType) -> None:
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
        if self.heuristics & _H.BALANCED_PATTERN:
            value, advance, ok = scan_balanced_pattern(self.buf[self.pos :])
            if ok:
                pattern = Pattern(value, False, label, self.pos, self.pos + advance)
                self.pos += advance
                return pattern
        start = self.pos
        if label & Labels.Regexp:
            dangling = bool(self.heuristics & _H.ALLOW_DANGLING_PARENS)
            value, advance = scan_value(self.buf[self.pos :], dangling)
        else:
            value, advance = scan_any_pattern(self.buf[self.pos :])
        if self.heuristics & _H.ALLOW_DANGLING_PARENS:
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
        dangling = bool(self.heuristics & _H.ALLOW_DANGLING_PARENS)
        while True:
            self.skip_spaces()
            if self.done():
                break
            if self.match("(") and not dangling:
                if self.heuristics & _H.PARENS_AS_PATTERNS:
                    value, advance, ok = scan_balanced_pattern(self.buf[self.pos :])
                    if ok:
                        if label & Labels.Literal:
                            label |= Labels.HeuristicParensAsPatterns
                        nodes.append(Pattern(value, False, label, self.pos, self.pos + advance))
                        self.pos += advance
                        continue
                self.expect("(")
                self.balanced += 1
                self.heuristics |= _H.DISAMBIGUATED
                nodes.extend(self.parse_or())
            elif self.match(")") and not dangling:
                if self.balanced <= 0:
                    if label & Labels.QuotesAsLiterals:
                        raise QueryError(_UNCLEAR_PARENS_KEYWORD)
                    raise QueryError(_UNCLEAR_PARENS)
                self.balanced -= 1
                self.heuristics |= _H.DISAMBIGUATED
                if not nodes:
                    if self.heuristics & _H.EMPTY_PARENS:
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
        if isinstance(node, Pattern) or (isinstance(node, Operator) and _contains_pattern(node)):
            patterns.append(node)
        else:
            params.append(node)
    if len(patterns) > 1:
        return new_operator([*params, *new_operator(patterns, Concat)], And)
    return new_operator([*params, *patterns], And)


def _reduce(left: list[Node], right: list[Node], kind: OperatorKind) -> tuple[list[Node], bool]:
    first = left[0]
    if isinstance(first, Parameter) and first.value == "":
        return right, True
    term = right[0]
    if isinstance(term, Operator):
        if term.kind is kind:
            return [*left, *term.operands, *right[1:]], True
    elif term.value == "":
        return [*left, *right[1:]], True
    elif isinstance(first, Operator) and first.kind is kind:
        return [*first.operands, *right], True
    if len(right) > 1:
        reduced, changed = _reduce([right[0]], right[1:], kind)
        if changed:
            return [*left, *reduced], True
    return [*left, *right], False


def new_operator(nodes: Sequence[Node], kind: OperatorKind) -> list[Node]:
    """`NewOperator`: an operator over `nodes`, flattened and with empty nodes removed."""
    if not nodes:
        return []
    if len(nodes) == 1:
        return [nodes[0]]
    reduced, changed = _reduce([nodes[0]], list(nodes[1:]), kind)
    if changed:
        return new_operator(reduced, kind)
    return [Operator(kind, tuple(reduced))]


# -- tree helpers (validate.go, transformer.go) -------------------------------------------


def _exists(nodes: Sequence[Node], predicate: Callable[[Node], bool]) -> bool:
    for node in nodes:
        if predicate(node):
            return True
        if isinstance(node, Operator) and _exists(node.operands, predicate):
            return True
    return False


def _contains_pattern(node: Node) -> bool:
    return _exists([node], lambda n: isinstance(n, Pattern))


def is_pattern_expression(nodes: Sequence[Node]) -> bool:
    """Every leaf is a pattern (`isPatternExpression`)."""
    return not _exists(nodes, lambda n: isinstance(n, Parameter))


_UNPARTITIONABLE = "cannot evaluate: unable to partition pure search pattern"


def partition_search_pattern(nodes: Sequence[Node]) -> tuple[list[Parameter], Node | None]:
    """`PartitionSearchPattern`: (scope parameters, the one pattern expression)."""
    nodes = list(nodes)
    if len(nodes) == 1 and isinstance(nodes[0], Operator):
        term = nodes[0]
        if term.kind is And and not is_pattern_expression([term]):
            nodes = list(term.operands)
        elif term.kind is Or and not is_pattern_expression([term]):
            raise QueryError(_UNPARTITIONABLE)
    patterns: list[Node] = []
    parameters: list[Parameter] = []
    for node in nodes:
        if is_pattern_expression([node]):
            patterns.append(node)
        elif isinstance(node, Parameter):
            parameters.append(node)
        else:
            raise QueryError(_UNPARTITIONABLE)
    if len(patterns) > 1:
        return parameters, Operator(And, tuple(patterns))
    return parameters, (patterns[0] if patterns else None)


def _leaves(node: Node) -> list[Pattern | Parameter]:
    if isinstance(node, Operator):
        return [leaf for child in node.operands for leaf in _leaves(child)]
    return [node]


def _naturally_ordered(node: Node, reverse: bool) -> bool:
    params = [leaf.start for leaf in _leaves(node) if isinstance(leaf, Parameter)]
    patterns = [leaf.start for leaf in _leaves(node) if isinstance(leaf, Pattern)]
    if reverse:
        return min(params, default=1 << 30) > max(patterns, default=0)
    return max(params, default=0) < min(patterns, default=1 << 30)


def _map_patterns(node: Node, fn: Callable[[Pattern], Node]) -> Node:
    if isinstance(node, Pattern):
        return fn(node)
    if isinstance(node, Operator):
        return Operator(node.kind, tuple(_map_patterns(n, fn) for n in node.operands))
    return node


def hoist(nodes: Sequence[Node]) -> list[Node] | None:
    """`Hoist`: `repo:foo a or b` → `repo:foo (a or b)`; None where it does not apply."""
    if len(nodes) != 1 or not isinstance(nodes[0], Operator) or nodes[0].kind is Concat:
        return None
    expression = nodes[0]
    last = len(expression.operands) - 1
    pattern: list[Node] = []
    scope: list[Parameter] = []
    for i, node in enumerate(expression.operands):
        if i in (0, last):
            try:
                scope_part, pattern_part = partition_search_pattern([node])
            except QueryError:
                return None
            if pattern_part is None or not _naturally_ordered(node, i == last and i != 0):
                return None
            pattern.append(pattern_part)
            scope.extend(scope_part)
            continue
        if not is_pattern_expression([node]):
            return None
        pattern.append(node)

    def hoisted(p: Pattern) -> Node:
        return replace(p, labels=p.labels | Labels.HeuristicHoisted)

    marked = [_map_patterns(p, hoisted) for p in pattern]
    return [*scope, *new_operator(marked, expression.kind)]


def _validate_pure_literal_pattern(nodes: Sequence[Node], balanced: bool) -> None:
    def impure(node: Node) -> bool:
        return (
            isinstance(node, Operator)
            and node.kind is Concat
            and any(isinstance(n, Operator) and n.kind in (Or, And) for n in node.operands)
        )

    if _exists(nodes, impure):
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
    parser = _Parser(query, _H.ALLOW_DANGLING_PARENS, leaf)
    nodes = parser.parse_or()
    return new_operator(hoist(nodes) or nodes, And)


def parse(query: str, search_type: SearchType) -> list[Node]:
    """`Parse`: the raw parse tree of `query` (before aliases and pattern joining)."""
    if not query.strip():
        return []
    heuristics = _H.BALANCED_PATTERN | _H.EMPTY_PARENS
    if search_type is not SearchType.KEYWORD:
        heuristics |= _H.PARENS_AS_PATTERNS
    parser = _Parser(query, heuristics, search_type)
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
    if not parser.heuristics & _H.DISAMBIGUATED:
        nodes = hoist(nodes) or nodes
    if search_type in (SearchType.LITERAL, SearchType.STANDARD):
        _validate_pure_literal_pattern(nodes, parser.balanced == 0)
    return new_operator(nodes, And)


def parse_grammar(query: str) -> list[Node]:
    """The grammar alone, without heuristics (`parseAndOrGrammar` in `parser_test.go`)."""
    if not query.strip():
        return []
    parser = _Parser(query, _H.NONE, SearchType.REGEX)
    nodes = parser.parse_or()
    if parser.balanced != 0:
        raise QueryError("unbalanced expression: unmatched closing parenthesis )")
    return new_operator(nodes, And)
