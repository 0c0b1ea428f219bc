"""Executor: walks a parsed template tree and writes the output.

Owns: text and action output (`printableValue`: an invalid value prints `<no value>`),
`if`/`with`/`range`/`break`/`continue`/`template`, and `execute`. Expression evaluation and
the error format live in `evaluator.py`. Knows nothing of Sourcegraph.

Facts (Go `text/template/exec.go`):
- `if`/`with`/`range` drop the variables they declared when they finish; `range` also drops
  the body's variables after every iteration.
- `range` visits maps in sorted key order, gives one variable the *element* and two the
  index/key and element, treats nil as empty, and (Go 1.24+) iterates integers 0..n-1.
- `template "n" p` runs `n` with dot and `$` set to `p` and no other variables.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import TemplateError
from .evaluator import Evaluator
from .gofunc import GoFunc
from .nodes import (
    ActionNode,
    BranchNode,
    BreakNode,
    CommentNode,
    ContinueNode,
    ListNode,
    Node,
    TemplateNode,
    TextNode,
)
from .parse import Tree
from .printing import format_value, sort_keys
from .values import NO_VALUE, Boxed, GoStruct, StrList, is_list, is_true

__all__ = ["MISSING_KEY_MODES", "execute"]

MISSING_KEY_MODES = ("error", "default", "invalid", "zero")
_MAX_DEPTH = 100000


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _State(Evaluator):
    # -- walking -------------------------------------------------------------------------
    def walk(self, dot: object, node: Node) -> None:
        self.at(node)
        if isinstance(node, ActionNode):
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.at(node)
                self.out.append(format_value(_printable(val), top=True))
        elif isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, BranchNode):
            if node.kind == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_with(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif not isinstance(node, CommentNode):
            raise self.errorf(f"unknown node: {node}")

    def walk_if_with(self, dot: object, node: BranchNode) -> None:
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, node.pipe)
            if is_true(val):
                self.walk(val if node.kind == "with" else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: object, r: BranchNode) -> None:
        self.at(r)
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, r.pipe)
            if isinstance(val, GoStruct) and val.pointer:
                val = GoStruct(val.type_name, val.fields)
            try:
                ran = self.range_over(val, r)
            except _Break:
                return
            if not ran and r.else_list is not None:
                self.walk(dot, r.else_list)
        finally:
            del self.vars[mark:]

    def range_over(self, val: object, r: BranchNode) -> bool:
        decl = r.pipe.decl
        mark = len(self.vars)

        def one(index: object, elem: object) -> None:
            if decl:
                if r.pipe.is_assign:
                    self.set_var(decl[0].ident[0], index if len(decl) > 1 else elem)
                else:
                    self.set_top_var(1, elem)
            if len(decl) > 1:
                if r.pipe.is_assign:
                    self.set_var(decl[1].ident[0], elem)
                else:
                    self.set_top_var(2, index)
            try:
                self.walk(elem, r.list)
            except _Continue:
                pass
            finally:
                del self.vars[mark:]

        if is_list(val):
            assert isinstance(val, list | tuple)
            boxed = not isinstance(val, StrList)
            for i, e in enumerate(val):
                one(i, Boxed(e) if boxed else e)
            return len(val) > 0
        if isinstance(val, int) and not isinstance(val, bool):
            if len(decl) > 1:
                raise self.errorf(f"can't use {val} to iterate over more than one variable")
            for i in range(val):
                one(NO_VALUE, i)
            return val > 0
        if isinstance(val, Mapping):
            for k in sort_keys(list(val.keys())):
                one(k, Boxed(val[k]))
            return len(val) > 0
        if val is NO_VALUE or val is None:
            return False
        raise self.errorf(f"range can't iterate over {format_value(val)}")

    def walk_template(self, dot: object, t: TemplateNode) -> None:
        self.at(t)
        body = self.tree.defined.get(t.name)
        if body is None:
            raise self.errorf(f'template "{t.name}" not defined')
        if self.depth >= _MAX_DEPTH:
            raise self.errorf(f"exceeded maximum template depth ({_MAX_DEPTH})")
        value = self.eval_pipeline(dot, t.pipe) if t.pipe is not None else NO_VALUE
        sub = _State(self.tree, self.funcs, self.missingkey)
        sub.name, sub.out, sub.depth = t.name, self.out, self.depth + 1
        sub.vars = [("$", value)]
        sub.walk(value, body)


def _printable(value: object) -> object:
    """`printableValue`: a pointer prints as what it points to."""
    if isinstance(value, GoStruct) and value.pointer:
        return GoStruct(value.type_name, value.fields)
    return value


def execute(
    tree: Tree,
    data: object,
    funcs: Mapping[str, GoFunc],
    *,
    missingkey: str = "error",
) -> str:
    """Run `tree` with dot and `$` set to `data`; return the output text."""
    if data is None:
        data = NO_VALUE  # reflect.ValueOf(nil) is the invalid value
    state = _State(tree, funcs, missingkey)
    state.vars = [("$", data)]
    try:
        state.walk(data, tree.root)
    except RecursionError:
        raise TemplateError(
            f"template: {tree.name}: exceeded maximum template depth ({_MAX_DEPTH})"
        ) from None
    return "".join(state.out)
