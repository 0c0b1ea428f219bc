"""Go `fmt` `%v` printing of template values, plus `Sprint`/`Sprintln`.

Owns: how a value becomes text when a template prints it. `printf` verbs
live in `printf.py`; this module knows nothing of templates.

Facts carried over from Go (`fmt/print.go`, `fmt/format.go`, `strconv/ftoa.go`):
- float64 `%v` is `%g` with the *shortest* round-trip digits. It switches to exponent form
  when the decimal exponent is < -4 or >= 6 (not 21, the JSON/JavaScript threshold): strconv
  `formatDigits` says "if precision was the shortest possible, use precision 6 for this
  decision". So 1e6 prints `1e+06` and 123456.0 prints `123456`. Exponents have at least two
  digits.
- Lists print `[a b]`, maps `map[k:v]` with keys sorted bytewise (`internal/fmtsort`), a nil
  inside a container prints `<nil>`, a `String()` method wins at every depth
  (`fileMatchPathList`).
- `Sprint` puts a space between operands only when neither is a string; `Sprintln` always.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

from .values import NO_VALUE, Boxed, FileMatchPathList, GoStruct, is_list, unbox

__all__ = [
    "format_complex",
    "format_float",
    "format_value",
    "sort_keys",
    "sprint",
    "sprintln",
]


def _shortest_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip digits of |f| and the decimal point position `dp`.

    The value is 0.d1d2…dn * 10**dp. Python's `repr` yields the same shortest digit string
    as Go's strconv (both are shortest-round-trip, nearest candidate).
    """
    sign_digits_exp = Decimal(repr(abs(f))).as_tuple()
    digits = "".join(str(d) for d in sign_digits_exp.digits).lstrip("0")
    exponent = sign_digits_exp.exponent
    assert isinstance(exponent, int)
    if not digits:
        return "0", 1
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return stripped, len(stripped) + exponent


def _exp_form(digits: str, dp: int, upper: bool = False) -> str:
    exp = dp - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    sign = "-" if exp < 0 else "+"
    return f"{mantissa}{'E' if upper else 'e'}{sign}{abs(exp):02d}"


def _plain_form(digits: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * (-dp) + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def format_float(f: float, upper: bool = False) -> str:
    """Go's `%v` (= shortest `%g`) of a float64."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    if f == 0:
        return sign + "0"
    digits, dp = _shortest_digits(f)
    exp = dp - 1
    body = _exp_form(digits, dp, upper) if exp < -4 or exp >= 6 else _plain_form(digits, dp)
    return sign + body


def format_complex(c: complex) -> str:
    """Go's `%v` of a complex128: `(R+Ii)`, the imaginary part always signed."""
    imag = format_float(c.imag)
    if not imag.startswith(("-", "+")):
        imag = "+" + imag
    return f"({format_float(c.real)}{imag}i)"


def sort_keys(keys: list[object]) -> list[object]:
    """fmtsort order: strings bytewise, numbers numerically, `false` before `true`."""

    def key(k: object) -> tuple[int, object]:
        if isinstance(k, str):
            return (3, k.encode("utf-8", "surrogateescape"))
        if isinstance(k, bool):
            return (0, int(k))
        if isinstance(k, int | float):
            # NaN sorts first in fmtsort.
            return (1, (0, 0.0)) if k != k else (1, (1, k))
        return (4, repr(k))

    return sorted(keys, key=key)


def format_value(value: object, *, top: bool = False) -> str:
    """Go `fmt.Sprint` (`%v`) of a single value.

    With `top=True` the template's `printableValue` rule applies first: an invalid value
    (and a boxed nil) prints `<no value>` instead of `<nil>`.
    """
    if isinstance(value, Boxed):
        value = value.value
    if value is NO_VALUE:
        return "<no value>" if top else "<nil>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, complex):
        return format_complex(value)
    if isinstance(value, str):
        return value
    if isinstance(value, FileMatchPathList):
        return value.go_string()
    if is_list(value):
        assert isinstance(value, list | tuple)
        return "[" + " ".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        parts = [
            f"{format_value(k)}:{format_value(value[k])}" for k in sort_keys(list(value.keys()))
        ]
        return "map[" + " ".join(parts) + "]"
    if isinstance(value, GoStruct):
        inner = "{" + " ".join(format_value(v) for v in value.fields.values()) + "}"
        return ("&" if value.pointer else "") + inner
    return str(value)


def _is_string(value: object) -> bool:
    return isinstance(unbox(value), str)


def sprint(args: list[object]) -> str:
    """`fmt.Sprint`: a space between operands only when neither side is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i > 0 and not _is_string(arg) and not _is_string(args[i - 1]):
            out.append(" ")
        out.append(format_value(arg))
    return "".join(out)


def sprintln(args: list[object]) -> str:
    """`fmt.Sprintln`: always a space between operands, then a newline."""
    return " ".join(format_value(a) for a in args) + "\n"
