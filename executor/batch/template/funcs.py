"""Go `text/template`'s builtin functions (`funcs.go builtins()`).

Owns: `and or not eq ne lt le gt ge len index slice print printf println html js urlquery
call` with Go's argument rules and error texts (Go 1.26 wording).
`and`/`or` short-circuit inside the evaluator; here they only declare their signature.
Knows nothing of Sourcegraph's helpers (see `sg_funcs.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .gofunc import ANY, VALUE, CallError, GoFunc
from .printf import sprintf
from .printing import format_value, sprint, sprintln
from .values import NO_VALUE, Boxed, StrList, is_list, is_true, type_name

__all__ = ["BUILTINS", "html_escape", "js_escape", "url_query_escape"]

_BAD_TYPE = "invalid type for comparison"


def _indirect(v: object) -> object:
    """`indirectInterface`: a boxed nil becomes the invalid value."""
    if isinstance(v, Boxed):
        return NO_VALUE if v.value is None else v.value
    return v


def _kind(v: object) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, complex):
        return "complex"
    if isinstance(v, str):
        return "string"
    return None


def _incompatible(a: object, b: object) -> CallError:
    return CallError(f"incompatible types for comparison: {type_name(a)} and {type_name(b)}")


def _eq(arg1: object, *rest: object) -> bool:
    a = _indirect(arg1)
    if not rest:
        raise CallError("missing argument for comparison")
    k1 = _kind(a)
    for arg in rest:
        b = _indirect(arg)
        k2 = _kind(b)
        if k1 != k2:
            if a is not NO_VALUE and a is not None and b is not NO_VALUE and b is not None:
                raise _incompatible(a, b)
            truth = False
        elif k1 is not None:
            truth = a == b
        elif a in (NO_VALUE, None) or b in (NO_VALUE, None):
            truth = (a in (NO_VALUE, None)) == (b in (NO_VALUE, None))
        else:
            raise CallError(f"non-comparable type {format_value(b)}: {type_name(b)}")
        if truth:
            return True
    return False


def _ne(a: object, b: object) -> bool:
    return not _eq(a, b)


def _lt(arg1: object, arg2: object) -> bool:
    a, b = _indirect(arg1), _indirect(arg2)
    k1, k2 = _kind(a), _kind(b)
    if k1 is None or k2 is None:
        raise CallError(_BAD_TYPE)
    if k1 != k2:
        raise _incompatible(a, b)
    if k1 in ("bool", "complex"):
        raise CallError(_BAD_TYPE)
    return bool(a < b)  # type: ignore[operator]


def _le(a: object, b: object) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: object, b: object) -> bool:
    return not _le(a, b)


def _ge(a: object, b: object) -> bool:
    return not _lt(a, b)


def _not(arg: object) -> bool:
    return not is_true(arg)


def _length(item: object) -> int:
    if item is NO_VALUE:
        raise CallError("len of untyped nil")
    v = item.value if isinstance(item, Boxed) else item
    if v is None:
        raise CallError("len of nil pointer")
    if isinstance(v, str):
        return len(v.encode("utf-8", "surrogateescape"))
    if is_list(v) or isinstance(v, Mapping):
        return len(v)  # type: ignore[arg-type]
    raise CallError(f"len of type {type_name(v)}")


def _index_arg(index: object, cap: int) -> int:
    index = _indirect(index)
    if isinstance(index, bool) or not isinstance(index, int):
        if index is NO_VALUE or index is None:
            raise CallError("cannot index slice/array with nil")
        raise CallError(f"cannot index slice/array with type {type_name(index)}")
    if index < 0 or index > cap:
        raise CallError(f"index out of range: {index}")
    return index


def _index(item: object, *indexes: object) -> object:
    cur = _indirect(item)
    if cur is NO_VALUE:
        raise CallError("index of untyped nil")
    for idx in indexes:
        cur = _indirect(cur)
        if cur is NO_VALUE or cur is None:
            raise CallError("index of nil pointer")
        if isinstance(cur, str):
            raw = cur.encode("utf-8", "surrogateescape")
            x = _index_arg(idx, len(raw))
            if x == len(raw):
                raise CallError("reflect: string index out of range")
            cur = raw[x]
        elif is_list(cur):
            assert isinstance(cur, list | tuple)
            x = _index_arg(idx, len(cur))
            if x == len(cur):  # Go's bounds check lets index == len through to reflect
                raise CallError("reflect: slice index out of range")
            cur = cur[x] if isinstance(cur, StrList) else Boxed(cur[x])
        elif isinstance(cur, Mapping):
            key = _indirect(idx)
            if key is NO_VALUE or key is None:
                key = ""  # reflect.Zero of the string key type
            elif not isinstance(key, str):
                raise CallError(f"value has type {type_name(key)}; should be string")
            cur = Boxed(cur.get(key))
        else:
            raise CallError(f"can't index item of type {type_name(cur)}")
    return cur


def _slice(item: object, *indexes: object) -> object:
    v = _indirect(item)
    if v is NO_VALUE:
        raise CallError("slice of untyped nil")
    if v is None:
        raise CallError("slice of nil pointer")
    if len(indexes) > 3:
        raise CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(v, str):
        if len(indexes) == 3:
            raise CallError("cannot 3-index slice a string")
        raw = v.encode("utf-8", "surrogateescape")
        length = len(raw)
    elif is_list(v):
        assert isinstance(v, list | tuple)
        length = len(v)
    else:
        raise CallError(f"can't slice item of type {type_name(v)}")
    idx = [0, length, 0]
    for i, x in enumerate(indexes):
        idx[i] = _index_arg(x, length)
    if idx[0] > idx[1]:
        raise CallError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise CallError(f"invalid slice index: {idx[1]} > {idx[2]}")
    if isinstance(v, str):
        return raw[idx[0] : idx[1]].decode("utf-8", "surrogateescape")
    assert isinstance(v, list | tuple)
    out = v[idx[0] : idx[1]]
    return StrList(out) if isinstance(v, StrList) else list(out)


def _eval_args(args: tuple[object, ...]) -> str:
    """`evalArgs` of html/js/urlquery: one string passes as is, else Sprint of printables."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(["<no value>" if a is None or a is NO_VALUE else a for a in args])


def html_escape(s: str) -> str:
    """`template.HTMLEscapeString`."""
    table = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\0": "\ufffd"}
    return "".join(table.get(c, c) for c in s)


def js_escape(s: str) -> str:
    """`template.JSEscapeString`."""
    table = {
        "\\": "\\\\",
        "'": "\\'",
        '"': '\\"',
        "<": "\\u003C",
        ">": "\\u003E",
        "&": "\\u0026",
        "=": "\\u003D",
    }
    out = []
    for c in s:
        if c in table:
            out.append(table[c])
        elif ord(c) < 0x20 or (ord(c) >= 0x80 and not c.isprintable()):
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def url_query_escape(s: str) -> str:
    """`url.QueryEscape`: space is `+`, unreserved bytes kept, the rest `%XX`."""
    safe = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
    out = []
    for byte in s.encode("utf-8", "surrogateescape"):
        if byte == 0x20:
            out.append("+")
        elif byte in safe:
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _call(name: str, fn: object, *args: object) -> object:
    target = _indirect(fn)
    if target is NO_VALUE or target is None:
        raise CallError("call of nil")
    if isinstance(target, GoFunc):
        return target.fn(*(_indirect(a) for a in args))
    if not callable(target):
        raise CallError(f"non-function {name} of type {type_name(target)}")
    return target(*(_indirect(a) for a in args))


def _b(fn: Callable[..., object], params: tuple[str, ...], variadic: str | None) -> GoFunc:
    return GoFunc(fn, params, variadic, builtin=True)


BUILTINS: dict[str, GoFunc] = {
    "and": _b(lambda *a: a[-1], (VALUE,), VALUE),
    # The evaluator prepends the callee's node text as `name` (Go 1.26 evalCall).
    "call": _b(_call, (VALUE,), VALUE),
    "html": _b(lambda *a: html_escape(_eval_args(a)), (), ANY),
    "index": _b(_index, (VALUE,), VALUE),
    "slice": _b(_slice, (VALUE,), VALUE),
    "js": _b(lambda *a: js_escape(_eval_args(a)), (), ANY),
    "len": _b(_length, (VALUE,), None),
    "not": _b(_not, (VALUE,), None),
    "or": _b(lambda *a: a[-1], (VALUE,), VALUE),
    "print": _b(lambda *a: sprint(list(a)), (), ANY),
    "printf": _b(lambda f, *a: sprintf(f, list(a)), ("string",), ANY),
    "println": _b(lambda *a: sprintln(list(a)), (), ANY),
    "urlquery": _b(lambda *a: url_query_escape(_eval_args(a)), (), ANY),
    "eq": _b(_eq, (VALUE,), VALUE),
    "ge": _b(_ge, (VALUE, VALUE), None),
    "gt": _b(_gt, (VALUE, VALUE), None),
    "le": _b(_le, (VALUE, VALUE), None),
    "lt": _b(_lt, (VALUE, VALUE), None),
    "ne": _b(_ne, (VALUE, VALUE), None),
}
