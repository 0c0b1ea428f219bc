"""Go `fmt.Sprintf` for the template builtin `printf`.

Owns: verb parsing (flags `+-# 0`, width, precision, `*`), the verbs `%v %s %q %d %t %x %X
%o %O %b %c %U %e %E %f %F %g %G %T %%`, and Go's inline error forms, which are text, not
exceptions: `%!d(string=x)` (wrong verb), `%!s(MISSING)`, `%!(EXTRA int=2)`, `%!(NOVERB)`.
Not supported: argument indexes (`%[1]d`), `%p`, `%x` on floats, `%#v` Go syntax (prints as
`%v`). Lists and maps apply the verb to each element, as Go's `printValue` does.
"""

from __future__ import annotations

from collections.abc import Mapping

from .printing import format_float, format_value, sort_keys
from .quote import go_quote, go_quote_rune
from .values import NO_VALUE, Boxed, FileMatchPathList, GoStruct, is_list, type_name

__all__ = ["sprintf"]

_INT_VERBS = "vdbcoOqxXU"
_FLOAT_VERBS = "vbeEfFgG"
_STR_VERBS = "vsqxX"


class _Spec:
    def __init__(self) -> None:
        self.plus = self.minus = self.sharp = self.space = self.zero = False
        self.width: int | None = None
        self.prec: int | None = None

    def pad(self, s: str, numeric: bool = False) -> str:
        if self.width is None or len(s) >= self.width:
            return s
        fill = self.width - len(s)
        if self.minus:
            return s + " " * fill
        if self.zero and (not numeric or self.prec is None):
            sign = s[0] if numeric and s[:1] in "+- " and s else ""
            return sign + "0" * fill + s[len(sign) :]
        return " " * fill + s


def _bad_verb(verb: str, arg: object) -> str:
    if arg is None or arg is NO_VALUE:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(arg)}={format_value(arg)})"


def _fmt_int(v: int, verb: str, sp: _Spec) -> str:
    if verb == "c":
        return sp.pad(chr(v) if 0 <= v <= 0x10FFFF else "\ufffd")
    if verb == "q":
        return sp.pad(go_quote_rune(v, ascii_only=sp.plus))
    if verb == "U":
        s = f"U+{v:04X}"
        if sp.sharp and 0 <= v <= 0x10FFFF and chr(v).isprintable():
            s += f" '{chr(v)}'"
        return sp.pad(s)
    base = {"d": 10, "v": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}[verb]
    digits = format(abs(v), {2: "b", 8: "o", 10: "d", 16: "x"}[base])
    if verb == "X":
        digits = digits.upper()
    if sp.prec is not None:
        digits = digits.rjust(sp.prec, "0") if not (sp.prec == 0 and v == 0) else ""
    prefix = ""
    if verb == "O" or (sp.sharp and base == 8 and not digits.startswith("0")):
        prefix = "0o" if verb == "O" else "0"
    elif sp.sharp and base == 16:
        prefix = "0X" if verb == "X" else "0x"
    elif sp.sharp and base == 2:
        prefix = "0b"
    sign = "-" if v < 0 else ("+" if sp.plus else (" " if sp.space else ""))
    return sp.pad(sign + prefix + digits, numeric=True)


def _fmt_float(v: float, verb: str, sp: _Spec) -> str:
    if verb in ("v", "g", "G") and sp.prec is None:
        s = format_float(v, upper=verb == "G")
    elif verb == "b":
        m, e = v.as_integer_ratio()
        s = f"{m}p{e:+d}"
    else:
        prec = 6 if sp.prec is None else sp.prec
        s = format(v, f".{prec}{verb}")
        if s in ("inf", "-inf", "nan", "INF", "-INF", "NAN"):
            s = format_float(v)
    if sp.plus and not s.startswith(("-", "+")):
        s = "+" + s
    elif sp.space and not s.startswith(("-", "+")):
        s = " " + s
    return sp.pad(s, numeric=True)


def _fmt_str(s: str, verb: str, sp: _Spec) -> str:
    if sp.prec is not None:
        s = s[: sp.prec]
    if verb == "q":
        if sp.sharp and "`" not in s and all(c == "\t" or c.isprintable() for c in s):
            return sp.pad("`" + s + "`")
        return sp.pad(go_quote(s, ascii_only=sp.plus))
    if verb in ("x", "X"):
        h = s.encode("utf-8", "surrogateescape").hex()
        h = h.upper() if verb == "X" else h
        if sp.sharp:
            h = ("0X" if verb == "X" else "0x") + h
        return sp.pad(h)
    return sp.pad(s)


def _fmt_arg(arg: object, verb: str, sp: _Spec, depth: int = 0) -> str:
    if isinstance(arg, Boxed):
        arg = arg.value
    if verb == "T":
        return sp.pad("<nil>" if arg is None or arg is NO_VALUE else type_name(arg))
    if arg is None or arg is NO_VALUE:
        return sp.pad("<nil>") if verb == "v" or depth > 0 else _bad_verb(verb, arg)
    if isinstance(arg, bool):
        if verb in "tv":
            return sp.pad("true" if arg else "false")
        return _bad_verb(verb, arg)
    if isinstance(arg, int):
        return _fmt_int(arg, verb, sp) if verb in _INT_VERBS else _bad_verb(verb, arg)
    if isinstance(arg, float):
        return _fmt_float(arg, verb, sp) if verb in _FLOAT_VERBS else _bad_verb(verb, arg)
    if isinstance(arg, complex):
        if verb not in _FLOAT_VERBS:
            return _bad_verb(verb, arg)
        inner = _Spec()
        inner.prec = sp.prec
        re_part = _fmt_float(arg.real, verb, inner)
        inner.plus = True
        return sp.pad(f"({re_part}{_fmt_float(arg.imag, verb, inner)}i)")
    if isinstance(arg, str):
        return _fmt_str(arg, verb, sp) if verb in _STR_VERBS else _bad_verb(verb, arg)
    if isinstance(arg, FileMatchPathList) and verb in _STR_VERBS:
        return _fmt_str(arg.go_string(), verb, sp)
    if is_list(arg):
        assert isinstance(arg, list | tuple)
        return "[" + " ".join(_fmt_arg(e, verb, sp, depth + 1) for e in arg) + "]"
    if isinstance(arg, Mapping):
        keys = sort_keys(list(arg.keys()))
        parts = [
            f"{_fmt_arg(k, verb, sp, depth + 1)}:{_fmt_arg(arg[k], verb, sp, depth + 1)}"
            for k in keys
        ]
        return "map[" + " ".join(parts) + "]"
    if isinstance(arg, GoStruct):
        body = " ".join(_fmt_arg(v, verb, sp, depth + 1) for v in arg.fields.values())
        return ("&" if arg.pointer and depth == 0 else "") + "{" + body + "}"
    return sp.pad(format_value(arg))


def sprintf(fmt: str, args: list[object]) -> str:
    """Go `fmt.Sprintf(fmt, args...)`."""
    out: list[str] = []
    argn = 0
    i, n = 0, len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        sp = _Spec()
        while i < n and fmt[i] in "+-# 0":
            c = fmt[i]
            sp.plus |= c == "+"
            sp.minus |= c == "-"
            sp.sharp |= c == "#"
            sp.space |= c == " "
            sp.zero |= c == "0"
            i += 1
        if i < n and fmt[i] == "*":
            i += 1
            width = args[argn] if argn < len(args) else None
            argn += 1
            if isinstance(width, int) and not isinstance(width, bool):
                sp.width = abs(width)
                sp.minus |= width < 0
            else:
                out.append("%!(BADWIDTH)")
        else:
            start = i
            while i < n and fmt[i].isdigit():
                i += 1
            sp.width = int(fmt[start:i]) if i > start else None
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                i += 1
                prec = args[argn] if argn < len(args) else None
                argn += 1
                if isinstance(prec, int) and not isinstance(prec, bool) and prec >= 0:
                    sp.prec = prec
                else:
                    out.append("%!(BADPREC)")
            else:
                start = i
                while i < n and fmt[i].isdigit():
                    i += 1
                sp.prec = int(fmt[start:i]) if i > start else 0
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif argn >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(_fmt_arg(args[argn], verb, sp))
            argn += 1
    if argn < len(args):
        extra = [
            "<nil>" if a is None or a is NO_VALUE else f"{type_name(a)}={format_value(a)}"
            for a in args[argn:]
        ]
        out.append("%!(EXTRA " + ", ".join(extra) + ")")
    return "".join(out)
