"""A batch spec step's ``env``: static values and pass-through names from the outer env.

Owns: parsing the two accepted shapes (an object ``{NAME: value}`` or a list whose items
are ``"NAME"`` or single-key objects), resolving against an outer ``KEY=VALUE`` list and
the Go JSON form used in cache keys and ``input.json``.

Must not know: templates (values are rendered elsewhere), where the outer env comes from.

Facts (``lib/batches/env/env.go``, ``var.go`` in sourcegraph/sourcegraph-public-snapshot):

* ``MarshalJSON``: ``{}`` when empty; an object (keys sorted) when every variable has a
  value; otherwise an array in declaration order of ``{"NAME":"value"}`` / ``"NAME"``.
* A ``null`` value in the object form decodes to ``""`` (static).
* Array object items need exactly one key:
  ``invalid environment variable: incorrect number of object elements (expected 1, got N)``.
* ``Resolve``: every outer entry must contain ``=`` (``unable to parse environment variable
  "X"``); a missing pass-through variable resolves to ``""``; static values win.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["EnvError", "EnvVar", "Environment", "go_quote"]


class EnvError(ValueError):
    """An env value of the wrong shape, or a malformed outer environment entry."""


def go_quote(text: str) -> str:
    """Approximate Go's ``%q`` for printable text (used in error messages only)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'


@dataclass(frozen=True)
class EnvVar:
    """One variable; ``value is None`` means "take it from the outer environment"."""

    name: str
    value: str | None


@dataclass(frozen=True)
class Environment:
    """An ordered list of :class:`EnvVar`; ``is_nil`` mirrors Go's nil slice (``{}``)."""

    variables: tuple[EnvVar, ...] = ()
    is_nil: bool = True

    @classmethod
    def parse(cls, raw: Any) -> Environment:
        """Decode the JSON/YAML value of ``env`` (None, dict or list)."""
        if raw is None:
            return cls()
        if isinstance(raw, Environment):
            return raw
        if isinstance(raw, Mapping):
            out: list[EnvVar] = []
            for name, value in raw.items():
                if value is not None and not isinstance(value, str):
                    raise EnvError("invalid environment variable: unknown type")
                out.append(EnvVar(str(name), value if value is not None else ""))
            return cls(tuple(out), is_nil=False)
        if isinstance(raw, Sequence) and not isinstance(raw, str):
            return cls(tuple(_parse_item(item) for item in raw), is_nil=False)
        raise EnvError("invalid environment variable: unknown type")

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str | None]]) -> Environment:
        return cls(tuple(EnvVar(n, v) for n, v in pairs), is_nil=False)

    def is_static(self) -> bool:
        return all(v.value is not None for v in self.variables)

    def outer_vars(self) -> list[str]:
        """Names taken from the outer environment, in declaration order."""
        return [v.name for v in self.variables if v.value is None]

    def resolve(self, outer: Iterable[str]) -> dict[str, str]:
        """Resolve against ``KEY=VALUE`` strings (``os.Environ()`` form)."""
        outer_map: dict[str, str] = {}
        for entry in outer:
            key, sep, value = entry.partition("=")
            if not sep:
                raise EnvError(f"unable to parse environment variable {go_quote(entry)}")
            outer_map[key] = value
        resolved: dict[str, str] = {}
        for var in self.variables:
            resolved[var.name] = var.value if var.value is not None else outer_map.get(var.name, "")
        return resolved

    def to_go(self) -> Any:
        """The value Go's ``MarshalJSON`` would produce, as plain JSON-able Python."""
        if self.is_nil or not self.variables:
            # A non-nil empty slice is "static" too: Go marshals an empty map, `{}`.
            return {}
        if self.is_static():
            return {v.name: v.value for v in self.variables}
        return [v.name if v.value is None else {v.name: v.value} for v in self.variables]


def _parse_item(item: Any) -> EnvVar:
    if isinstance(item, str):
        return EnvVar(item, None)
    if isinstance(item, Mapping):
        if len(item) != 1:
            raise EnvError(
                "invalid environment variable: incorrect number of object elements "
                f"(expected 1, got {len(item)})"
            )
        ((name, value),) = item.items()
        if value is not None and not isinstance(value, str):
            raise EnvError("invalid environment variable: unknown type")
        return EnvVar(str(name), value if value is not None else "")
    raise EnvError("invalid environment variable: unknown type")
