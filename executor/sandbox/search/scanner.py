"""Sourcegraph's query scanners: fields, values, quoted and balanced patterns, predicates.

Ports the `Scan*` functions of `internal/search/query/parser.go` and the field tables of
`fields.go` (every field name the scanner recognises, and their aliases) and `predicate.go`
(predicate names per field). Any other `word:` text is not a field: `entrypoint:` in
`entrypoint: ["x"]` scans as part of a pattern.

Pure: no I/O.
"""

from __future__ import annotations

from executor.sandbox.search.tree import QueryError

__all__ = [
    "ALIASES",
    "ALL_FIELDS",
    "PREDICATES",
    "scan_any_pattern",
    "scan_balanced_pattern",
    "scan_delimited",
    "scan_field",
    "scan_predicate",
    "scan_value",
]

ALL_FIELDS = frozenset(
    {
        "case", "repo", "r", "context", "g", "file", "f", "path", "fork", "archived", "lang",
        "l", "language", "type", "patterntype", "content", "visibility", "repohasfile",
        "repohascommitafter", "before", "until", "after", "since", "author", "committer",
        "message", "m", "msg", "index", "count", "timeout", "rule", "rev", "revision",
        "select",
    }
)  # fmt: skip
ALIASES = {
    "r": "repo",
    "f": "file",
    "path": "file",
    "l": "lang",
    "language": "lang",
    "since": "after",
    "until": "before",
    "m": "message",
    "msg": "message",
    "revision": "rev",
}

# `predicate.go`: predicate names per field (`repo:has.file(...)`).
PREDICATES = {
    "repo": frozenset(
        {
            "contains.file", "has.file", "contains.path", "has.path", "contains.content",
            "has.content", "contains.commit.after", "has.commit.after", "has.description",
            "has.tag", "has", "has.key", "has.meta", "has.topic", "dependencies", "deps",
            "dependents", "revdeps",
        }
    ),
    "file": frozenset({"contains.content", "has.content", "has.owner", "has.contributor"}),
}  # fmt: skip


def scan_field(buf: str) -> tuple[str, bool, int]:
    """`ScanField`: an optional `-`, letters, `:`; only known fields. (field, negated, len)."""
    if not buf or not (buf[0] == "-" or _is_letter(buf[0])):
        return "", False, 0
    i = 1
    while i < len(buf) and _is_letter(buf[i]):
        i += 1
    if i >= len(buf) or buf[i] != ":" or buf[:i] == "-":
        return "", False, 0
    name = buf[:i]
    negated = name.startswith("-")
    if negated:
        name = name[1:]
    if name.lower() not in ALL_FIELDS:
        return "", False, 0
    return name, negated, i + 1


def _is_letter(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def scan_any_pattern(buf: str) -> tuple[str, int]:
    """`ScanAnyPattern`: everything up to whitespace."""
    i = 0
    while i < len(buf) and not buf[i].isspace():
        i += 1
    return buf[:i], i


def scan_value(buf: str, allow_dangling_parens: bool) -> tuple[str, int]:
    """`ScanValue`: up to whitespace or (unless allowed) a parenthesis; keeps `\\x` escapes."""
    out: list[str] = []
    i = 0
    while i < len(buf):
        ch = buf[i]
        if ch.isspace():
            break
        if ch in "()":
            if allow_dangling_parens:
                out.append(ch)
                i += 1
                continue
            break
        if ch == "\\" and i + 1 < len(buf):
            out.append(buf[i : i + 2])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out), i


def _keep_scanning(rest: str) -> bool:
    if scan_field(rest)[0]:
        return False
    head = rest[:4].lower()
    return not (head.startswith("and ") or head.startswith("or ") or head.startswith("not "))


def scan_balanced_pattern(buf: str) -> tuple[str, int, bool]:
    """`ScanBalancedPattern`: a pattern whose parentheses balance and hold no field or
    operator, e.g. `myFunction(arg1, arg2)`."""
    if not _keep_scanning(buf):
        return "", 0, False
    out: list[str] = []
    balanced = 0
    i = 0
    while i < len(buf):
        ch = buf[i]
        if ch.isspace() and balanced == 0:
            break
        i += 1
        if ch == "(":
            if not _keep_scanning(buf[i:]):
                return "", 0, False
            balanced += 1
            out.append(ch)
        elif ch == ")":
            balanced -= 1
            if balanced < 0:
                i -= 1
                balanced = 0
                break
            out.append(ch)
        elif ch.isspace():
            if not _keep_scanning(buf[i:]):
                return "", 0, False
            out.append(ch)
        elif ch == "\\":
            if i < len(buf):
                out.append("\\" + buf[i])
                i += 1
                continue
            out.append(ch)
        else:
            out.append(ch)
    return "".join(out), i, balanced == 0


def scan_delimited(buf: str, strict: bool, delimiter: str) -> tuple[str, int]:
    """`ScanDelimited`: a value in `delimiter`s with escapes; raises QueryError."""
    assert buf[:1] == delimiter, "scan_delimited expects the buffer to start with the delimiter"
    out: list[str] = []
    i = 1
    closed = False
    while i < len(buf):
        ch = buf[i]
        i += 1
        if ch == delimiter:
            closed = True
            break
        if ch != "\\":
            out.append(ch)
            continue
        if i >= len(buf):
            raise QueryError("unterminated escape sequence")
        ch = buf[i]
        i += 1
        if ch in "abfv":
            out.append("\\" + ch)
        elif ch in _DELIMITED_ESCAPES:
            out.append(_DELIMITED_ESCAPES[ch])
        elif ch in ("\\", delimiter):
            out.append(ch)
        elif strict:
            raise QueryError("unrecognized escape sequence")
        else:
            out.append("\\" + ch)
        if i >= len(buf):
            raise QueryError(f"unterminated literal: expected {delimiter}")
    if not closed:
        raise QueryError(f"unterminated literal: expected {delimiter}")
    return "".join(out), i


_DELIMITED_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def _scan_balanced_parens(buf: str) -> tuple[str, int, bool]:
    balance = 1
    i = 1
    while balance:
        if i >= len(buf):
            return "", 0, False
        ch = buf[i]
        i += 1
        if ch == "(":
            balance += 1
        elif ch == ")":
            balance -= 1
        elif ch == "\\":
            i += 1
    return buf[:i], i, True


def scan_predicate(name: str, buf: str) -> tuple[str, int, bool]:
    """`ScanPredicate`: `has.file(...)` after a field with registered predicates."""
    table = PREDICATES.get(ALIASES.get(name, name))
    if table is None:
        return "", 0, False
    i = 0
    while i < len(buf) and (buf[i].isalpha() or buf[i] == "."):
        i += 1
    predicate = buf[:i]
    if predicate not in table or buf[i : i + 1] != "(":
        return "", 0, False
    params, advance, ok = _scan_balanced_parens(buf[i:])
    if not ok:
        return "", 0, False
    return predicate + params, i + advance, True
