"""Static pre-evaluation of `if:` conditions (src-cli `partial_eval.go`).

Owns: `parse_and_partial_eval` and `is_static_bool`, which the server uses to skip steps
whose condition is already decided by what is known before execution: `repository.name`,
`batch_change.name` and `batch_change.description`. Knows nothing of step execution.

Facts (src-cli/sourcegraph `lib/batches/template/partial_eval.go` and its test):
- Only top-level actions are rewritten, all-or-nothing: an action whose pipeline evaluates
  becomes text (its `fmt.Fprint` form); any other action stays as its `{{…}}` node text.
- Evaluable: bool/number/string literals, one-level chains of the three known fields,
  `eq`/`ne` with exactly two static arguments (compared with Go's `==` on interfaces, so
  `eq 5 5.0` is false, not an error), `not` with one, and the Sourcegraph helpers with
  all-static arguments of the right count and types; parentheses nest.
- Declarations abort. Pipeline stages are evaluated independently and the last one wins
  (src-cli's "TODO: Support finalVal").
- The template is static iff only text nodes remain (a comment is not text); it is then
  true iff the trimmed text is exactly `true`.
"""

from __future__ import annotations

from .funcs import BUILTINS
from .gofunc import GoFunc
from .nodes import (
    ActionNode,
    BoolNode,
    ChainNode,
    CommandNode,
    IdentifierNode,
    Node,
    NumberNode,
    PipeNode,
    StringNode,
    TextNode,
)
from .parse import parse
from .printing import format_value
from .sg_funcs import SG_HELPERS
from .step_context import StepContext, context_funcs, go_trim_space
from .template import SG_DELIMS
from .values import StrList, is_list, is_true

__all__ = ["is_static_bool", "parse_and_partial_eval"]


class _Fail(Exception):
    """The node cannot be evaluated ahead of time."""


def _known(ctx: StepContext, chain: ChainNode) -> object:
    if len(chain.field) != 1 or not isinstance(chain.node, IdentifierNode):
        raise _Fail
    key = (chain.node.ident, chain.field[0])
    table = {
        ("repository", "name"): ctx.repository.name,
        ("batch_change", "name"): ctx.batch_change.name,
        ("batch_change", "description"): ctx.batch_change.description,
    }
    if key not in table:
        raise _Fail
    return table[key]


def _eval_node(ctx: StepContext, n: Node) -> object:
    if isinstance(n, BoolNode):
        return n.value
    if isinstance(n, NumberNode):
        hex_int = n.text[:2].lower() == "0x" and not any(c in n.text for c in "pP")
        if n.is_complex:
            return n.complex128
        if (
            n.is_float
            and not hex_int
            and not n.text.startswith("'")
            and any(c in n.text for c in ".eEpP")
        ):
            return n.float64
        if n.is_int:
            return n.int64
        raise _Fail
    if isinstance(n, StringNode):
        return n.text
    if isinstance(n, ChainNode):
        return _known(ctx, n)
    if isinstance(n, PipeNode):
        return _eval_pipe(ctx, n)
    raise _Fail


def _eval_pipe(ctx: StepContext, pipe: PipeNode) -> object:
    if pipe.decl:
        raise _Fail
    value: object = None
    for cmd in pipe.cmds:
        value = _eval_cmd(ctx, cmd)
    return value


def _eval_cmd(ctx: StepContext, cmd: CommandNode) -> object:
    first = cmd.args[0]
    if isinstance(first, BoolNode | NumberNode | StringNode | ChainNode):
        if len(cmd.args) == 1:
            return _eval_node(ctx, first)
        raise _Fail
    if isinstance(first, IdentifierNode):
        return _eval_function(ctx, first.ident, cmd.args[1:])
    raise _Fail


def _go_equal(a: object, b: object) -> bool:
    """Go's `==` on two `interface {}` values: same dynamic type and equal value."""
    if is_list(a) or is_list(b):
        raise _Fail  # comparing slices panics in Go; partial_eval recovers and aborts
    return type(a) is type(b) and a == b


def _assignable(value: object, typ: str) -> bool:
    if typ == "string":
        return isinstance(value, str)
    if typ == "[]string":
        return isinstance(value, StrList)
    return True


def _eval_function(ctx: StepContext, name: str, args: list[Node]) -> object:
    if name in ("eq", "ne"):
        if len(args) != 2:
            raise _Fail
        equal = _go_equal(_eval_node(ctx, args[0]), _eval_node(ctx, args[1]))
        return equal if name == "eq" else not equal
    if name == "not":
        if len(args) != 1:
            raise _Fail
        return not is_true(_eval_node(ctx, args[0]))
    fn: GoFunc | None = SG_HELPERS.get(name)
    if fn is None:
        raise _Fail
    values = [_eval_node(ctx, a) for a in args]
    # reflect.Call panics on a wrong count or type; partial_eval recovers and aborts.
    if len(values) < len(fn.params) or (fn.variadic is None and len(values) != len(fn.params)):
        raise _Fail
    for i, v in enumerate(values):
        typ = fn.params[i] if i < len(fn.params) else fn.variadic
        if typ is None or not _assignable(v, typ):
            raise _Fail
    try:
        return fn.fn(*values)
    except Exception as e:  # a helper error (bad glob) means "not static"
        raise _Fail from e


def _rewrite(ctx: StepContext, source: str) -> list[Node]:
    funcs = dict(BUILTINS)
    funcs.update(SG_HELPERS)
    funcs.update(context_funcs(ctx.to_data()))
    tree = parse("partial-eval", source, SG_DELIMS, frozenset(funcs))
    nodes: list[Node] = []
    for n in tree.root.nodes:
        if isinstance(n, ActionNode):
            try:
                nodes.append(TextNode(n.pos, format_value(_eval_pipe(ctx, n.pipe))))
                continue
            except _Fail:
                pass
        nodes.append(n)
    return nodes


def parse_and_partial_eval(source: str, ctx: StepContext) -> str:
    """Evaluate what can be evaluated; return the tree text (`{{…}}` for the rest)."""
    return "".join(str(n) for n in _rewrite(ctx, source))


def is_static_bool(source: str, ctx: StepContext) -> tuple[bool, bool]:
    """src-cli `IsStaticBool`: (is the condition decided statically, its value)."""
    nodes = _rewrite(ctx, source)
    if not all(isinstance(n, TextNode) for n in nodes):
        return False, False
    return True, go_trim_space("".join(str(n) for n in nodes)) == "true"
