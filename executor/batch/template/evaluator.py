"""Expression evaluation for the template executor: pipelines, commands, fields, calls.

Owns: Go's `evalPipeline`/`evalCommand`/`evalField*`/`evalCall`/`evalArg`/`validateType`,
variables, and the execution-error format
`template: NAME:LINE:COL: executing "NAME" at <NODE>: MESSAGE`. Knows nothing of control
structures, which `exec.py` walks on top of this class.

Facts (Go `text/template/exec.go`):
- The node named in an error is the last one the evaluator "was at": for a missing key reached
  through a function chain (`outputs.x`) that is the identifier; for `.a.b` it is the field
  node, whose position is that of its second segment.
- A pipeline passes each command's value as the *last* argument of the next command, and
  unboxes `interface {}` values after every command.
- A present map key holding nil is not an error: it yields a boxed nil, which prints
  `<no value>` at top level and is falsy. `and`/`or` short-circuit and return the deciding
  value itself.
- Arguments are converted to the parameter type: literals by kind (`expected string; found
  1`), computed values by assignability (`wrong type for value; expected []string; got
  []interface {}`); an invalid value becomes the zero value of a nillable type.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import TemplateError
from .gofunc import ANY, NILLABLE, VALUE, CallError, GoFunc
from .nodes import (
    BoolNode,
    ChainNode,
    CommandNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    StringNode,
    VariableNode,
    error_context,
)
from .parse import Tree
from .values import NO_VALUE, Boxed, GoStruct, StrList, is_true, type_name, unbox

__all__ = ["MISSING", "Evaluator"]


class Missing:
    """Go's `missingVal`: no piped-in final argument."""


MISSING = Missing()


def _zero(typ: str) -> object:
    return {ANY: None, VALUE: NO_VALUE, "[]string": StrList()}.get(typ, {})


def _assignable(value: object, typ: str) -> bool:
    if typ == "string":
        return isinstance(value, str)
    if typ == "[]string":
        return isinstance(value, StrList)
    if typ == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if typ == "bool":
        return isinstance(value, bool)
    if typ == "float64":
        return isinstance(value, float)
    if typ == "map[string]interface {}":
        return isinstance(value, Mapping)
    return True


class Evaluator:
    """Evaluates expressions of one template tree; `exec._State` adds the walking."""

    def __init__(self, tree: Tree, funcs: Mapping[str, GoFunc], missingkey: str) -> None:
        self.tree = tree
        self.name = tree.name
        self.funcs = funcs
        self.missingkey = missingkey
        self.out: list[str] = []
        self.vars: list[tuple[str, object]] = []
        self.node: Node | None = None
        self.depth = 0

    # -- errors and variables ------------------------------------------------------------
    def at(self, node: Node) -> None:
        self.node = node

    def errorf(self, msg: str) -> TemplateError:
        if self.node is None:
            raise TemplateError(f"template: {self.name}: {msg}")
        line, col, ctx = error_context(self.tree.text, self.node)
        raise TemplateError(
            f'template: {self.tree.name}:{line}:{col}: executing "{self.name}" at <{ctx}>: {msg}'
        )

    def var_value(self, name: str) -> object:
        for n, v in reversed(self.vars):
            if n == name:
                return v
        raise self.errorf(f"undefined variable: {name}")

    def set_var(self, name: str, value: object) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.errorf(f"undefined variable: {name}")

    def set_top_var(self, n: int, value: object) -> None:
        self.vars[-n] = (self.vars[-n][0], value)

    # -- pipelines and commands ----------------------------------------------------------
    def eval_pipeline(self, dot: object, pipe: PipeNode) -> object:
        self.at(pipe)
        value: object = MISSING
        for cmd in pipe.cmds:
            value = unbox(self.eval_command(dot, cmd, value))
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.ident[0], value)
            else:
                self.vars.append((var.ident[0], value))
        return value

    def not_a_function(self, args: list[Node] | None, final: object) -> None:
        if (args is not None and len(args) > 1) or final is not MISSING:
            assert args is not None
            raise self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: object, cmd: CommandNode, final: object) -> object:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain_node(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            raise self.errorf("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        raise self.errorf(f"can't evaluate command {first}")

    def ideal_constant(self, n: NumberNode) -> object:
        self.at(n)
        text = n.text
        hex_int = text[:2].lower() == "0x" and not any(c in text for c in "pP")
        if n.is_complex:
            return n.complex128
        if (
            n.is_float
            and not hex_int
            and not text.startswith("'")
            and any(c in text for c in ".eEpP")
        ):
            return n.float64
        if n.is_int:
            return n.int64
        if n.is_uint:
            raise self.errorf(f"{text} overflows int")
        return NO_VALUE

    # -- fields, chains, variables -------------------------------------------------------
    def eval_field_node(
        self, dot: object, field: FieldNode, args: list[Node] | None, final: object
    ) -> object:
        self.at(field)
        return self.eval_field_chain(dot, dot, field.ident, args, final)

    def eval_chain_node(
        self, dot: object, chain: ChainNode, args: list[Node] | None, final: object
    ) -> object:
        self.at(chain)
        if isinstance(chain.node, NilNode):
            raise self.errorf(f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(dot, pipe, chain.field, args, final)

    def eval_variable_node(
        self, dot: object, var: VariableNode, args: list[Node] | None, final: object
    ) -> object:
        self.at(var)
        value = self.var_value(var.ident[0])
        if len(var.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var.ident[1:], args, final)

    def eval_field_chain(
        self,
        dot: object,
        receiver: object,
        idents: list[str],
        args: list[Node] | None,
        final: object,
    ) -> object:
        for ident in idents[:-1]:
            receiver = self.eval_field(ident, None, MISSING, receiver)
        return self.eval_field(idents[-1], args, final, receiver)

    def eval_field(
        self, name: str, args: list[Node] | None, final: object, receiver: object
    ) -> object:
        if receiver is NO_VALUE:
            if self.missingkey == "error":
                raise self.errorf(f'nil data; no entry for key "{name}"')
            return NO_VALUE
        typ = type_name(receiver)
        inner = receiver.value if isinstance(receiver, Boxed) else receiver
        if inner is None:
            raise self.errorf(f"nil pointer evaluating {typ}.{name}")
        has_args = (args is not None and len(args) > 1) or final is not MISSING
        if isinstance(inner, GoStruct) and name in inner.fields:
            if has_args:
                raise self.errorf(f"{name} has arguments but cannot be invoked as function")
            return inner.fields[name]
        if isinstance(inner, Mapping):
            if has_args:
                raise self.errorf(f"{name} is not a method but has arguments")
            if name in inner:
                return Boxed(inner[name])
            if self.missingkey == "error":
                raise self.errorf(f'map has no entry for key "{name}"')
            return Boxed(None) if self.missingkey == "zero" else NO_VALUE
        raise self.errorf(f"can't evaluate field {name} in type {typ}")

    # -- calls ---------------------------------------------------------------------------
    def eval_function(
        self,
        dot: object,
        node: IdentifierNode,
        cmd: Node,
        args: list[Node] | None,
        final: object,
    ) -> object:
        self.at(node)
        fn = self.funcs.get(node.ident)
        if fn is None:
            raise self.errorf(f'"{node.ident}" is not a defined function')
        return self.eval_call(dot, fn, node.ident, cmd, args, final)

    def eval_call(
        self,
        dot: object,
        fn: GoFunc,
        name: str,
        node: Node,
        all_args: list[Node] | None,
        final: object,
    ) -> object:
        args = all_args[1:] if all_args is not None else []
        num_in = len(args) + (0 if final is MISSING else 1)
        num_fixed = len(fn.params)
        if fn.variadic is not None:
            if num_in < num_fixed:
                raise self.errorf(
                    f"wrong number of args for {name}: want at least {num_fixed} got {len(args)}"
                )
        elif num_in != num_fixed:
            raise self.errorf(f"wrong number of args for {name}: want {num_fixed} got {num_in}")
        if fn.builtin and name in ("and", "or"):
            v: object = NO_VALUE
            for a in args:
                v = self.eval_arg(dot, VALUE, a)
                if is_true(v) == (name == "or"):
                    return v
            if final is not MISSING:
                v = self.validate_type(final, VALUE)
            return v
        argv: list[object] = []
        for i, a in enumerate(args):
            typ = fn.params[i] if i < num_fixed else fn.variadic
            assert typ is not None
            argv.append(self.eval_arg(dot, typ, a))
        if final is not MISSING:
            last = fn.params[num_in - 1] if num_in - 1 < num_fixed else fn.variadic
            assert last is not None
            argv.append(self.validate_type(final, last))
        if fn.builtin and name == "call" and all_args is not None and len(all_args) > 1:
            argv.insert(0, str(all_args[1]))
        try:
            return fn.fn(*argv)
        except TemplateError:
            raise
        except (CallError, RecursionError) as e:
            self.at(node)
            raise self.errorf(f"error calling {name}: {e}") from None
        except Exception as e:  # a user function failed: Go's safeCall recovers panics too
            self.at(node)
            raise self.errorf(f"error calling {name}: {e}") from e

    def eval_arg(self, dot: object, typ: str | None, n: Node) -> object:
        self.at(n)
        if isinstance(n, DotNode):
            return self.validate_type(dot, typ)
        if isinstance(n, NilNode):
            if typ is None or typ in NILLABLE:
                return NO_VALUE if typ in (None, VALUE) else _zero(typ)
            raise self.errorf(f"cannot assign nil to {typ}")
        if isinstance(n, FieldNode):
            return self.validate_type(self.eval_field_node(dot, n, [n], MISSING), typ)
        if isinstance(n, VariableNode):
            return self.validate_type(self.eval_variable_node(dot, n, None, MISSING), typ)
        if isinstance(n, PipeNode):
            return self.validate_type(self.eval_pipeline(dot, n), typ)
        if isinstance(n, IdentifierNode):
            return self.validate_type(self.eval_function(dot, n, n, None, MISSING), typ)
        if isinstance(n, ChainNode):
            return self.validate_type(self.eval_chain_node(dot, n, None, MISSING), typ)
        return self.eval_literal_arg(typ, n)

    def eval_literal_arg(self, typ: str | None, n: Node) -> object:
        if typ == "bool":
            if isinstance(n, BoolNode):
                return n.value
            raise self.errorf(f"expected bool; found {n}")
        if typ == "int":
            if isinstance(n, NumberNode) and n.is_int:
                return n.int64
            raise self.errorf(f"expected integer; found {n}")
        if typ == "float64":
            if isinstance(n, NumberNode) and n.is_float:
                return n.float64
            raise self.errorf(f"expected float; found {n}")
        if typ == "string":
            if isinstance(n, StringNode):
                return n.text
            raise self.errorf(f"expected string; found {n}")
        if typ in (ANY, VALUE):
            if isinstance(n, BoolNode):
                return n.value
            if isinstance(n, NumberNode):
                return self.ideal_constant(n)
            if isinstance(n, StringNode):
                return n.text
        raise self.errorf(f"can't handle {n} for arg of type {typ}")

    def validate_type(self, value: object, typ: str | None) -> object:
        if value is NO_VALUE or value is MISSING:
            if typ is None or typ == VALUE:
                return NO_VALUE
            if typ in NILLABLE:
                return _zero(typ)
            raise self.errorf(f"invalid value; expected {typ}")
        if typ is None or typ == VALUE:
            return value
        if typ == ANY:
            return None if isinstance(value, Boxed) and value.value is None else unbox(value)
        inner = value.value if isinstance(value, Boxed) else value
        if inner is not None and _assignable(inner, typ):
            return inner
        got = type_name(value if inner is None else inner)
        raise self.errorf(f"wrong type for value; expected {typ}; got {got}")
