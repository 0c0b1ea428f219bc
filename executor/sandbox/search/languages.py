"""`lang:` names and which files they cover, from Pygments' lexer table.

Sourcegraph resolves `lang:` with go-enry, GitHub Linguist's data (`validate.go`
`isLanguage` → `enry.GetLanguageByAlias`, error `unknown language: "X"`), then searches the
files whose names that language claims. Python has no maintained Linguist port without a
native library or a model to download, so the table here is Pygments' (already installed with
`rich`, maintained, no network): every lexer's name and aliases (`go`, `golang`; `hcl`,
`terraform`, `tf`; `markdown`, `md`; `yaml`, `yml`; `typescript`, `ts`) and its filename
patterns (`*.go`; `*.tf`, `*.hcl`; …). No extension map is written here. Names compare
case-insensitively, with spaces and dashes treated alike (`lang:"Protocol Buffer"`).

Pure: no I/O beyond importing Pygments' table.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass

from pygments.lexers import get_all_lexers

from executor.sandbox.search.tree import QueryError

__all__ = ["Language", "resolve_language"]


@dataclass(frozen=True)
class Language:
    """A language: its display name and a regex over a path's last component."""

    name: str
    filenames: re.Pattern[str]

    def matches(self, path: str) -> bool:
        return self.filenames.fullmatch(path.rsplit("/", 1)[-1]) is not None


def _key(name: str) -> str:
    return name.casefold().replace(" ", "-")


@functools.cache
def _table() -> dict[str, tuple[str, tuple[str, ...]]]:
    table: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, aliases, filenames, _ in get_all_lexers(plugins=False):
        for key in (name, *aliases):
            table.setdefault(_key(key), (name, tuple(filenames)))
    return table


@functools.cache
def resolve_language(value: str) -> Language:
    """The language `value` names; QueryError (Sourcegraph's text) if none."""
    found = _table().get(_key(value))
    if found is None:
        raise QueryError(f'unknown language: "{value}"')
    name, globs = found
    pattern = "|".join(fnmatch.translate(g) for g in globs) or r"(?!)"
    return Language(name, re.compile(pattern))
