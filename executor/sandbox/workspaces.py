"""Workspace resolution: which (repository, branch, path) a batch spec runs in, over the
repositories the sandbox hosts.

Follows Sourcegraph's server-side resolver (`internal/batches/service/workspace_resolver.go`)
on a small, documented search subset:

`on: - repository: NAME [branch: B | branches: [B, …]]`
    The hosted repository NAME at its default branch (the hosted `HEAD`), or at each named
    branch (`no branch matching "B" found for repository NAME` otherwise). No file matches.
`on: - repositoriesMatchingQuery: QUERY`
    QUERY in Sourcegraph's query language, parsed and answered by `executor.sandbox.search`
    (filters, `and`/`or`/`not`, pattern types, its error texts); the default pattern type is
    `standard` for spec `version: 1` and `keyword` for `version: 2`
    (`determineDefaultPatternType`). Matched paths become the file matches; repositories
    matched without files have none. Query results use the default branch unless the query
    names a revision (`repo:NAME@REV`, `rev:`).
`workspaces: - rootAtLocationOf: FILE, in: GLOB, onlyFetchWorkspace: BOOL`
    For a repository whose name matches GLOB (empty = `*`; two matching configs is an error),
    every directory holding a path that ends in FILE (`(^|/)FILE$`) becomes a workspace; no
    such path, no workspace. Other repositories get one workspace at the root.
    `onlyFetchWorkspace` is forced off for the root. File matches are kept by path prefix.

Steps whose `if:` is statically false for the repository are skipped (`false`, a string not
`true` once trimmed, or a template that renders with only `repository.name`, `batch_change.*`,
literals and builtins, e.g. `${{ eq repository.name "x" }}`); a workspace left without steps
is dropped. Workspaces are sorted by
repository, branch and path. Repository IDs are GraphQL IDs `base64("Repository:<rowid>")`.

Knows git (read-only, on the hosted repositories) and the batch spec model; no HTTP, no SQL.
"""

from __future__ import annotations

import base64
import fnmatch
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from executor.batch.spec import BatchSpec, WorkspaceConfiguration
from executor.batch.template.errors import TemplateError
from executor.batch.template.exec import execute
from executor.batch.template.funcs import BUILTINS
from executor.batch.template.gofunc import GoFunc
from executor.batch.template.parse import parse
from executor.sandbox.search.evaluate import run_git, search_repositories
from executor.sandbox.search.tree import QueryError, SearchType

__all__ = [
    "HostedRepo",
    "ResolvedWorkspace",
    "WorkspaceResolutionError",
    "graphql_repo_id",
    "resolve_workspaces",
    "statically_skipped_steps",
]


class WorkspaceResolutionError(ValueError):
    """The spec's `on`/`workspaces` cannot be resolved over the hosted repositories."""


@dataclass(frozen=True)
class HostedRepo:
    """A repository the sandbox hosts: `path` is a git dir (mirror) or a work tree."""

    name: str
    path: str
    rowid: int

    @property
    def graphql_id(self) -> str:
        return graphql_repo_id(self.rowid)


@dataclass
class ResolvedWorkspace:
    """One workspace: `branch` is the full ref, `file_matches` sorted and deduplicated."""

    repo: HostedRepo
    branch: str
    commit: str
    path: str = ""
    only_fetch_workspace: bool = False
    file_matches: list[str] = field(default_factory=list)
    skipped_steps: list[int] = field(default_factory=list)


def graphql_repo_id(rowid: int) -> str:
    """`relay.MarshalID("Repository", id)`."""
    return base64.b64encode(f"Repository:{rowid}".encode()).decode("ascii")


def _git(repo: HostedRepo, *args: str) -> subprocess.CompletedProcess[bytes]:
    return run_git(repo.path, *args)


def _default_branch(repo: HostedRepo) -> tuple[str, str]:
    done = _git(repo, "symbolic-ref", "HEAD")
    ref = done.stdout.decode().strip()
    if done.returncode != 0 or not ref:
        raise WorkspaceResolutionError(f"repository {repo.name} has no default branch")
    return ref, _commit(repo, ref, f"repository {repo.name} has an empty default branch")


def _commit(repo: HostedRepo, ref: str, missing: str) -> str:
    done = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if done.returncode != 0:
        raise WorkspaceResolutionError(missing)
    return done.stdout.decode().strip()


def _tree_paths(repo: HostedRepo, commit: str) -> list[str]:
    done = _git(repo, "ls-tree", "-r", "-z", "--name-only", "--full-tree", commit)
    return [p for p in done.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


_Revision = tuple[str, str]  # (repo name, full ref)


@dataclass
class _RepoRev:
    repo: HostedRepo
    branch: str
    commit: str
    file_matches: set[str] = field(default_factory=set)


def _query_matches(spec: BatchSpec, repos: Iterable[HostedRepo], query: str) -> list[_RepoRev]:
    default = SearchType.KEYWORD if spec.version >= 2 else SearchType.STANDARD
    try:
        found = search_repositories(query, repos, default)
    except QueryError as err:
        raise WorkspaceResolutionError(str(err)) from err
    return [_RepoRev(m.repo, m.ref, m.commit, m.files) for m in found]


def _repo_revisions(spec: BatchSpec, repos: Mapping[str, HostedRepo]) -> list[_RepoRev]:
    revs: dict[_Revision, _RepoRev] = {}

    def add(repo: HostedRepo, ref: str, commit: str, files: set[str]) -> None:
        rev = revs.setdefault((repo.name, ref), _RepoRev(repo, ref, commit))
        rev.file_matches |= files

    for entry in spec.on or []:
        if entry.repository:
            repo = repos.get(entry.repository)
            if repo is None:
                raise WorkspaceResolutionError(
                    f"repository {entry.repository} not found (host it with"
                    " `executor sandbox repo add`)"
                )
            branches = entry.get_branches()
            if not branches:
                ref, commit = _default_branch(repo)
                add(repo, ref, commit, set())
            for branch in branches or []:
                ref = branch if branch.startswith("refs/heads/") else f"refs/heads/{branch}"
                missing = f"no branch matching {branch!r} found for repository {repo.name}"
                add(repo, ref, _commit(repo, ref, missing.replace("'", '"')), set())
        elif entry.repositories_matching_query:
            query = entry.repositories_matching_query
            for found in _query_matches(spec, repos.values(), query):
                add(found.repo, found.branch, found.commit, found.file_matches)
    return list(revs.values())


def _config_for(repo: str, configs: list[WorkspaceConfiguration]) -> WorkspaceConfiguration | None:
    found: WorkspaceConfiguration | None = None
    for config in configs:
        if fnmatch.fnmatchcase(repo, config.in_ or "*"):
            if found is not None:
                raise WorkspaceResolutionError(
                    f"repository {repo} matches multiple workspaces.in globs in the batch spec."
                    f' glob: "{config.in_}"'
                )
            found = config
    return found


def _static_condition(condition: str, repo: str, spec: BatchSpec) -> str | None:
    """The condition rendered with only what is known before execution, or None if it
    needs more (outputs, steps, previous_step, other repository fields, …)."""
    if "${{" not in condition:
        return condition
    known_repo = {"name": repo}
    known_batch = {"name": spec.name, "description": spec.description}
    funcs = {
        **BUILTINS,
        "repository": GoFunc(lambda: known_repo, (), None),
        "batch_change": GoFunc(lambda: known_batch, (), None),
    }
    try:
        return execute(parse("if", condition, ("${{", "}}"), frozenset(funcs)), None, funcs)
    except TemplateError:
        return None


def statically_skipped_steps(spec: BatchSpec, repo: str) -> list[int]:
    """Indices of steps whose `if:` is statically false for `repo`.

    Static means: the condition renders with only `repository.name`, `batch_change.name`,
    `batch_change.description`, literals and Go's builtin functions (an approximation of
    Sourcegraph's partial evaluation, which also leaves pipelines non-static).
    """
    skipped = []
    for index, step in enumerate(spec.steps or []):
        condition = step.if_condition()
        if not condition:
            continue
        rendered = _static_condition(condition, repo, spec)
        if rendered is not None and rendered.strip() != "true":
            skipped.append(index)
    return skipped


def resolve_workspaces(spec: BatchSpec, repos: Mapping[str, HostedRepo]) -> list[ResolvedWorkspace]:
    """Every workspace of `spec` over `repos` (name → hosted repository)."""
    configs = list(spec.workspaces or [])
    out: list[ResolvedWorkspace] = []
    for rev in _repo_revisions(spec, repos):
        files = sorted(rev.file_matches)
        config = _config_for(rev.repo.name, configs)
        if config is None:
            out.append(ResolvedWorkspace(rev.repo, rev.branch, rev.commit, "", False, files))
            continue
        needle = re.compile(r"(^|/)" + re.escape(config.root_at_location_of) + "$")
        dirs = sorted(
            {
                os.path.dirname(p)
                for p in _tree_paths(rev.repo, rev.commit)
                if needle.search(p) is not None
            }
        )
        for path in dirs:
            out.append(
                ResolvedWorkspace(
                    rev.repo,
                    rev.branch,
                    rev.commit,
                    path,
                    config.only_fetch_workspace and path != "",
                    [f for f in files if f.startswith(path)],
                )
            )
    steps = len(spec.steps or [])
    for workspace in out:
        workspace.skipped_steps = statically_skipped_steps(spec, workspace.repo.name)
    out = [w for w in out if not steps or len(w.skipped_steps) < steps]
    out.sort(key=lambda w: (w.repo.name, w.branch, w.path))
    return out
