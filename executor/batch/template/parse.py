"""Parser, part two: templates, actions and control structures.

Owns: Go `parse.go`'s top level (`parse`, `define`, `itemList`, `textOrAction`, `action`),
`if`/`with`/`range`/`else`/`end`/`break`/`continue`/`template`/`block`, variable scope, and the
`Tree` result. Expressions come from `parse_expr.ExprParser`. Knows nothing of evaluation.

Facts (Go `text/template/parse/parse.go`):
- Variables declared in a control pipeline are visible in both branches; everything declared
  after `if`/`with`/`range` is dropped at its `end`.
- `else if` / `else with` (Go 1.23+) are sugar for a nested `if`/`with` sharing the outer
  `end`; `break`/`continue` are only allowed inside `range`.
- `define` is only allowed at top level; a second non-empty definition of a name is
  `template: multiple definition of template "a"`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .lexer import Item, ItemType, lex
from .nodes import (
    ActionNode,
    BranchNode,
    BreakNode,
    CommentNode,
    ContinueNode,
    ElseNode,
    EndNode,
    ListNode,
    Node,
    PipeNode,
    TemplateNode,
    TextNode,
)
from .parse_expr import ExprParser

__all__ = ["Tree", "parse"]

_T = ItemType


@dataclass
class Tree:
    """One parsed template: its name, root list, and all templates it defined."""

    name: str
    text: str
    root: ListNode
    defined: dict[str, ListNode] = field(default_factory=dict)


class _Parser(ExprParser):
    # -- top level -----------------------------------------------------------------------
    def parse(self) -> ListNode:
        root = ListNode(self.peek().pos)
        while self.peek().typ is not _T.EOF:
            if self.peek().typ is _T.LEFT_DELIM:
                start = self.i
                self.next()
                if self.next_non_space().typ is _T.DEFINE:
                    self.parse_definition()
                    continue
                self.i = start
            n = self.text_or_action()
            if isinstance(n, EndNode | ElseNode):
                raise self.errorf(f"unexpected {n}")
            root.nodes.append(n)
        return root

    def parse_definition(self) -> None:
        context = "define clause"
        item = self.next_non_space()
        if item.typ not in (_T.STRING, _T.RAW_STRING):
            raise self.unexpected(item, context)
        name = self.unquote(item.val)
        self.expect(_T.RIGHT_DELIM, context)
        saved = (self.vars, self.range_depth)
        self.vars, self.range_depth = ["$"], 0
        body, end = self.item_list()
        self.vars, self.range_depth = saved
        if not isinstance(end, EndNode):
            raise self.errorf(f"unexpected {end} in {context}")
        self.add_definition(name, body)

    def add_definition(self, name: str, body: ListNode) -> None:
        old = self.defined.get(name)
        if old is not None and _non_empty(old) and _non_empty(body):
            raise self.errorf(f'template: multiple definition of template "{name}"')
        if old is None or not _non_empty(old):
            self.defined[name] = body

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ is not _T.EOF:
            n = self.text_or_action()
            if isinstance(n, EndNode | ElseNode):
                return lst, n
            lst.nodes.append(n)
        raise self.errorf("unexpected EOF")

    def text_or_action(self) -> Node:
        item = self.next_non_space()
        if item.typ is _T.TEXT:
            return TextNode(item.pos, item.val)
        if item.typ is _T.LEFT_DELIM:
            self.action_line = item.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        if item.typ is _T.COMMENT:
            return CommentNode(item.pos, item.val)
        raise self.unexpected(item, "input")

    # -- actions -------------------------------------------------------------------------
    def action(self) -> Node:
        item = self.next_non_space()
        t = item.typ
        if t is _T.BLOCK:
            return self.block_control()
        if t is _T.BREAK or t is _T.CONTINUE:
            return self.break_continue(item)
        if t is _T.ELSE:
            return self.else_control()
        if t is _T.END:
            return EndNode(self.expect(_T.RIGHT_DELIM, "end").pos)
        if t in (_T.IF, _T.RANGE, _T.WITH):
            return self.branch(item.val)
        if t is _T.TEMPLATE:
            return self.template_control()
        self.backup()
        first = self.peek()
        return ActionNode(first.pos, first.line, self.pipeline("command", _T.RIGHT_DELIM))

    def break_continue(self, item: Item) -> Node:
        word = item.val
        tok = self.next_non_space()
        if tok.typ is not _T.RIGHT_DELIM:
            raise self.unexpected(tok, "{{" + word + "}}")
        if self.range_depth == 0:
            raise self.errorf("{{" + word + "}} outside {{range}}")
        if word == "break":
            return BreakNode(item.pos, item.line)
        return ContinueNode(item.pos, item.line)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ in (_T.IF, _T.WITH):
            return ElseNode(peek.pos, peek.line)
        tok = self.expect(_T.RIGHT_DELIM, "else")
        return ElseNode(tok.pos, tok.line)

    def branch(self, kind: str) -> BranchNode:
        mark = len(self.vars)
        try:
            pipe = self.pipeline(kind, _T.RIGHT_DELIM)
            if kind == "range":
                self.range_depth += 1
            lst, nxt = self.item_list()
            if kind == "range":
                self.range_depth -= 1
            else_list: ListNode | None = None
            if isinstance(nxt, ElseNode):
                nested = {"if": _T.IF, "with": _T.WITH}.get(kind)
                if nested is not None and self.peek().typ is nested:
                    self.next()
                    else_list = ListNode(nxt.pos, [self.branch(kind)])
                else:
                    else_list, end = self.item_list()
                    if not isinstance(end, EndNode):
                        raise self.errorf(f"expected end; found {end}")
            return BranchNode(pipe.pos, kind, pipe.line, pipe, lst, else_list)
        finally:
            del self.vars[mark:]

    def template_control(self) -> Node:
        context = "template clause"
        tok = self.next_non_space()
        name = self.template_name(tok, context)
        pipe: PipeNode | None = None
        if self.next_non_space().typ is not _T.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, _T.RIGHT_DELIM)
        return TemplateNode(tok.pos, tok.line, name, pipe)

    def template_name(self, tok: Item, context: str) -> str:
        if tok.typ not in (_T.STRING, _T.RAW_STRING):
            raise self.unexpected(tok, context)
        return self.unquote(tok.val)

    def block_control(self) -> Node:
        context = "block clause"
        tok = self.next_non_space()
        name = self.template_name(tok, context)
        pipe = self.pipeline(context, _T.RIGHT_DELIM)
        saved = (self.vars, self.range_depth)
        self.vars, self.range_depth = ["$"], 0
        body, end = self.item_list()
        self.vars, self.range_depth = saved
        if not isinstance(end, EndNode):
            raise self.errorf(f"unexpected {end} in {context}")
        self.add_definition(name, body)
        return TemplateNode(tok.pos, tok.line, name, pipe)


def _non_empty(lst: ListNode) -> bool:
    """Go's `IsEmptyTree`: only whitespace text (and comments) counts as empty."""
    for n in lst.nodes:
        if isinstance(n, TextNode) and not n.text.strip(" \t\r\n"):
            continue
        if isinstance(n, CommentNode):
            continue
        return True
    return False


def parse(name: str, text: str, delims: tuple[str, str], funcs: frozenset[str]) -> Tree:
    """Parse `text`; `funcs` holds every callable name (builtins included)."""
    items = lex(text, delims[0], delims[1], funcs)
    parser = _Parser(name, text, items, funcs)
    root = parser.parse()
    own = parser.defined.get(name)
    if own is not None and _non_empty(root):
        if _non_empty(own):
            raise parser.errorf(f'template: multiple definition of template "{name}"')
        parser.defined[name] = root
    return Tree(name, text, parser.defined.get(name, root), parser.defined)
