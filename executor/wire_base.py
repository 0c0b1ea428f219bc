"""The base of every wire model: Go's JSON rules (case-insensitive keys, omitempty, times).

Part of `executor.wire`; see its docstring. Imports nothing from the project.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = [
    "ZERO_TIME",
    "WireModel",
    "fold_keys",
    "format_go_time",
    "none_to_empty_list",
    "reorder",
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

    @model_validator(mode="before")
    @classmethod
    def _fold_key_case(cls, data: Any) -> Any:
        return fold_keys(cls, data)

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


def none_to_empty_list(value: Any) -> Any:
    return [] if value is None else value


def reorder(out: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """Keys of `out` in Go's marshal order."""
    return {k: out[k] for k in order if k in out}
