"""The Go value model the template engine evaluates over, expressed in Python.

Owns: the mapping from Python values to the Go types `text/template` sees (their names as
they appear in error messages), the "invalid value" sentinel, interface boxing, and Go
truthiness. Knows nothing of lexing, parsing or Sourcegraph.

Mapping:

| Python                        | Go type                        |
| ----------------------------- | ------------------------------ |
| `bool`                        | `bool` (checked before `int`)  |
| `int`                         | `int`                          |
| `float`                       | `float64` (every JSON number)  |
| `complex`                     | `complex128`                   |
| `str`                         | `string`                       |
| `StrList`                     | `[]string` (file lists, split) |
| `FileMatchPathList`           | `template.fileMatchPathList`   |
| `list` / `tuple`              | `[]interface {}` (JSON arrays) |
| `dict` / other `Mapping`      | `map[string]interface {}`      |
| `None`                        | a nil `interface {}`           |
| `NO_VALUE`                    | the zero `reflect.Value`       |
| `GoStruct`                    | a Go struct (the context)      |

A value read out of a `map[string]any` or `[]any` is boxed as `interface {}` in Go; the
evaluator models that with `Boxed`, because error texts name the boxed type (`can't evaluate
field x in type interface {}`) and a boxed nil behaves differently from an invalid value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "NO_VALUE",
    "Boxed",
    "FileMatchPathList",
    "GoStruct",
    "NoValue",
    "StrList",
    "is_list",
    "is_map",
    "is_true",
    "type_name",
    "unbox",
]


class NoValue:
    """Go's zero `reflect.Value`: prints `<no value>` at top level, is falsy."""

    _instance: NoValue | None = None

    def __new__(cls) -> NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_VALUE"

    def __bool__(self) -> bool:
        return False


NO_VALUE: Final = NoValue()


class StrList(list[str]):
    """A Go `[]string`; plain Python lists are `[]interface {}` (JSON arrays)."""


class FileMatchPathList(StrList):
    """src-cli's `fileMatchPathList`: a `[]string` whose `String()` joins with spaces.

    Source: src-cli `lib/batches/template/templating.go` (`func (f fileMatchPathList)
    String() string { return strings.Join(f, " ") }`); the elements arrive sorted.
    """

    def go_string(self) -> str:
        return " ".join(self)


@dataclass(frozen=True)
class Boxed:
    """A value held in an `interface {}` slot (map value, `[]any` element)."""

    value: object


@dataclass
class GoStruct:
    """A Go struct value, so `${{ .Repository.Name }}` works like it does in Go.

    `fields` keeps declaration order, which is the order `%v` prints them in.
    """

    type_name: str
    fields: dict[str, object] = field(default_factory=dict)
    pointer: bool = False


def unbox(value: object) -> object:
    """Remove one interface box, as `evalPipeline` does after every command."""
    if isinstance(value, Boxed):
        return NO_VALUE if value.value is None else value.value
    return value


def is_map(value: object) -> bool:
    return isinstance(value, Mapping)


def is_list(value: object) -> bool:
    return isinstance(value, list | tuple)


def type_name(value: object) -> str:
    """The Go type name used in error messages (`%T`)."""
    if isinstance(value, Boxed):
        return "interface {}"
    if value is None:
        return "interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, complex):
        return "complex128"
    if isinstance(value, str):
        return "string"
    if isinstance(value, FileMatchPathList):
        return "template.fileMatchPathList"
    if isinstance(value, StrList):
        return "[]string"
    if is_list(value):
        return "[]interface {}"
    if is_map(value):
        return "map[string]interface {}"
    if isinstance(value, GoStruct):
        return ("*" if value.pointer else "") + value.type_name
    if value is NO_VALUE:
        return "<nil>"
    return type(value).__name__


def is_true(value: object) -> bool:
    """Go template truthiness (`isTrue` after `indirectInterface`)."""
    value = unbox(value)
    if value is NO_VALUE or value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | complex):
        return value != 0
    if isinstance(value, str | list | tuple) or is_map(value):
        return len(value) > 0  # type: ignore[arg-type]
    # Structs (and anything else non-nil) are always true.
    return True
