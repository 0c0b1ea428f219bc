"""Sourcegraph's query validation (`internal/search/query/validate.go`), with its texts.

`validateField` (singular fields, negation, booleans, yes/no/only, counts, regexps,
languages, select paths of `internal/search/filter/select.go`), `validateRepoRevPair`,
`validateRepoHasFile`, `validateCommitParameters` and `validatePattern`, on one `Basic` query
of a plan. Regular expressions compile with Python's `re` after refusing what RE2 lacks
(lookaround, backreferences); the common errors are worded as Go's `regexp/syntax` words
them (`missing closing ]`, `missing argument to repetition operator`, …).

Pure: no I/O.
"""

from __future__ import annotations

import re

from executor.sandbox.search.languages import resolve_language
from executor.sandbox.search.tree import (
    Basic,
    Labels,
    Node,
    Operator,
    Parameter,
    Pattern,
    QueryError,
)

__all__ = ["compile_regexp", "parse_bool", "validate", "yes_no_only"]


_YES_NO_ONLY = {
    "y": "yes", "Y": "yes", "yes": "yes", "YES": "yes", "Yes": "yes",
    "n": "no", "N": "no", "no": "no", "NO": "no", "No": "no",
    "o": "only", "only": "only", "ONLY": "only", "Only": "only",
}  # fmt: skip
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def yes_no_only(value: str) -> str | None:
    """`parseYesNoOnly`: "yes", "no", "only" or None."""
    if value in _YES_NO_ONLY:
        return _YES_NO_ONLY[value]
    if value in _GO_TRUE:
        return "yes"
    if value in _GO_FALSE:
        return "no"
    return None


def parse_bool(value: str) -> bool:
    """`parseBool`: Go's `strconv.ParseBool` plus y/yes/n/no."""
    lowered = value.lower()
    if lowered in ("y", "yes") or value in _GO_TRUE:
        return True
    if lowered in ("n", "no") or value in _GO_FALSE:
        return False
    raise QueryError(f'invalid boolean "{value}"')


_PERL_ONLY = re.compile(r"\(\?<?[=!]|\\[1-9]")


def compile_regexp(value: str) -> re.Pattern[str]:
    """Compile `value`, refusing what Go's RE2 refuses, with Go's `regexp/syntax` texts."""
    perl = _PERL_ONLY.search(value)
    if perl is not None:
        text = perl.group()
        kind = (
            "invalid escape sequence"
            if text.startswith("\\")
            else "invalid or unsupported Perl syntax"
        )
        raise QueryError(f"error parsing regexp: {kind}: `{text}`")
    try:
        return re.compile(value)
    except re.error as err:
        raise QueryError(f"error parsing regexp: {_go_reason(err, value)}") from err


def _go_reason(err: re.error, value: str) -> str:
    """Python's reason in Go's words (`regexp/syntax` `ErrorCode` and `Expr`)."""
    pos = err.pos or 0
    if err.msg.startswith("unterminated character set"):
        return f"missing closing ]: `{value[pos:]}`"
    if err.msg.startswith(("nothing to repeat", "multiple repeat")):
        return f"missing argument to repetition operator: `{value[pos : pos + 1]}`"
    if err.msg.startswith("bad escape (end of pattern)"):
        return "trailing backslash at end of expression: ``"
    if err.msg.startswith("missing ), unterminated subpattern"):
        return f"missing closing ): `{value}`"
    if err.msg.startswith("unbalanced parenthesis"):
        return f"unexpected ): `{value}`"
    return f"{err.msg}: `{value}`"


# `filter.SelectPathFromString`: the select paths Sourcegraph knows.
_SELECT = {
    "repo": set(), "content": set(), "commit": {"diff"}, "file": {"directory", "path", "owners"},
    "symbol": {
        "file", "module", "namespace", "package", "class", "method", "property", "field",
        "constructor", "enum", "interface", "function", "variable", "constant", "string",
        "number", "boolean", "array", "object", "key", "null", "enum-member", "struct",
        "event", "operator", "type-parameter",
    },
}  # fmt: skip
_SELECT_DEEP = {("commit", "diff"): {"added", "removed"}}


def _validate_select(value: str) -> None:
    parts = value.split(".")
    if parts[0] not in _SELECT:
        raise QueryError(f'invalid field "{parts[0]}" on select path "{value}"')
    allowed = _SELECT[parts[0]]
    if len(parts) > 1 and parts[1] not in allowed:
        raise QueryError(f'invalid field "{parts[1]}" on select path "{value}"')
    deeper = _SELECT_DEEP.get((parts[0], parts[1])) if len(parts) > 1 else None
    if len(parts) > 2 and (deeper is None or parts[2] not in deeper or len(parts) > 3):
        raise QueryError(f'invalid field "{parts[2]}" on select path "{value}"')


_SINGULAR = frozenset(
    {"case", "context", "patterntype", "content", "visibility", "repohascommitafter",
     "index", "fork", "archived", "count", "rule", "timeout", "rev", "select"}
)  # fmt: skip
_NOT_NEGATABLE = _SINGULAR | {"type", "before", "after"}
_KNOWN = _SINGULAR | {"", "repo", "file", "lang", "type", "repohasfile", "before", "after",
                      "author", "committer", "message"}  # fmt: skip


def _validate_field(param: Parameter, seen: set[str]) -> None:
    name, value = param.field, param.value
    if name not in _KNOWN:
        raise QueryError(f'unrecognized field "{name}"')
    if name in _SINGULAR and name in seen:
        raise QueryError(f'field "{name}" may not be used more than once')
    if param.labels & Labels.IsPredicate:
        return
    if name in ("repo", "file", "repohasfile", "author", "committer", "message"):
        compile_regexp(value)
    elif name == "case":
        parse_bool(value)
    elif name == "lang":
        resolve_language(value)
    elif name in ("index", "fork", "archived") and yes_no_only(value) is None:
        raise QueryError(
            f'invalid value "{value}" for field "{name}". Valid values are: yes, only, no'
        )
    elif name == "count":
        _validate_count(value)
    elif name == "select":
        _validate_select(value)
    if param.negated and name in _NOT_NEGATABLE:
        raise QueryError(f'field "{name}" does not support negation')


def _validate_count(value: str) -> None:
    if not re.fullmatch(r"[+-]?[0-9]+", value):
        raise QueryError(f"field count has value {value}, {value} is not a number")
    count = int(value)
    if count > 2**31 - 1 or count < -(2**31):
        raise QueryError("field count has a value that is out of range, try making it smaller")
    if count <= 0:
        raise QueryError("field count requires a positive number")


def validate(basic: Basic) -> None:
    """`validate`: every check of `validate.go` that applies without an index."""
    seen: set[str] = set()
    for param in basic.parameters:
        _validate_field(param, seen)
        seen.add(param.field)
    for pattern in _patterns(basic.pattern):
        if pattern.labels & Labels.Regexp:
            compile_regexp(pattern.value)
    repos = basic.values("repo")
    if basic.values("rev"):
        if any(not p.negated and "@" in p.value for p in repos):
            raise QueryError(
                "invalid syntax. You specified both @ and rev: for a repo: filter and I don't"
                " know how to interpret this. Remove either @ or rev: and try again"
            )
        if not repos:
            raise QueryError(
                "invalid syntax. The query contains `rev:` without `repo:`. Add a `repo:`"
                " filter and try again"
            )
        if repos[-1].value == "":
            raise QueryError(
                "invalid syntax. The query contains `rev:` but `repo:` is empty. Add a"
                " non-empty `repo:` filter and try again"
            )
    types = {p.value for p in basic.values("type")}
    if basic.values("repohasfile") and "symbol" in {t.lower() for t in types}:
        raise QueryError(
            "repohasfile is not compatible for type:symbol. Subscribe to"
            " https://github.com/sourcegraph/sourcegraph/issues/4610 for updates"
        )
    commit_fields = [p.field for p in basic.parameters if p.field in _COMMIT_FIELDS]
    if commit_fields and not types & {"commit", "diff"}:
        raise QueryError(
            f"your query contains the field '{commit_fields[-1]}', which requires type:commit"
            " or type:diff in the query"
        )


_COMMIT_FIELDS = ("author", "before", "after", "message")


def _patterns(node: Node | None) -> list[Pattern]:
    if node is None:
        return []
    if isinstance(node, Pattern):
        return [node]
    if isinstance(node, Operator):
        return [p for child in node.operands for p in _patterns(child)]
    return []
