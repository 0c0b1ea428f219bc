"""Lexical items of a Go template: their kinds, positions, and how they print in errors.

Owns: `ItemType`, `Item` and the keyword table (Go `parse/lex.go` `item`, `key`). `Item`'s
text form is Go's `item.String()`, used in `unexpected X in Y` parse errors: keywords print
as `<if>`, other tokens Go-quoted and cut to 10 runes plus `...`.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass

from .quote import go_quote

__all__ = [
    "KEYWORDS",
    "SPACE_CHARS",
    "Item",
    "ItemType",
    "go_quote_prefix",
    "is_alnum",
    "is_space",
    "left_trim_len",
    "right_trim_len",
    "rune_u",
]

SPACE_CHARS = " \t\r\n"


class ItemType(enum.Enum):
    ERROR = "error"
    BOOL = "bool"
    CHAR = "char"
    CHAR_CONSTANT = "charconst"
    COMMENT = "comment"
    COMPLEX = "complex"
    ASSIGN = "="
    DECLARE = ":="
    EOF = "EOF"
    FIELD = "field"
    IDENTIFIER = "identifier"
    LEFT_DELIM = "leftdelim"
    LEFT_PAREN = "("
    NUMBER = "number"
    PIPE = "|"
    RAW_STRING = "rawstring"
    RIGHT_DELIM = "rightdelim"
    RIGHT_PAREN = ")"
    SPACE = "space"
    STRING = "string"
    TEXT = "text"
    VARIABLE = "variable"
    # Keywords (Go's item types above itemKeyword print as <word>).
    BLOCK = "block"
    BREAK = "break"
    CONTINUE = "continue"
    DOT = "."
    DEFINE = "define"
    ELSE = "else"
    END = "end"
    IF = "if"
    NIL = "nil"
    RANGE = "range"
    TEMPLATE = "template"
    WITH = "with"


KEYWORDS: dict[str, ItemType] = {
    t.value: t
    for t in (
        ItemType.BLOCK,
        ItemType.BREAK,
        ItemType.CONTINUE,
        ItemType.DOT,
        ItemType.DEFINE,
        ItemType.ELSE,
        ItemType.END,
        ItemType.IF,
        ItemType.NIL,
        ItemType.RANGE,
        ItemType.TEMPLATE,
        ItemType.WITH,
    )
}


@dataclass(frozen=True)
class Item:
    typ: ItemType
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        # Go's item.String(), used in "unexpected X in Y" messages.
        if self.typ is ItemType.EOF:
            return "EOF"
        if self.typ is ItemType.ERROR:
            return self.val
        if self.typ in KEYWORDS.values():
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote_prefix(self.val, 10) + "..."
        return go_quote_prefix(self.val, None)


def go_quote_prefix(s: str, limit: int | None) -> str:
    """`%q` (or `%.Nq`) of a token value: Go-quoted, truncated to `limit` runes first."""
    return go_quote(s if limit is None else s[:limit])


def is_space(c: str) -> bool:
    return c in SPACE_CHARS


def is_alnum(c: str) -> bool:
    return c == "_" or (c != "" and (c.isalpha() or unicodedata.category(c) == "Nd"))


def right_trim_len(s: str) -> int:
    return len(s) - len(s.rstrip(SPACE_CHARS))


def left_trim_len(s: str) -> int:
    return len(s) - len(s.lstrip(SPACE_CHARS))


def rune_u(c: str) -> str:
    """Go's `%#U` of a rune: `U+002D '-'`."""
    if c == "":
        return "U+FFFFFFFFFFFFFFFF"  # Go's eof rune (-1) printed with %#U
    return f"U+{ord(c):04X} '{c}'" if c.isprintable() else f"U+{ord(c):04X}"
