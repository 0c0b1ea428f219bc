"""Go string-literal quoting and unquoting (`strconv.Quote`, `strconv.Unquote`).

Owns: decoding template string/char literals and producing `%q` text. Knows nothing else.

Facts (Go `strconv/quote.go`):
- Escapes are `\\a \\b \\f \\n \\r \\t \\v \\\\`, the quote character itself, `\\ooo` (3 octal
  digits, value <= 255), `\\xhh`, `\\uhhhh`, `\\Uhhhhhhhh`. Anything else, including `\\'`
  inside a double-quoted string, is `invalid syntax`.
- `\\x` and octal escapes produce raw bytes; `\\u`/`\\U` produce UTF-8. Raw bytes that are not
  valid UTF-8 are kept with `surrogateescape` so they survive until output.
- Raw strings have no escapes, and carriage returns are removed from their value.
- `Quote` escapes non-printable runes as `\\xhh` (below U+0080 and 0x7f), `\\uhhhh` or
  `\\Uhhhhhhhh`; printable non-ASCII runes are kept as they are.
"""

from __future__ import annotations

__all__ = ["go_quote", "go_quote_rune", "go_unquote", "go_unquote_char"]

_SIMPLE = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}
_NAMED = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


class _Syntax(ValueError):
    def __init__(self) -> None:
        super().__init__("invalid syntax")


def _escape_rune(c: str, quote: str, ascii_only: bool) -> str:
    o = ord(c)
    if c == quote or c == "\\":
        return "\\" + c
    if 0xDC80 <= o <= 0xDCFF:  # a raw byte smuggled through surrogateescape
        return f"\\x{o - 0xDC00:02x}"
    if c.isprintable() and (o < 0x80 or not ascii_only):
        return c
    if o in _NAMED:
        return _NAMED[o]
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}"
    if o < 0x10000:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


def go_quote(s: str, *, ascii_only: bool = False) -> str:
    """`strconv.Quote` (or `QuoteToASCII`)."""
    return '"' + "".join(_escape_rune(c, '"', ascii_only) for c in s) + '"'


def go_quote_rune(r: int, *, ascii_only: bool = False) -> str:
    """`strconv.QuoteRune`: `'a'`; invalid code points become U+FFFD."""
    if r < 0 or r > 0x10FFFF or 0xD800 <= r <= 0xDFFF:
        r = 0xFFFD
    c = chr(r)
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    return "'" + _escape_rune(c, "'", ascii_only) + "'"


def go_unquote_char(s: str, i: int, quote: str) -> tuple[bytes, int]:
    """Decode one (possibly escaped) character at `s[i]`; return its bytes and next index."""
    c = s[i]
    if c == quote and quote in "'\"":
        raise _Syntax
    if c != "\\":
        return c.encode("utf-8", "surrogateescape"), i + 1
    if i + 1 >= len(s):
        raise _Syntax
    e = s[i + 1]
    if e in _SIMPLE:
        return bytes([_SIMPLE[e]]), i + 2
    if e == quote and quote in "'\"":
        return e.encode(), i + 2
    if e in "xuU":
        n = {"x": 2, "u": 4, "U": 8}[e]
        hexpart = s[i + 2 : i + 2 + n]
        if len(hexpart) != n or any(h not in "0123456789abcdefABCDEF" for h in hexpart):
            raise _Syntax
        v = int(hexpart, 16)
        if e == "x":
            return bytes([v]), i + 2 + n
        if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
            raise _Syntax
        return chr(v).encode(), i + 2 + n
    if e in "01234567":
        octpart = s[i + 1 : i + 4]
        if len(octpart) != 3 or any(o not in "01234567" for o in octpart):
            raise _Syntax
        v = int(octpart, 8)
        if v > 255:
            raise _Syntax
        return bytes([v]), i + 4
    raise _Syntax


def go_unquote(lit: str) -> str:
    """`strconv.Unquote` of a `"…"` or `` `…` `` literal; raises ValueError("invalid syntax")."""
    if len(lit) < 2 or lit[0] != lit[-1]:
        raise _Syntax
    quote, body = lit[0], lit[1:-1]
    if quote == "`":
        if "`" in body:
            raise _Syntax
        return body.replace("\r", "")
    if quote != '"' or "\n" in body:
        raise _Syntax
    out = bytearray()
    i = 0
    while i < len(body):
        chunk, i = go_unquote_char(body, i, '"')
        out += chunk
    return out.decode("utf-8", "surrogateescape")
