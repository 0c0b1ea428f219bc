"""Go number and character-constant literals: text to a `NumberNode`.

Owns: Go's `parse.newNumber` rules and strconv's literal syntax (base prefixes `0x 0o 0b`,
leading-0 octal, `_` separators, hex floats, imaginary and complex constants, runes).

Facts (Go `parse/node.go newNumber`):
- Integers are tried first (`ParseUint`, `ParseInt` with base 0); a float parse only follows
  if both fail. A text that parses only as a float but has none of `.eEpP` is
  `integer overflow: "08"`; a float out of range is `illegal number syntax: "1e400"`.
- A character constant is an int (its code point); `'ab'` is
  `malformed character constant: 'ab'`.
"""

from __future__ import annotations

import math

from .nodes import NumberNode
from .quote import go_quote

__all__ = ["parse_number", "underscore_ok"]

_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64 = (0, (1 << 64) - 1)
_SIMPLE = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, "'": 39}


def underscore_ok(s: str) -> bool:
    """strconv's `underscoreOK`: `_` only between digits (or after a base prefix)."""
    saw = "^"
    i = 0
    if s[:1] in ("+", "-"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i, saw, hexa = 2, "0", s[1].lower() == "x"
    while i < len(s):
        c = s[i]
        if c.isdigit() or (hexa and c.lower() in "abcdef"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
        i += 1
    return saw != "_"


def _parse_int(text: str) -> int | None:
    """`strconv.ParseInt(text, 0, ∞)` without the range check; None when malformed."""
    sign = 1
    body = text
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if not underscore_ok(body):
        return None
    base = 10
    low = body[:2].lower()
    if low in ("0x", "0o", "0b"):
        base = {"0x": 16, "0o": 8, "0b": 2}[low]
        body = body[2:]
    elif body[:1] == "0" and len(body) > 1:
        base, body = 8, body[1:]
    digits = body.replace("_", "")
    if not digits:
        return None
    try:
        return sign * int(digits, base)
    except ValueError:
        return None


def _parse_float(text: str) -> float | None:
    """`strconv.ParseFloat(text, 64)`; None when malformed or out of range."""
    if not underscore_ok(text):
        return None
    body = text.replace("_", "")
    try:
        if body.lstrip("+-")[:2].lower() == "0x":
            f = float.fromhex(body)
        else:
            if any(c not in "0123456789+-.eE" for c in body):
                return None
            f = float(body)
    except (ValueError, OverflowError):
        return None
    return None if math.isinf(f) else f


def _char_value(text: str) -> int:
    body = text[1:]
    if not body or body[0] == "'":
        raise ValueError("invalid syntax")
    if body[0] != "\\":
        rune, rest = ord(body[0]), body[1:]
    else:
        e = body[1:2]
        if e in _SIMPLE:
            rune, rest = _SIMPLE[e], body[2:]
        elif e in ("x", "u", "U"):
            n = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[2 : 2 + n]
            if len(digits) != n or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid syntax")
            rune, rest = int(digits, 16), body[2 + n :]
            if e != "x" and (rune > 0x10FFFF or 0xD800 <= rune <= 0xDFFF):
                raise ValueError("invalid syntax")
        elif e and e in "01234567":
            digits = body[1:4]
            if len(digits) != 3 or any(c not in "01234567" for c in digits) or int(digits, 8) > 255:
                raise ValueError("invalid syntax")
            rune, rest = int(digits, 8), body[4:]
        else:
            raise ValueError("invalid syntax")
    if rest != "'":
        raise ValueError(f"malformed character constant: {text}")
    return rune


def _simplify_complex(n: NumberNode) -> None:
    n.is_float = n.complex128.imag == 0
    if n.is_float:
        n.float64 = n.complex128.real
        n.is_int = n.float64.is_integer() and _INT64[0] <= n.float64 <= _INT64[1]
        if n.is_int:
            n.int64 = int(n.float64)
        n.is_uint = n.float64.is_integer() and _UINT64[0] <= n.float64 <= _UINT64[1]
        if n.is_uint:
            n.uint64 = int(n.float64)


def parse_number(pos: int, text: str, kind: str = "number") -> NumberNode:
    """Build a NumberNode from a token (`kind` is number, complex or char); ValueError if bad."""
    n = NumberNode(pos, text)
    if kind == "char":
        rune = _char_value(text)
        n.is_int = n.is_uint = n.is_float = True
        n.int64 = n.uint64 = rune
        n.float64 = float(rune)
        return n
    if kind == "complex":
        # Go lets fmt.Sscan parse "1+2i"; Python's complex() wants a "j".
        try:
            n.complex128 = complex(text[:-1].replace("_", "") + "j")
        except ValueError:
            raise ValueError(f"illegal number syntax: {go_quote(text)}") from None
        n.is_complex = True
        _simplify_complex(n)
        return n
    if text.endswith("i"):
        f = _parse_float(text[:-1])
        if f is not None:
            n.is_complex = True
            n.complex128 = complex(0, f)
            _simplify_complex(n)
            return n
    value = _parse_int(text)
    if value is not None:
        if _UINT64[0] <= value <= _UINT64[1]:
            n.is_uint, n.uint64 = True, value
        if _INT64[0] <= value <= _INT64[1]:
            n.is_int, n.int64 = True, value
            if value == 0:
                n.is_uint, n.uint64 = True, 0
    if n.is_int:
        n.is_float, n.float64 = True, float(n.int64)
    elif n.is_uint:
        n.is_float, n.float64 = True, float(n.uint64)
    else:
        f = _parse_float(text)
        if f is not None:
            if not any(c in text for c in ".eEpP"):
                raise ValueError(f"integer overflow: {go_quote(text)}")
            n.is_float, n.float64 = True, f
            if f.is_integer() and _INT64[0] <= f <= _INT64[1]:
                n.is_int, n.int64 = True, int(f)
            if f.is_integer() and _UINT64[0] <= f <= _UINT64[1]:
                n.is_uint, n.uint64 = True, int(f)
    if not (n.is_int or n.is_uint or n.is_float):
        raise ValueError(f"illegal number syntax: {go_quote(text)}")
    return n
