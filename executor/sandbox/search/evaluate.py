"""Answering a planned query over the sandbox's hosted repositories with git, without an index.

Each disjunct of the plan (`query.plan_query`) scopes repositories and files, then matches
its pattern expression per file (Sourcegraph's `and`/`or`/`not` apply to whole files):

* `repo:` (and `repo:R@rev1:rev2`, `rev:`) and `-repo:`: regexes on the name, always
  case-insensitive; a query names revisions, else each repository's default branch (`HEAD`).
* `file:`/`-file:` (regexes on paths), `lang:`/`-lang:` (`languages.py`), case-insensitive
  unless `case:yes`; `file:has.content(C)`, `repo:has.path(P)`, `repo:has.file(path:P
  content:C)`, `repo:has.content(C)` (and their `contains.` names, `repohasfile:`).
* `type:file` (the default): patterns search file contents (`git grep -F` for literals,
  `git grep -P` for regexps, `-i` unless `case:yes`); `type:path`: patterns match paths;
  `type:repo`: patterns match repository names. Without a pattern, `file:`/`lang:` filters
  give path matches and plain scopes give repository matches. `type:diff`, `type:commit`
  and `type:symbol` need Sourcegraph's commit and symbol search: refused.
* `select:repo` keeps repositories only; `count:N` caps the results (`count:all` none).
* `fork:`, `archived:`, `visibility:`: hosted repositories are public, not forks, not
  archived, so `fork:only`, `archived:only` and `visibility:private` match nothing.

Per repository at most one `rev-parse`, one `ls-tree` (only when the whole tree matters:
path matches, `not`, `type:path`) and one `git grep` per content pattern (an `or` of
patterns of one kind is one), on a small thread pool: a spec over 1,000 repositories stays at
one to three short git calls per repository, and repositories a `repo:` filter drops cost
none. Git runs with a minimal environment and no system config on the sandbox's own
repositories.

Facts from Sourcegraph: `internal/search/query/types.go` (result types), `validate.go`,
`internal/search/job/jobutil` (`select:`), `internal/batches/service/workspace_resolver.go`
(query repositories use the default branch; file matches are the matched paths).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from executor.sandbox.search.query import plan_query
from executor.sandbox.search.scope import (
    Content,
    RepoHas,
    Scope,
    candidates,
    leaf_content,
    scope_of,
)
from executor.sandbox.search.tree import Node, Operator, Or, Pattern, QueryError, SearchType

__all__ = ["RepositoryMatch", "run_git", "search_repositories"]

_WORKERS = 4


class Repository(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def path(self) -> str: ...


R = TypeVar("R", bound=Repository)


@dataclass
class RepositoryMatch(Generic[R]):
    """A matched repository revision: `ref` is a full ref name (or the revision as given)."""

    repo: R
    ref: str
    commit: str
    files: set[str] = field(default_factory=set)


def run_git(path: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """git on a hosted repository, with a minimal environment and no system config."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-C", path, *args], capture_output=True, env=env, check=False, timeout=60
    )


class _Repo:
    """One repository's git facts, fetched at most once per search."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._trees: dict[str, list[str]] = {}
        self._greps: dict[tuple[str, tuple[Content, ...], bool], set[str]] = {}

    def revision(self, rev: str | None) -> tuple[str, str] | None:
        """(ref, commit) of `rev` or of `HEAD`; None if it does not resolve."""
        name = rev or "HEAD"
        done = run_git(self.path, "rev-parse", f"{name}^{{commit}}", "--symbolic-full-name", name)
        lines = done.stdout.decode("utf-8", "surrogateescape").split("\n")
        if done.returncode != 0 or not lines[0]:
            return None
        ref = lines[1] if len(lines) > 1 and lines[1] else name
        return ref, lines[0]

    def paths(self, commit: str) -> list[str]:
        if commit not in self._trees:
            done = run_git(self.path, "ls-tree", "-r", "-z", "--name-only", "--full-tree", commit)
            out = done.stdout.decode("utf-8", "surrogateescape").split("\0")
            self._trees[commit] = [p for p in out if p]
        return self._trees[commit]

    def grep(self, commit: str, content: Content, case_sensitive: bool) -> set[str]:
        return self.grep_any(commit, (content,), case_sensitive)

    def grep_any(
        self, commit: str, contents: tuple[Content, ...], case_sensitive: bool
    ) -> set[str]:
        """Files holding any of `contents` (all literals or all regexps): one `git grep`."""
        key = (commit, contents, case_sensitive)
        if key not in self._greps:
            args = ["grep", "-l", "-z", "-I", "-P" if contents[0].regexp else "-F"]
            if not case_sensitive:
                args.append("-i")
            patterns = [arg for c in contents for arg in ("-e", c.value)]
            done = run_git(self.path, *args, *patterns, commit, "--")
            if done.returncode not in (0, 1):
                error = done.stderr.decode("utf-8", "replace").strip()
                shown = " or ".join(repr(c.value) for c in contents)
                raise QueryError(f"cannot search for {shown}: {error}")
            prefix = f"{commit}:"
            out = done.stdout.decode("utf-8", "surrogateescape").split("\0")
            self._greps[key] = {p.removeprefix(prefix) for p in out if p}
        return self._greps[key]


class _Evaluation:
    """One scope over one repository revision."""

    def __init__(self, scope: Scope, repo: _Repo, name: str, commit: str) -> None:
        self.scope, self.repo, self.name, self.commit = scope, repo, name, commit
        self._universe: set[str] | None = None

    def universe(self) -> set[str]:
        if self._universe is None:
            scope = self.scope
            paths = {p for p in self.repo.paths(self.commit) if scope.keeps(p)}
            for content, negated in scope.file_contains:
                found = self.repo.grep(self.commit, content, scope.case_sensitive)
                paths = paths - found if negated else paths & found
            self._universe = paths
        return self._universe

    def files(self, node: Node) -> set[str]:
        """Files (or paths) matching a pattern expression."""
        if isinstance(node, Operator):
            if node.kind is Or and self.scope.result_type == "file":
                merged = self._or_in_one_grep(node)
                if merged is not None:
                    return merged
            sets = [self.files(n) for n in node.operands]
            if node.kind is Or:
                return set().union(*sets)
            return set.intersection(*sets)
        assert isinstance(node, Pattern)
        content = leaf_content(node)
        if self.scope.result_type == "path":
            regex = content.regex(self.scope.case_sensitive)
            found = {p for p in self.universe() if regex.search(p)}
        else:
            found = self._scoped(self.repo.grep(self.commit, content, self.scope.case_sensitive))
        return self.universe() - found if node.negated else found

    def _scoped(self, found: set[str]) -> set[str]:
        """Grep results within the path filters, without listing the tree when possible."""
        if self.scope.file_contains:
            return found & self.universe()
        return {p for p in found if self.scope.keeps(p)}

    def _or_in_one_grep(self, node: Operator) -> set[str] | None:
        """`a or b` of plain patterns of one kind: one `git grep -e a -e b`."""
        leaves = [n for n in node.operands if isinstance(n, Pattern) and not n.negated]
        contents = tuple(leaf_content(n) for n in leaves)
        if len(leaves) != len(node.operands) or len({c.regexp for c in contents}) != 1:
            return None
        return self._scoped(self.repo.grep_any(self.commit, contents, self.scope.case_sensitive))

    def repo_name_matches(self, node: Node) -> bool:
        if isinstance(node, Operator):
            results = [self.repo_name_matches(n) for n in node.operands]
            return any(results) if node.kind is Or else all(results)
        assert isinstance(node, Pattern)
        found = leaf_content(node).regex(self.scope.case_sensitive).search(self.name) is not None
        return found != node.negated

    def repo_has(self, has: RepoHas) -> bool:
        paths: set[str] | None = None
        if has.path is not None:
            paths = {p for p in self.repo.paths(self.commit) if has.path.search(p)}
        if has.content is not None:
            found = self.repo.grep(self.commit, has.content, self.scope.case_sensitive)
            paths = found if paths is None else paths & found
        return bool(paths) != has.negated

    def result(self) -> set[str] | None:
        """The file matches (empty for a repository match), or None: no match."""
        scope = self.scope
        if not all(self.repo_has(h) for h in scope.repo_has):
            return None
        if scope.result_type == "repo" or scope.pattern is None:
            if scope.pattern is not None and not self.repo_name_matches(scope.pattern):
                return None
            if not scope.filters_paths:
                return set()
            paths = self.universe()
            return (set() if scope.result_type == "repo" else paths) if paths else None
        files = self.files(scope.pattern)
        return files or None


def _search_one(scopes: Sequence[Scope], repo: R) -> list[RepositoryMatch[R]]:
    git = _Repo(repo.path)
    found: dict[str, RepositoryMatch[R]] = {}
    for scope in scopes:
        for rev in candidates(scope, repo.name) or []:
            resolved = git.revision(rev)
            if resolved is None:
                continue
            ref, commit = resolved
            files = _Evaluation(scope, git, repo.name, commit).result()
            if files is None:
                continue
            match = found.setdefault(ref, RepositoryMatch(repo, ref, commit))
            match.files |= set() if scope.select_repo else files
    return list(found.values())


def search_repositories(
    query: str, repos: Iterable[R], default: SearchType = SearchType.STANDARD
) -> list[RepositoryMatch[R]]:
    """Every repository revision `query` matches, sorted by repository name and ref."""
    search_type, plan = plan_query(query, default)
    scopes = [scope_of(basic, search_type) for basic in plan]
    if not scopes:
        return []
    wanted = [r for r in repos if any(candidates(s, r.name) for s in scopes)]
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        per_repo = list(pool.map(lambda r: _search_one(scopes, r), wanted))
    matches = [m for found in per_repo for m in found]
    matches.sort(key=lambda m: (m.repo.name, m.ref))
    limits = [s.count for s in scopes if s.count is not None]
    return _capped(matches, max(limits)) if limits else matches


def _capped(matches: list[RepositoryMatch[R]], count: int) -> list[RepositoryMatch[R]]:
    """At most `count` results: a repository match counts one, a file match one each."""
    out: list[RepositoryMatch[R]] = []
    left = count
    for match in matches:
        if left <= 0:
            break
        files = sorted(match.files)[:left]
        out.append(RepositoryMatch(match.repo, match.ref, match.commit, set(files)))
        left -= max(1, len(files))
    return out
