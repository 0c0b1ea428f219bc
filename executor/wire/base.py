"""The base of every wire model: Go's JSON rules (case-insensitive keys, omitempty, times).

Part of `executor.wire`; see its docstring. Imports nothing from the project.
"""

from __future__ import annotations

import datetime as dt
import typing
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = [
    "ZERO_TIME",
    "WireModel",
    "fold_keys",
    "format_go_time",
    "none_to_empty_list",
    "reorder",
    "zero_nulls",
]

ZERO_TIME = dt.datetime(1, 1, 1, tzinfo=dt.UTC)


def format_go_time(value: dt.datetime) -> str:
    """Format like Go's `time.RFC3339Nano`: fraction without trailing zeros, `Z` for UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _is_empty(value: object) -> bool:
    return value is None or value == "" or value == 0 or value is False or value in ([], {})


class WireModel(BaseModel):
    """Base of every wire payload: aliases are the wire keys, matched case-insensitively."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=False)

    # Wire keys dropped when empty, as Go's `omitempty` does.
    _omitempty: ClassVar[frozenset[str]] = frozenset()
    # Models the executor decodes from the frontend read JSON null as Go does: the field keeps
    # its zero value. Wire keys in `_null_refused` still refuse null (see `zero_nulls`).
    _null_is_zero: ClassVar[bool] = False
    _null_refused: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _fold_key_case(cls, data: Any) -> Any:
        data = fold_keys(cls, data)
        if cls._null_is_zero:
            data = zero_nulls(cls, data, cls._null_refused)
        return data

    def to_wire(self) -> dict[str, Any]:
        """The JSON object this model marshals to, in Go field order."""
        out = self.model_dump(mode="json", by_alias=True)
        return {k: v for k, v in out.items() if not (k in self._omitempty and _is_empty(v))}


def fold_keys(cls: type[BaseModel], data: Any) -> Any:
    """Go's decoder matches keys case-insensitively; pydantic matches exactly."""
    if not isinstance(data, dict):
        return data
    by_lower = {(f.alias or n).lower(): (f.alias or n) for n, f in cls.model_fields.items()}
    exact = set(by_lower.values())
    folded: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(key, str) and key not in exact:
            key = by_lower.get(key.lower(), key)
        folded[key] = value
    return folded


_ZERO: dict[Any, Any] = {
    str: "",
    bool: False,
    int: 0,
    float: 0.0,
    bytes: b"",
    dt.datetime: ZERO_TIME,
}


def zero_nulls(cls: type[BaseModel], data: Any, refused: frozenset[str] = frozenset()) -> Any:
    """Go's `encoding/json` leaves a field untouched when the JSON value is `null`: strings stay
    `""`, booleans `false`, numbers `0`, times the zero time, slices, maps and structs empty.
    Pydantic refuses `None` for such a field; replace it by that zero value (under the wire key
    or the Python name), except for `refused` wire keys."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for name, field in cls.model_fields.items():
        if (field.alias or name) in refused:
            continue
        for key in {field.alias or name, name}:
            if key in out and out[key] is None:
                zero = _zero_value(field.annotation)
                if zero is not _NO_ZERO:
                    out[key] = zero
    return out


_NO_ZERO = object()


def _zero_value(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is list:
        return []
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return {}  # an empty map, or a struct with every field at its zero value
    return _ZERO.get(annotation, _NO_ZERO)


def none_to_empty_list(value: Any) -> Any:
    return [] if value is None else value


def reorder(out: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """Keys of `out` in Go's marshal order."""
    return {k: out[k] for k in order if k in out}
