"""Parser, part one: the token stream, parse errors, and expressions (pipelines, commands,
operands, terms) of a Go template.

Owns: Go `parse.go`'s `pipeline`/`command`/`operand`/`term`, parse-time name checks and the
parse-error format `template: NAME:LINE: MESSAGE`. `parse.py` adds templates, actions and
control structures on top of `ExprParser`.

Facts (Go `text/template/parse/parse.go`):
- Unknown function names and undeclared `$variables` are parse errors
  (`function "x" not defined`, `undefined variable "$x"`); Batch Changes variables are
  functions, so a misspelt top-level variable fails here.
- Only the first command of a pipeline may start with a literal or dot
  (`non executable command in pipeline stage N`); a field after a literal is
  `unexpected . after term "1.5"`.
- The error line is that of the furthest token read so far (`t.token[0].line`); a lexer error
  in a multi-line action adds ` in action started at NAME:L`.
"""

from __future__ import annotations

from .errors import TemplateError
from .lexer import Item, ItemType
from .nodes import (
    BoolNode,
    ChainNode,
    CommandNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    StringNode,
    VariableNode,
)
from .numbers import parse_number
from .quote import go_quote, go_unquote

__all__ = ["MAX_PAREN_DEPTH", "ExprParser", "ParseAbort"]

MAX_PAREN_DEPTH = 10000
_T = ItemType
_OPERAND_START = {
    _T.BOOL,
    _T.CHAR_CONSTANT,
    _T.COMPLEX,
    _T.DOT,
    _T.FIELD,
    _T.IDENTIFIER,
    _T.NUMBER,
    _T.NIL,
    _T.RAW_STRING,
    _T.STRING,
    _T.VARIABLE,
    _T.LEFT_PAREN,
}


class ParseAbort(Exception):
    pass


class ExprParser:
    """Token stream, errors and expression grammar; subclassed by the full parser."""

    def __init__(self, name: str, text: str, items: list[Item], funcs: frozenset[str]) -> None:
        self.name = name
        self.text = text
        self.items = items
        self.funcs = funcs
        self.i = 0
        self.hi = 0
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.paren_depth = 0
        self.action_line = 0
        self.defined: dict[str, ListNode] = {}

    # -- token stream --------------------------------------------------------------------
    def _at(self, i: int) -> Item:
        return self.items[min(i, len(self.items) - 1)]

    def next(self) -> Item:
        item = self._at(self.i)
        self.i += 1
        self.hi = max(self.hi, self.i - 1)
        return item

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> Item:
        item = self.next()
        self.backup()
        return item

    def next_non_space(self) -> Item:
        item = self.next()
        while item.typ is _T.SPACE:
            item = self.next()
        return item

    def peek_non_space(self) -> Item:
        # Like Go, only the non-space token is pushed back: spaces stay consumed.
        item = self.next_non_space()
        self.backup()
        return item

    # -- errors --------------------------------------------------------------------------
    def errorf(self, msg: str) -> ParseAbort:
        line = self._at(self.hi).line
        raise TemplateError(f"template: {self.name}:{line}: {msg}")

    def unexpected(self, item: Item, context: str) -> ParseAbort:
        if item.typ is _T.ERROR:
            extra = ""
            if self.action_line and self.action_line != item.line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if item.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            raise self.errorf(f"{item}{extra}")
        raise self.errorf(f"unexpected {item} in {context}")

    def expect(self, typ: ItemType, context: str) -> Item:
        item = self.next_non_space()
        if item.typ is not typ:
            raise self.unexpected(item, context)
        return item

    def unquote(self, lit: str) -> str:
        try:
            return go_unquote(lit)
        except ValueError as e:
            raise self.errorf(str(e)) from None

    # -- pipelines -----------------------------------------------------------------------
    def pipeline(self, context: str, end: ItemType) -> PipeNode:
        first = self.peek_non_space()
        pipe = PipeNode(first.pos, first.line)
        while True:  # declarations: `$x :=`, `$x =`, and `$i, $e :=` in range
            v = self.peek_non_space()
            if v.typ is not _T.VARIABLE:
                break
            start = self.i
            self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.typ in (_T.ASSIGN, _T.DECLARE):
                pipe.is_assign = nxt.typ is _T.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                break
            if nxt.typ is _T.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (_T.VARIABLE, _T.RIGHT_DELIM, _T.RIGHT_PAREN):
                        continue
                    raise self.errorf("range can only initialize variables")
                raise self.errorf(f"too many declarations in {context}")
            self.i = start
            break
        while True:
            tok = self.next_non_space()
            if tok.typ is end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.typ in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(tok, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            raise self.errorf(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], BoolNode | DotNode | NilNode | NumberNode | StringNode):
                raise self.errorf(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ is _T.SPACE:
                continue
            if tok.typ in (_T.RIGHT_DELIM, _T.RIGHT_PAREN):
                self.backup()
            elif tok.typ is not _T.PIPE:
                raise self.unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ is _T.FIELD:
            chain = ChainNode(self.peek().pos, node)
            while self.peek().typ is _T.FIELD:
                chain.field.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(chain.pos, node.ident + chain.field)
            if isinstance(node, VariableNode):
                return VariableNode(chain.pos, node.ident + chain.field)
            if isinstance(node, BoolNode | StringNode | NilNode | NumberNode | DotNode):
                raise self.errorf(f"unexpected . after term {go_quote(str(node))}")
            return chain
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        t = tok.typ
        if t is _T.IDENTIFIER:
            if tok.val not in self.funcs:
                raise self.errorf(f'function "{tok.val}" not defined')
            return IdentifierNode(tok.pos, tok.val)
        if t is _T.DOT:
            return DotNode(tok.pos)
        if t is _T.NIL:
            return NilNode(tok.pos)
        if t is _T.VARIABLE:
            if tok.val not in self.vars:
                raise self.errorf(f'undefined variable "{tok.val}"')
            return VariableNode(tok.pos, [tok.val])
        if t is _T.FIELD:
            return FieldNode(tok.pos, [tok.val[1:]])
        if t is _T.BOOL:
            return BoolNode(tok.pos, tok.val == "true")
        if t in (_T.CHAR_CONSTANT, _T.COMPLEX, _T.NUMBER):
            try:
                kind = {_T.CHAR_CONSTANT: "char", _T.COMPLEX: "complex"}.get(t, "number")
                return parse_number(tok.pos, tok.val, kind)
            except ValueError as e:
                raise self.errorf(str(e)) from None
        if t is _T.LEFT_PAREN:
            if self.paren_depth >= MAX_PAREN_DEPTH:
                raise self.errorf("max expression depth exceeded")
            self.paren_depth += 1
            try:
                return self.pipeline("parenthesized pipeline", _T.RIGHT_PAREN)
            finally:
                self.paren_depth -= 1
        if t in (_T.STRING, _T.RAW_STRING):
            return StringNode(tok.pos, tok.val, self.unquote(tok.val))
        self.backup()
        return None
