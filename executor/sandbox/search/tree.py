"""The parse tree of Sourcegraph's search queries: nodes, labels, search types, and the
tree operations the parser and the pipeline share.

Ports `internal/search/query`: `parser.go` (`Pattern`, `Parameter`, `Operator` and their
`String()` forms, `NewOperator` with its reductions), `labels.go`, `types.go` (`SearchType`),
`validate.go` (`isPatternExpression`, `PartitionSearchPattern`) and `transformer.go`
(`Hoist`: `repo:foo a or b` → `repo:foo (a or b)`) and `Basic`, one query of a plan.

`Node.go_string()` prints a tree as Sourcegraph's `String()` methods do (Go's
`strconv.Quote`), which is how the ported test fixtures state their expected trees.

Pure: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

__all__ = [
    "And",
    "Basic",
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
    "contains_pattern",
    "exists",
    "go_quote",
    "hoist",
    "is_pattern_expression",
    "new_operator",
    "partition_search_pattern",
    "tree_string",
]


class QueryError(ValueError):
    """The query cannot be parsed or validated; the message is Sourcegraph's."""


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


def exists(nodes: Sequence[Node], predicate: Callable[[Node], bool]) -> bool:
    for node in nodes:
        if predicate(node):
            return True
        if isinstance(node, Operator) and exists(node.operands, predicate):
            return True
    return False


def contains_pattern(node: Node) -> bool:
    return exists([node], lambda n: isinstance(n, Pattern))


def is_pattern_expression(nodes: Sequence[Node]) -> bool:
    """Every leaf is a pattern (`isPatternExpression`)."""
    return not exists(nodes, lambda n: isinstance(n, Parameter))


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


@dataclass(frozen=True)
class Basic:
    """One disjunct of a plan: scope parameters and at most one pattern expression."""

    parameters: tuple[Parameter, ...]
    pattern: Node | None

    def values(self, name: str) -> list[Parameter]:
        return [p for p in self.parameters if p.field == name]
