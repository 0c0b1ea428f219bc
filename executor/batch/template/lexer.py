"""Lexer for Go `text/template` source with configurable delimiters.

Owns: turning template text into items (text, delimiters, comments, and the tokens inside an
action), including trim markers and Go's literal syntax. Knows nothing of parsing or values.

Facts from Go's `text/template/parse/lex.go`:
- Actions are found by plain substring search for the left delimiter; a lone right delimiter
  in text is text. Inside an action, the right delimiter is recognised only at a token start,
  so `}}` inside a string literal is not a delimiter.
- A trim marker is `-` plus exactly one of space/tab/CR/LF, directly after the left delimiter
  (or before the right one). Trimming removes only those four ASCII characters.
- A comment opens with `/*` right after the left delimiter (or its trim marker) and its `*/`
  must be followed immediately by the right delimiter (or ` -` and the delimiter).
- `break` and `continue` are keywords only when no function of that name exists.
- Errors end the stream: the last item is an `ERROR` item carrying Go's message.

Positions are character offsets into the Python string; error messages convert them to byte
columns (see `nodes.error_context`).
"""

from __future__ import annotations

from collections.abc import Callable

from .items import (
    KEYWORDS,
    Item,
    ItemType,
    is_alnum,
    is_space,
    left_trim_len,
    right_trim_len,
    rune_u,
)
from .quote import go_quote

__all__ = ["Item", "ItemType", "lex"]

TRIM_MARKER = "-"
LEFT_COMMENT = "/*"
RIGHT_COMMENT = "*/"


StateFn = Callable[[], "StateFn | None"]


class _Lexer:
    def __init__(self, text: str, left: str, right: str, funcs: frozenset[str]) -> None:
        self.text = text
        self.left = left
        self.right = right
        self.break_ok = "break" not in funcs
        self.continue_ok = "continue" not in funcs
        self.pos = 0
        self.start = 0
        self.line = 1
        self.start_line = 1
        self.paren_depth = 0
        self.items: list[Item] = []

    # -- primitives ----------------------------------------------------------------------
    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        c = self.peek()
        self.pos += 1
        if c == "\n":
            self.line += 1
        return c

    def backup(self) -> None:
        self.pos -= 1
        if self.pos < len(self.text) and self.text[self.pos] == "\n":
            self.line -= 1

    def this_item(self, typ: ItemType) -> Item:
        item = Item(typ, self.start, self.text[self.start : self.pos], self.start_line)
        self.start = self.pos
        self.start_line = self.line
        return item

    def emit(self, typ: ItemType) -> None:
        self.items.append(self.this_item(typ))

    def ignore(self) -> None:
        self.line += self.text.count("\n", self.start, self.pos)
        self.start = self.pos
        self.start_line = self.line

    def error(self, msg: str) -> None:
        self.items.append(Item(ItemType.ERROR, self.start, msg, self.start_line))

    def accept(self, valid: str) -> bool:
        if self.peek() != "" and self.peek() in valid:
            self.next()
            return True
        return False

    def accept_run(self, valid: str) -> None:
        while self.peek() != "" and self.peek() in valid:
            self.next()

    def has_left_trim(self, at: int) -> bool:
        s = self.text[at : at + 2]
        return len(s) == 2 and s[0] == TRIM_MARKER and is_space(s[1])

    def has_right_trim(self, at: int) -> bool:
        s = self.text[at : at + 2]
        return len(s) == 2 and is_space(s[0]) and s[1] == TRIM_MARKER

    def at_right_delim(self) -> tuple[bool, bool]:
        if self.has_right_trim(self.pos) and self.text.startswith(self.right, self.pos + 2):
            return True, True
        return self.text.startswith(self.right, self.pos), False

    def at_terminator(self) -> bool:
        c = self.peek()
        if c == "" or is_space(c) or c in ".,|:()":
            return True
        return self.text.startswith(self.right, self.pos)

    # -- states: each returns False when lexing is finished ------------------------------
    def run(self) -> list[Item]:
        state: StateFn = self.lex_text
        while True:
            nxt = state()
            if nxt is None:
                return self.items
            state = nxt

    def lex_text(self) -> StateFn | None:
        x = self.text.find(self.left, self.pos)
        if x < 0:
            self.pos = len(self.text)
            if self.pos > self.start:
                self.line += self.text.count("\n", self.start, self.pos)
                self.emit(ItemType.TEXT)
            self.emit(ItemType.EOF)
            return None
        if x > self.pos:
            self.pos = x
            trim = 0
            if self.has_left_trim(x + len(self.left)):
                trim = right_trim_len(self.text[self.start : self.pos])
            self.pos -= trim
            self.line += self.text.count("\n", self.start, self.pos)
            item = self.this_item(ItemType.TEXT)
            self.pos += trim
            self.ignore()
            if item.val:
                self.items.append(item)
        return self.lex_left_delim

    def lex_left_delim(self) -> StateFn | None:
        self.pos += len(self.left)
        trim = self.has_left_trim(self.pos)
        after = 2 if trim else 0
        if self.text.startswith(LEFT_COMMENT, self.pos + after):
            self.pos += after
            self.ignore()
            return self.lex_comment
        self.items.append(self.this_item(ItemType.LEFT_DELIM))
        self.pos += after
        self.ignore()
        self.paren_depth = 0
        return self.lex_inside_action

    def lex_comment(self) -> StateFn | None:
        self.pos += len(LEFT_COMMENT)
        x = self.text.find(RIGHT_COMMENT, self.pos)
        if x < 0:
            self.error("unclosed comment")
            return None
        self.pos = x + len(RIGHT_COMMENT)
        delim, trim = self.at_right_delim()
        if not delim:
            self.error("comment ends before closing delimiter")
            return None
        self.line += self.text.count("\n", self.start, self.pos)
        item = self.this_item(ItemType.COMMENT)
        if trim:
            self.pos += 2
        self.pos += len(self.right)
        if trim:
            self.pos += left_trim_len(self.text[self.pos :])
        self.ignore()
        self.items.append(item)
        return self.lex_text

    def lex_right_delim(self) -> StateFn | None:
        _, trim = self.at_right_delim()
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += len(self.right)
        self.emit(ItemType.RIGHT_DELIM)
        if trim:
            self.pos += left_trim_len(self.text[self.pos :])
            self.ignore()
        return self.lex_text

    def lex_inside_action(self) -> StateFn | None:
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            self.error("unclosed left paren")
            return None
        c = self.next()
        if c == "":
            self.error("unclosed action")
            return None
        if is_space(c):
            self.backup()  # put the space back in case we have " -}}"
            return self.lex_space
        if c == "=":
            self.emit(ItemType.ASSIGN)
        elif c == ":":
            if self.next() != "=":
                self.error("expected :=")
                return None
            self.emit(ItemType.DECLARE)
        elif c == "|":
            self.emit(ItemType.PIPE)
        elif c == '"':
            return self.lex_quote
        elif c == "`":
            return self.lex_raw_quote
        elif c == "$":
            return self.lex_variable
        elif c == "'":
            return self.lex_char
        elif c == "." and self.peek() != "" and not "0" <= self.peek() <= "9":
            return self.lex_field
        elif c in "+-." or "0" <= c <= "9":
            self.backup()
            return self.lex_number
        elif is_alnum(c):
            self.backup()
            return self.lex_identifier
        elif c == "(":
            self.paren_depth += 1
            self.emit(ItemType.LEFT_PAREN)
        elif c == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.error("unexpected right paren")
                return None
            self.emit(ItemType.RIGHT_PAREN)
        elif ord(c) < 0x80 and c.isprintable():
            self.emit(ItemType.CHAR)
        else:
            self.error(f"unrecognized character in action: {rune_u(c)}")
            return None
        return self.lex_inside_action

    def lex_space(self) -> StateFn | None:
        n = 0
        while is_space(self.peek()) and self.peek() != "":
            self.next()
            n += 1
        # A trim-marked right delimiter starts with a space: leave it for lex_right_delim.
        if self.has_right_trim(self.pos - 1) and self.text.startswith(self.right, self.pos + 1):
            self.backup()
            if n == 1:
                return self.lex_right_delim
        self.emit(ItemType.SPACE)
        return self.lex_inside_action

    def lex_identifier(self) -> StateFn | None:
        while is_alnum(self.peek()):
            self.next()
        word = self.text[self.start : self.pos]
        if not self.at_terminator():
            self.error(f"bad character {rune_u(self.peek())}")
            return None
        kw = KEYWORDS.get(word)
        if kw is not None and kw is not ItemType.DOT:
            if (kw is ItemType.BREAK and not self.break_ok) or (
                kw is ItemType.CONTINUE and not self.continue_ok
            ):
                self.emit(ItemType.IDENTIFIER)
            else:
                self.emit(kw)
        elif word in ("true", "false"):
            self.emit(ItemType.BOOL)
        else:
            self.emit(ItemType.IDENTIFIER)
        return self.lex_inside_action

    def lex_field(self) -> StateFn | None:
        return self._field_or_variable(ItemType.FIELD)

    def lex_variable(self) -> StateFn | None:
        return self._field_or_variable(ItemType.VARIABLE)

    def _field_or_variable(self, typ: ItemType) -> StateFn | None:
        if self.at_terminator():  # nothing interesting follows: "." or "$"
            self.emit(ItemType.VARIABLE if typ is ItemType.VARIABLE else ItemType.DOT)
            return self.lex_inside_action
        while is_alnum(self.peek()):
            self.next()
        if not self.at_terminator():
            self.error(f"bad character {rune_u(self.peek())}")
            return None
        self.emit(typ)
        return self.lex_inside_action

    def _scan_quoted(self, quote: str, what: str) -> bool:
        while True:
            c = self.next()
            if c == "\\":
                c = self.next()
                if c not in ("", "\n"):
                    continue
            if c in ("", "\n"):
                self.error(f"unterminated {what}")
                return False
            if c == quote:
                return True

    def lex_char(self) -> StateFn | None:
        if not self._scan_quoted("'", "character constant"):
            return None
        self.emit(ItemType.CHAR_CONSTANT)
        return self.lex_inside_action

    def lex_quote(self) -> StateFn | None:
        if not self._scan_quoted('"', "quoted string"):
            return None
        self.emit(ItemType.STRING)
        return self.lex_inside_action

    def lex_raw_quote(self) -> StateFn | None:
        x = self.text.find("`", self.pos)
        if x < 0:
            self.error("unterminated raw quoted string")
            return None
        while self.pos <= x:
            self.next()
        self.emit(ItemType.RAW_STRING)
        return self.lex_inside_action

    def _scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if is_alnum(self.peek()):
            self.next()
            return False
        return True

    def lex_number(self) -> StateFn | None:
        if not self._scan_number():
            self.error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
            return None
        if self.peek() in ("+", "-") and self.peek() != "":
            # Complex constant 1+2i: no spaces, must end in 'i'.
            if not self._scan_number() or self.text[self.pos - 1] != "i":
                self.error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
                return None
            self.emit(ItemType.COMPLEX)
        else:
            self.emit(ItemType.NUMBER)
        return self.lex_inside_action


def lex(text: str, left: str, right: str, funcs: frozenset[str] = frozenset()) -> list[Item]:
    """Lex the whole template; the list ends with an EOF or an ERROR item."""
    return _Lexer(text, left, right, funcs).run()
