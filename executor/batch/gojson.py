"""Byte-exact imitation of Go's ``encoding/json`` marshalling, for cache keys and log lines.

Owns: turning Python values into the exact bytes Go's ``json.Marshal`` (and
``json.Encoder.Encode``, minus its trailing newline) produces: no whitespace, map keys
sorted, ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\u003c`` etc., ``\\b``/``\\f``
short escapes (Go >= 1.22), float64 printed with ``strconv.AppendFloat(f, 'f'|'e', -1)``,
``time.Time`` as RFC 3339 with nanoseconds and trailing zeros trimmed.

Must not know: what the values mean. Struct field order is the caller's business:
:class:`GoStruct` keeps the given order, while a ``dict`` is a Go map (keys sorted).

Facts from Go's ``encoding/json/encode.go`` (``encodeState.string``, ``floatEncoder``)
and ``time.Time.MarshalJSON``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["GoStruct", "GoTime", "format_float", "marshal", "rfc3339nano"]


@dataclass(frozen=True)
class GoStruct:
    """A Go struct: fields are emitted in the given order, never sorted."""

    fields: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, Any]]) -> GoStruct:
        return cls(tuple(pairs))


@dataclass(frozen=True)
class GoTime:
    """A ``time.Time`` in UTC given as Unix nanoseconds (Python datetimes stop at µs)."""

    unix_nanos: int


def rfc3339nano(unix_nanos: int) -> str:
    """Format like Go's ``t.UTC().Format(time.RFC3339Nano)``: fraction trimmed of zeros."""
    seconds, nanos = divmod(unix_nanos, 1_000_000_000)
    stamp = _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        stamp += "." + f"{nanos:09d}".rstrip("0")
    return stamp + "Z"


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _escape_char(ch: str) -> str:
    known = _ESCAPES.get(ch)
    if known is not None:
        return known
    code = ord(ch)
    if code < 0x20:
        return f"\\u{code:04x}"
    if 0xD800 <= code <= 0xDFFF:
        # A lone surrogate is invalid UTF-8 on the Go side: Go writes U+FFFD.
        return "\\ufffd"
    return ch


def _string(value: str) -> str:
    # Fast path: nothing to escape, which is the common case for big diffs.
    if value.isascii() and value.isprintable() and not any(c in value for c in '"\\<>&'):
        return '"' + value + '"'
    return '"' + "".join(_escape_char(c) for c in value) + '"'


def format_float(value: float) -> str:
    """Go's float64 JSON encoding: shortest repr, 'e' form outside [1e-6, 1e21)."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {value!r}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    digits, exponent = _shortest_digits(abs(value))
    sign = "-" if value < 0 else ""
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp = exponent + len(digits) - 1
        # Go prints at least two exponent digits ("e-07") and then trims "e-0X" to "e-X".
        exp_text = f"{abs(exp):02d}"
        if exp < 0 and exp_text.startswith("0"):
            exp_text = exp_text[1:]
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{exp_text}"
    # Fixed notation: value == int(digits) * 10**exponent.
    if exponent >= 0:
        return sign + digits + "0" * exponent
    point = len(digits) + exponent
    if point > 0:
        return sign + digits[:point] + "." + digits[point:]
    return sign + "0." + "0" * (-point) + digits


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits and exponent with value == digits * 10**exp."""
    mantissa, _, exp_text = f"{value!r}".partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    exponent = int(exp_text) if exp_text else 0
    if frac_part == "0":
        frac_part = ""
    digits = (int_part + frac_part).lstrip("0")
    exponent -= len(frac_part)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return stripped or "0", exponent


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        out.append(str(value) if abs(value) < 10**21 else format_float(float(value)))
    elif isinstance(value, float):
        out.append(format_float(value))
    elif isinstance(value, bytes | bytearray | memoryview):
        # Go encodes []byte as standard base64 with padding.
        out.append('"' + base64.b64encode(bytes(value)).decode("ascii") + '"')
    elif isinstance(value, GoStruct):
        _encode_pairs(value.fields, out)
    elif isinstance(value, GoTime):
        out.append('"' + rfc3339nano(value.unix_nanos) + '"')
    elif isinstance(value, Mapping):
        # Go sorts map keys by their UTF-8 bytes.
        items = sorted(((str(k), v) for k, v in value.items()), key=lambda kv: kv[0].encode())
        _encode_pairs(items, out)
    elif isinstance(value, Sequence):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"gojson: cannot marshal {type(value).__name__}")


def _encode_pairs(pairs: Iterable[tuple[str, Any]], out: list[str]) -> None:
    out.append("{")
    first = True
    for key, item in pairs:
        if not first:
            out.append(",")
        first = False
        out.append(_string(key))
        out.append(":")
        _encode(item, out)
    out.append("}")


def marshal(value: Any) -> str:
    """Return ``json.Marshal(value)`` as Go would write it (a ``str``; encode as UTF-8)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)
