"""Sourcegraph's template helpers: `join split replace join_if matches`.

Owns: the helper FuncMap of src-cli `lib/batches/template/templating.go` (`builtins`), with
the Go parameter types that decide which arguments are accepted. Knows nothing of contexts.

Facts (src-cli `templating.go`):
- `join` is `strings.Join(elems []string, sep string)`: JSON/YAML arrays (`[]interface {}`)
  are rejected with `wrong type for value; expected []string; got []interface {}`.
- `split` is `strings.Split`: `split "" ","` is `[""]` (prints `[]`), an empty separator
  splits into characters.
- `replace` is `strings.ReplaceAll`; an empty `old` inserts `new` around every character.
- `join_if sep elems...` drops empty strings only.
- `matches in pattern` is gobwas/glob `Compile(pattern).Match(in)`; a bad pattern is
  `error calling matches: <msg>`.
- Not ported: `shellquote_join`/`shellquote_split`, which exist only in an unmerged src-cli
  branch (VULN-91); `main` renders file lists unquoted.
"""

from __future__ import annotations

from .glob import GlobError, compile_glob
from .gofunc import CallError, GoFunc
from .values import StrList

__all__ = ["SG_HELPERS"]


def _split(s: str, sep: str) -> StrList:
    if sep == "":
        return StrList(list(s))
    return StrList(s.split(sep))


def _join_if(sep: str, *elems: str) -> str:
    return sep.join(e for e in elems if e != "")


def _matches(value: str, pattern: str) -> bool:
    try:
        return compile_glob(pattern)(value)
    except GlobError as e:
        raise CallError(str(e)) from None


SG_HELPERS: dict[str, GoFunc] = {
    "join": GoFunc(lambda elems, sep: sep.join(elems), ("[]string", "string")),
    "split": GoFunc(_split, ("string", "string")),
    "replace": GoFunc(lambda s, old, new: s.replace(old, new), ("string", "string", "string")),
    "join_if": GoFunc(_join_if, ("string",), "string"),
    "matches": GoFunc(_matches, ("string", "string")),
}
