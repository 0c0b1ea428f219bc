"""Changeset specs from a workspace's final step result, as Sourcegraph builds them.

Owns `build_changeset_specs` (src-cli `lib/batches/changeset_specs.go BuildChangesetSpecs`, as
called by `cache.ChangesetSpecsFromCache`):
- an empty diff builds nothing;
- `title`, `body`, `branch`, `commit.message` and the author are rendered with the
  changeset-template context (§2.4) and trimmed; without `commit.author` the author is
  `Sourcegraph <batch-changes@sourcegraph.com>` (the sandbox has no users to fall back on);
- `headRef` is `refs/heads/<branch>` unless already prefixed; `published` follows the
  overridable rules (a scalar, or `{glob[@branch]: value}` entries, last match wins, no match
  → omitted);
- `transformChanges` groups that apply to the repository split the diff by file: a file goes
  to the branch of the last group whose directory (`~./` trimmed, plus `/`) prefixes its path,
  else to the template branch, whose spec is always built. Unlike go-diff, which re-prints the
  file diffs, the file sections are kept byte for byte.

The spec is a dict in the Go marshal order of `ChangesetSpec`, commit `version` 2 (base64
diff), empty strings and nil values omitted.

Knows the batch spec and result models and the template package; no SQL, no HTTP.
"""

from __future__ import annotations

import base64
import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from executor.batch.execution import AfterStepResult
from executor.batch.spec import BatchSpec
from executor.batch.template.errors import TemplateError
from executor.batch.template.exec import execute
from executor.batch.template.funcs import BUILTINS
from executor.batch.template.gofunc import ANY, GoFunc
from executor.batch.template.parse import parse
from executor.batch.template.values import FileMatchPathList, StrList

__all__ = [
    "DEFAULT_AUTHOR_EMAIL",
    "DEFAULT_AUTHOR_NAME",
    "ChangesetBuildError",
    "SpecRepository",
    "build_changeset_specs",
    "published_value",
    "split_file_diffs",
]

DEFAULT_AUTHOR_NAME = "Sourcegraph"
DEFAULT_AUTHOR_EMAIL = "batch-changes@sourcegraph.com"
_DELIMS = ("${{", "}}")


class ChangesetBuildError(ValueError):
    """The specs cannot be built (template error, conflicting transformChanges branches)."""


@dataclass(frozen=True)
class SpecRepository:
    """`batches.Repository` as the spec builder needs it; `base_ref` is the full ref."""

    id: str
    name: str
    base_ref: str
    base_rev: str
    file_matches: tuple[str, ...] = ()


def _join_if(sep: str, *elems: str) -> str:
    return sep.join(e for e in elems if e)


def _matches(value: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def _fn(fn: Callable[..., object], n: int, variadic: bool = False) -> GoFunc:
    return GoFunc(fn, (ANY,) * n, ANY if variadic else None)


_HELPERS: dict[str, GoFunc] = {
    "join": _fn(lambda items, sep: str(sep).join(str(i) for i in items), 2),
    "split": _fn(lambda s, sep: StrList(str(s).split(str(sep))), 2),
    "replace": _fn(lambda s, old, new: str(s).replace(str(old), str(new)), 3),
    "join_if": _fn(_join_if, 1, variadic=True),
    "matches": _fn(_matches, 2),
}


def _context_funcs(
    spec: BatchSpec, repo: SpecRepository, result: AfterStepResult, path: str
) -> dict[str, GoFunc]:
    changes = result.changed_files
    repository = {
        "search_result_paths": FileMatchPathList(repo.file_matches),
        "name": repo.name,
        "branch": repo.base_ref.removeprefix("refs/heads/"),
    }
    steps = {
        "modified_files": StrList(changes.modified or []),
        "added_files": StrList(changes.added or []),
        "deleted_files": StrList(changes.deleted or []),
        "renamed_files": StrList(changes.renamed or []),
        "path": path,
    }
    batch_change = {"name": spec.name, "description": spec.description}
    outputs = dict(result.outputs or {})
    return {
        "repository": GoFunc(lambda: repository, (), None),
        "batch_change": GoFunc(lambda: batch_change, (), None),
        "outputs": GoFunc(lambda: outputs, (), None),
        "steps": GoFunc(lambda: steps, (), None),
        # Rendered later, when the changeset is published (src-cli keeps it verbatim).
        "batch_change_link": GoFunc(lambda: "${{ batch_change_link }}", (), None),
    }


def _render(name: str, text: str, funcs: Mapping[str, GoFunc]) -> str:
    try:
        tree = parse(name, text, _DELIMS, frozenset(funcs))
        return execute(tree, None, funcs).strip()
    except TemplateError as err:
        raise ChangesetBuildError(str(err)) from err


def published_value(published: Any, repo: str, branch: str) -> bool | str | None:
    """`published.ValueWithSuffix(repo, branch)`: the last matching rule's value, or None."""
    if published is None:
        return None
    rules: list[tuple[str, Any]]
    if isinstance(published, bool | str):
        rules = [("*", published)]
    else:
        rules = [next(iter(item.items())) for item in published if item]
    value: bool | str | None = None
    for key, rule_value in rules:
        glob, _, suffix = key.partition("@")
        if fnmatch.fnmatchcase(repo, glob) and (not suffix or suffix == branch):
            value = rule_value
    return value


_DIFF_START = re.compile(rb"(?m)^(?=diff --git )")


def _diff_name(section: bytes) -> str:
    new = old = ""
    for line in section.split(b"\n"):
        if line.startswith(b"+++ "):
            new = line[4:].split(b"\t")[0].decode("utf-8", "surrogateescape")
        elif line.startswith(b"--- "):
            old = line[4:].split(b"\t")[0].decode("utf-8", "surrogateescape")
    if new and new != "/dev/null":
        return new.strip('"').removeprefix("b/")
    if old and old != "/dev/null":
        return old.strip('"').removeprefix("a/")
    header = section.split(b"\n", 1)[0][len(b"diff --git ") :].decode("utf-8", "surrogateescape")
    half = (len(header) - 1) // 2
    if len(header) % 2 == 1 and header[half] == " " and header[:half] == header[half + 1 :]:
        return header[:half].strip('"')
    return header.split(" ")[-1].strip('"').removeprefix("b/")


def split_file_diffs(diff: bytes) -> list[tuple[str, bytes]]:
    """The per-file sections of a git diff, with the name go-diff would report."""
    return [(_diff_name(s), s) for s in _DIFF_START.split(diff) if s.startswith(b"diff --git ")]


def _group_diffs(
    spec: BatchSpec, repo: str, diff: bytes, default_branch: str
) -> list[tuple[str, bytes]]:
    groups = [
        g
        for g in (spec.transform_changes.group or [] if spec.transform_changes else [])
        if not g.repository or g.repository == repo
    ]
    if not groups:
        return [(default_branch, diff)]
    raw_branch = spec.changeset_template.branch if spec.changeset_template else ""
    seen: set[str] = set()
    for group in groups:
        if group.branch in seen:
            raise ChangesetBuildError(
                f"transformChanges would lead to multiple changesets in repository {repo}"
                f' to have the same branch "{group.branch}"'
            )
        seen.add(group.branch)
        if group.branch == raw_branch:
            raise ChangesetBuildError(
                f"transformChanges group branch for repository {repo} is the same as branch"
                f' "{raw_branch}" in changesetTemplate'
            )
    by_branch: dict[str, list[bytes]] = {default_branch: []}
    for name, section in split_file_diffs(diff):
        branch = default_branch
        for group in groups:
            if name.startswith(group.directory.lstrip("~./") + "/"):
                branch = group.branch
        by_branch.setdefault(branch, []).append(section)
    return [(branch, b"".join(parts)) for branch, parts in by_branch.items()]


def build_changeset_specs(
    spec: BatchSpec, repo: SpecRepository, result: AfterStepResult, path: str
) -> list[dict[str, Any]]:
    """The changeset specs for one workspace's final result (none for an empty diff)."""
    template = spec.changeset_template
    if not result.diff or template is None:
        return []
    funcs = {**BUILTINS, **_HELPERS, **_context_funcs(spec, repo, result, path)}
    author_name, author_email = DEFAULT_AUTHOR_NAME, DEFAULT_AUTHOR_EMAIL
    if template.commit.author is not None:
        author_name = _render("authorName", template.commit.author.name, funcs)
        author_email = _render("authorEmail", template.commit.author.email, funcs)
    title = _render("title", template.title, funcs)
    body = _render("body", template.body, funcs)
    message = _render("message", template.commit.message, funcs)
    branch = _render("branch", template.branch, funcs)
    specs = []
    for head, diff in _group_diffs(spec, repo.name, result.diff, branch):
        unprefixed = head.removeprefix("refs/heads/")
        commit = {
            "version": 2,
            "message": message,
            "diff": base64.b64encode(diff).decode("ascii"),
            "authorName": author_name,
            "authorEmail": author_email,
        }
        fields: list[tuple[str, Any]] = [
            ("baseRepository", repo.id),
            ("baseRev", repo.base_rev),
            ("baseRef", repo.base_ref),
            ("headRepository", repo.id),
            ("headRef", f"refs/heads/{unprefixed}"),
            ("title", title),
            ("body", body),
            ("commits", [{k: v for k, v in commit.items() if v != ""}]),
            ("published", published_value(template.published, repo.name, unprefixed)),
            ("fork", template.fork),
        ]
        specs.append({k: v for k, v in fields if v is not None and v != ""})
    return specs
