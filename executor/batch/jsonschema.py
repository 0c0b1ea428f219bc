"""A small JSON-schema validator that reports errors the way ``xeipuuv/gojsonschema`` does.

Owns: validating decoded JSON (``None``/bool/int/float/str/list/dict) against the subset of
draft-07 the batch spec schema uses (``type``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``oneOf``, ``anyOf``, ``not``, ``enum``, ``pattern``,
``format: email``, ``minLength``, ``minProperties``, ``maxProperties``, ``uniqueItems``)
and rendering each error as ``<field>: <description>`` with gojsonschema's default locale
(``locales.go``), ``(root): `` removed as ``lib/batches/jsonschema/jsonschema.go`` does.

Must not know: the batch spec itself.

Mirrored from gojsonschema's ``validation.go``: check order per node (type, then
``oneOf``/``anyOf``/``not``, then object/array keywords, ``enum``, then children in schema
property order); a failed ``oneOf``/``anyOf`` adds its own error plus the errors of the
best-scoring alternative (score: +1 per validated node, +1 per present required property,
-2 per error). Known divergence: Go iterates a document's keys in random map order for
``additionalProperties``; we use document order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SchemaError", "validate"]


@dataclass(frozen=True)
class SchemaError:
    """One validation error: ``field`` is the dotted path (``steps.0``) or ``(root)``."""

    field: str
    description: str

    def __str__(self) -> str:
        text = f"{self.field}: {self.description}"
        return text.removeprefix("(root): ")


@dataclass
class _Result:
    errors: list[SchemaError] = field(default_factory=list)
    score: int = 0

    def add(self, path: tuple[str, ...], description: str) -> None:
        self.errors.append(SchemaError(_field(path), description))
        self.score -= 2

    def merge(self, other: _Result) -> None:
        self.errors.extend(other.errors)
        self.score += other.score


def _field(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else "(root)"


def _type_name(node: Any) -> str:
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "boolean"
    if isinstance(node, int):
        return "integer"
    if isinstance(node, float):
        return "integer" if node.is_integer() else "number"
    if isinstance(node, str):
        return "string"
    if isinstance(node, list):
        return "array"
    return "object"


def _types(schema: dict[str, Any]) -> list[str]:
    declared = schema.get("type")
    if declared is None:
        return []
    return [declared] if isinstance(declared, str) else list(declared)


def _types_text(types: list[str]) -> str:
    return types[0] if len(types) == 1 else "[" + ",".join(types) + "]"


def _type_ok(types: list[str], given: str) -> bool:
    if not types:
        return True
    if given == "integer":
        return "integer" in types or "number" in types
    return given in types


_EMAIL = re.compile(r"^(?:[^<>@\s]+@[^<>@\s]+|[^<>]*<[^<>@\s]+@[^<>@\s]+>)$")
_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(source: str) -> re.Pattern[str]:
    # RE2 (Go): `\w` is ASCII-only and `$` without (?m) matches only at the very end.
    compiled = _PATTERNS.get(source)
    if compiled is None:
        translated = source[:-1] + r"\Z" if source.endswith("$") else source
        compiled = _PATTERNS[source] = re.compile(translated, re.ASCII)
    return compiled


def _go_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _sub(schema: dict[str, Any], node: Any, path: tuple[str, ...]) -> _Result:
    result = _Result()
    _validate(schema, node, path, result)
    return result


def _validate(schema: dict[str, Any], node: Any, path: tuple[str, ...], result: _Result) -> None:
    types = _types(schema)
    given = _type_name(node)
    if not _type_ok(types, given):
        result.add(path, f"Invalid type. Expected: {_types_text(types)}, given: {given}")
        return
    _validate_combinators(schema, node, path, result)
    if isinstance(node, dict):
        _validate_object(schema, node, path, result)
    elif isinstance(node, list):
        _validate_array(schema, node, path, result)
    _validate_enum(schema, node, path, result)
    if isinstance(node, str):
        _validate_string(schema, node, path, result)
    if isinstance(node, dict):
        for name, child_schema in schema.get("properties", {}).items():
            if name in node:
                _validate(child_schema, node[name], (*path, name), result)
    result.score += 1


def _validate_combinators(
    schema: dict[str, Any], node: Any, path: tuple[str, ...], result: _Result
) -> None:
    any_of = schema.get("anyOf")
    if any_of:
        best: _Result | None = None
        for alternative in any_of:
            sub = _sub(alternative, node, path)
            if not sub.errors:
                best = None
                break
            if best is None or sub.score > best.score:
                best = sub
        else:
            result.add(path, "Must validate at least one schema (anyOf)")
            if best is not None:
                result.merge(best)
    one_of = schema.get("oneOf")
    if one_of:
        valid = 0
        best = None
        for alternative in one_of:
            sub = _sub(alternative, node, path)
            if not sub.errors:
                valid += 1
            elif valid == 0 and (best is None or sub.score > best.score):
                best = sub
        if valid != 1:
            result.add(path, "Must validate one and only one schema (oneOf)")
            if valid == 0 and best is not None:
                result.merge(best)
    negated = schema.get("not")
    if negated is not None and not _sub(negated, node, path).errors:
        result.add(path, "Must not validate the schema (not)")


def _validate_object(
    schema: dict[str, Any], node: dict[str, Any], path: tuple[str, ...], result: _Result
) -> None:
    minimum = schema.get("minProperties")
    if minimum is not None and len(node) < minimum:
        result.add(path, f"Must have at least {minimum} properties")
    maximum = schema.get("maxProperties")
    if maximum is not None and len(node) > maximum:
        result.add(path, f"Must have at most {maximum} properties")
    for name in schema.get("required", []):
        if name in node:
            result.score += 1
        else:
            result.add(path, f"{name} is required")
    known = schema.get("properties", {})
    additional = schema.get("additionalProperties", True)
    for key, value in node.items():
        if key in known:
            continue
        if additional is False:
            result.add(path, f"Additional property {key} is not allowed")
        elif isinstance(additional, dict):
            result.merge(_sub(additional, value, (*path, key)))


def _validate_array(
    schema: dict[str, Any], node: list[Any], path: tuple[str, ...], result: _Result
) -> None:
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(node):
            result.merge(_sub(items, item, (*path, str(index))))
    if schema.get("uniqueItems"):
        seen: dict[str, int] = {}
        for j, item in enumerate(node):
            key = _go_json(item)
            if key in seen:
                result.add(path, f"array items[{seen[key]},{j}] must be unique")
            seen[key] = j


def _validate_enum(
    schema: dict[str, Any], node: Any, path: tuple[str, ...], result: _Result
) -> None:
    allowed = schema.get("enum")
    if allowed is None:
        return
    wanted = _go_json(node)
    if all(_go_json(choice) != wanted for choice in allowed):
        text = ", ".join(_go_json(choice) for choice in allowed)
        result.add(path, f"{_field(path)} must be one of the following: {text}")


def _validate_string(
    schema: dict[str, Any], node: str, path: tuple[str, ...], result: _Result
) -> None:
    min_length = schema.get("minLength")
    if min_length is not None and len(node) < min_length:
        result.add(path, f"String length must be greater than or equal to {min_length}")
    pattern = schema.get("pattern")
    if pattern is not None and not _pattern(pattern).search(node):
        result.add(path, f"Does not match pattern '{pattern}'")
    if schema.get("format") == "email" and not _EMAIL.match(node):
        result.add(path, "Does not match format 'email'")


def validate(schema: dict[str, Any], document: Any) -> list[SchemaError]:
    """Validate ``document`` and return every error (empty when valid)."""
    return _sub(schema, document, ()).errors
