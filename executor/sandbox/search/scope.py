"""A query of the plan as a scope: the repositories, revisions, paths and result type it
asks for, compiled once before any repository is searched.

Semantics (no search index, the sandbox's repositories): `repo:` regexes are
case-insensitive, as Sourcegraph's repository filters are; `repo:R@rev1:rev2` and `rev:` name
revisions; `file:`, `lang:` and the `has.`/`contains.` predicates filter paths; `type:`,
`select:`, `count:`, `case:`, `fork:`, `archived:`, `visibility:` as in
`evaluate.py`'s docstring. Facts: `internal/search/query/types.go`, `predicate.go`.

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from executor.sandbox.search.languages import Language, resolve_language
from executor.sandbox.search.parser import parse
from executor.sandbox.search.tree import (
    Basic,
    Labels,
    Node,
    Operator,
    Parameter,
    Pattern,
    QueryError,
    SearchType,
)
from executor.sandbox.search.validate import compile_regexp, parse_bool, yes_no_only

__all__ = ["Content", "RepoHas", "Scope", "candidates", "leaf_content", "scope_of"]


@dataclass(frozen=True)
class Content:
    """A content or path pattern: a literal or a regexp."""

    value: str
    regexp: bool

    def regex(self, case_sensitive: bool) -> re.Pattern[str]:
        source = self.value if self.regexp else re.escape(self.value)
        return re.compile(source, 0 if case_sensitive else re.IGNORECASE)


@dataclass(frozen=True)
class RepoHas:
    path: re.Pattern[str] | None
    content: Content | None
    negated: bool


@dataclass
class Scope:
    repo_in: list[tuple[re.Pattern[str], list[str]]] = field(default_factory=list)
    repo_out: list[re.Pattern[str]] = field(default_factory=list)
    file_in: list[re.Pattern[str]] = field(default_factory=list)
    file_out: list[re.Pattern[str]] = field(default_factory=list)
    lang_in: list[Language] = field(default_factory=list)
    lang_out: list[Language] = field(default_factory=list)
    file_contains: list[tuple[Content, bool]] = field(default_factory=list)
    repo_has: list[RepoHas] = field(default_factory=list)
    case_sensitive: bool = False
    result_type: str = "file"
    select_repo: bool = False
    nothing: bool = False
    count: int | None = None
    pattern: Node | None = None

    @property
    def filters_paths(self) -> bool:
        return bool(
            self.file_in or self.file_out or self.lang_in or self.lang_out or self.file_contains
        )

    def keeps(self, path: str) -> bool:
        return (
            all(r.search(path) for r in self.file_in)
            and not any(r.search(path) for r in self.file_out)
            and all(lang.matches(path) for lang in self.lang_in)
            and not any(lang.matches(path) for lang in self.lang_out)
        )


_UNSUPPORTED_TYPES = {
    "diff": "type:diff needs Sourcegraph's commit search, which the sandbox does not have",
    "commit": "type:commit needs Sourcegraph's commit search, which the sandbox does not have",
    "symbol": "type:symbol needs Sourcegraph's symbol index, which the sandbox does not have",
}


def _flags(case_sensitive: bool) -> int:
    return 0 if case_sensitive else re.IGNORECASE


def _content_of(text: str, search_type: SearchType) -> Content:
    """A predicate argument (`has.content(C)`), read as a pattern of the query's type."""
    regexp = search_type is SearchType.REGEX
    if len(text) > 1 and text.startswith("/") and text.endswith("/"):
        text, regexp = text[1:-1], True
    return Content(text, regexp)


def _predicate(param: Parameter, scope: Scope, search_type: SearchType) -> None:
    name, _, rest = param.value.partition("(")
    args = rest[:-1]
    if param.field == "file" and name in ("has.content", "contains.content"):
        scope.file_contains.append((_content_of(args, search_type), param.negated))
        return
    flags = _flags(scope.case_sensitive)
    if param.field == "repo" and name in ("has.path", "contains.path"):
        scope.repo_has.append(RepoHas(re.compile(args, flags), None, param.negated))
        return
    if param.field == "repo" and name in ("has.content", "contains.content"):
        scope.repo_has.append(RepoHas(None, _content_of(args, search_type), param.negated))
        return
    if param.field == "repo" and name in ("has.file", "contains.file"):
        path, content = _file_predicate(args, search_type, flags)
        scope.repo_has.append(RepoHas(path, content, param.negated))
        return
    raise QueryError(
        f"the sandbox cannot evaluate {param.field}:{param.value} (it has no search index;"
        " it answers repo:has.path, repo:has.file, repo:has.content and file:has.content)"
    )


def _file_predicate(
    args: str, search_type: SearchType, flags: int
) -> tuple[re.Pattern[str] | None, Content | None]:
    """`has.file(path:P content:C)`, or `has.file(P)`."""
    nodes = parse(args, SearchType.REGEX)
    params = nodes[0].operands if nodes and isinstance(nodes[0], Operator) else nodes
    path: re.Pattern[str] | None = None
    content: Content | None = None
    for node in params:
        if isinstance(node, Parameter) and node.field.lower() in ("path", "file", "f"):
            path = re.compile(node.value, flags)
        elif isinstance(node, Parameter) and node.field.lower() == "content":
            content = _content_of(node.value, search_type)
        elif isinstance(node, Pattern):
            path = re.compile(node.value, flags)
    if path is None and content is None:
        raise QueryError(f"invalid predicate value: empty has.file({args})")
    return path, content


def scope_of(basic: Basic, search_type: SearchType) -> Scope:
    scope = Scope(pattern=basic.pattern)
    for param in basic.values("case"):
        scope.case_sensitive = parse_bool(param.value)
    flags = _flags(scope.case_sensitive)
    for param in basic.parameters:
        name, value = param.field, param.value
        if param.labels & Labels.IsPredicate:
            _predicate(param, scope, search_type)
        elif name == "repo":
            regex, _, revs = value.partition("@")
            compiled = compile_regexp(regex)
            compiled = re.compile(compiled.pattern, re.IGNORECASE)
            if param.negated:
                scope.repo_out.append(compiled)
            else:
                scope.repo_in.append((compiled, [r for r in revs.split(":") if r]))
        elif name == "file":
            target = scope.file_out if param.negated else scope.file_in
            target.append(re.compile(compile_regexp(value).pattern, flags))
        elif name == "repohasfile":
            scope.repo_has.append(RepoHas(re.compile(value, flags), None, param.negated))
        elif name == "lang":
            (scope.lang_out if param.negated else scope.lang_in).append(resolve_language(value))
        elif name == "type":
            if value in _UNSUPPORTED_TYPES:
                raise QueryError(_UNSUPPORTED_TYPES[value])
            if value not in ("file", "path", "repo"):
                raise QueryError(f'invalid value "{value}" for field "type"')
            scope.result_type = value
        elif name == "select":
            _select(value, scope)
        elif name in ("fork", "archived"):
            scope.nothing |= yes_no_only(value) == "only"
        elif name == "count":
            scope.count = int(value)
        elif name == "context" and value != "global":
            raise QueryError(f'the sandbox has no search contexts: "context:{value}"')
        elif name in ("repohascommitafter", "author", "committer", "message", "before", "after"):
            raise QueryError(
                f"{name}: needs Sourcegraph's commit search, which the sandbox does not have"
            )
    for param in basic.values("visibility"):
        scope.nothing |= param.value.lower() == "private"
    return scope


def _select(value: str, scope: Scope) -> None:
    if value == "repo":
        scope.select_repo = True
    elif value not in ("file", "content"):
        raise QueryError(
            f"the sandbox answers select:repo, select:file and select:content, not select:{value}"
        )


def candidates(scope: Scope, name: str) -> list[str | None] | None:
    """The revisions to search in repository `name`, or None if it is out of scope."""
    if scope.nothing or any(r.search(name) for r in scope.repo_out):
        return None
    revs: list[str] = []
    for regex, wanted in scope.repo_in:
        if not regex.search(name):
            return None
        revs = wanted or revs
    return list(revs) or [None]


def leaf_content(pattern: Pattern) -> Content:
    return Content(pattern.value, not pattern.labels & (Labels.Literal | Labels.Structural))
