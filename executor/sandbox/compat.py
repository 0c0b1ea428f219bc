"""Go-compatible texts and checks the frontend's answers are made of.

- `http_error`: Go's `http.Error` (plain text, trailing newline, `nosniff`).
- `json_response`: `json.Marshal` output written with the handler's status (no explicit type).
- `go_json_error`: the text Go's `encoding/json` decoder would give for a bad request body.
- `supports_v2`: `lib/api.CheckSourcegraphVersion(v, ">= 4.3.0-0", "2022-11-24")`.
- `parse_duration`: Go-style durations (`25s`, `500ms`, `1m30s`) for the CLI.

Knows HTTP responses but no routes, no store and no executor code.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.responses import Response

from executor.config.goparse import parse_go_duration

__all__ = [
    "InvalidVersion",
    "go_json_error",
    "go_quote",
    "http_error",
    "json_body",
    "json_response",
    "parse_duration",
    "supports_v2",
]


def http_error(message: str, status: int) -> Response:
    """Go's `http.Error(w, message, status)`: the message plus `\\n`, as plain text."""
    return Response(
        content=message + "\n",
        status_code=status,
        headers={"X-Content-Type-Options": "nosniff"},
        media_type="text/plain; charset=utf-8",
    )


def json_body(payload: Any) -> bytes:
    """Compact JSON as Go's `json.Marshal` writes it (no spaces, non-ASCII kept)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(payload: Any, status: int = 200) -> Response:
    """A JSON body with a status; 204 gets no body, as `wrapHandler` writes it."""
    if status == 204:
        return Response(status_code=204)
    return Response(content=json_body(payload), status_code=status, media_type="application/json")


def go_quote(value: str) -> str:
    """Close to Go's `%q`: double quotes, backslash escapes, printable Unicode kept."""
    return json.dumps(value, ensure_ascii=False)


_GO_TYPE = {
    str: "string",
    bool: "bool",
    int: "number",
    float: "number",
    list: "array",
    dict: "object",
    type(None): "null",
}


def go_json_type(value: Any) -> str:
    """The JSON type name Go uses in `cannot unmarshal <type> into …` messages."""
    return _GO_TYPE.get(type(value), "value")


def go_json_error(body: bytes) -> str:
    """Approximate Go's decoder error for a body that is not one JSON value."""
    text = body.decode("utf-8", errors="replace")
    if not text.strip():
        return "EOF"
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        if err.pos >= len(text.rstrip()):
            return "unexpected EOF"
        char = text[err.pos]
        if err.msg.startswith("Expecting value"):
            return f"invalid character {char!r} looking for beginning of value"
        if err.msg.startswith("Extra data"):
            return f"invalid character {char!r} after top-level value"
        if err.msg.startswith("Expecting property name"):
            return f"invalid character {char!r} looking for beginning of object key string"
        return f"invalid character {char!r} after object key:value pair"
    return "invalid JSON"


class InvalidVersion(ValueError):
    """The dequeue `version` is neither a dev build nor semver (Masterminds' message)."""

    def __init__(self) -> None:
        super().__init__("Invalid Semantic Version")


# Masterminds/semver's loose version pattern, anchored as Go's `^…$` (end of text only).
_SEMVER = re.compile(
    r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
)
_BUILD_DATE = re.compile(r"\d+_(\d{4}-\d{2}-\d{2})_(?:\d+\.\d+-)?[a-z0-9]{7,}(_patch)?")
_V2_MIN = (4, 3, 0)
_V2_MIN_DATE = "2022-11-24"


def supports_v2(version: str) -> bool:
    """Whether an executor of this version gets the v2 job payload (§3.1).

    Empty means v1. `dev` and `0.0.0+dev` are dev builds (v2); dated insiders builds compare
    their date. Anything else must be semver; the constraint `>= 4.3.0-0` admits every
    4.3.0 pre-release, so only the numeric core matters. Raises `InvalidVersion`.
    """
    if version == "":
        return False
    if version in ("dev", "0.0.0+dev"):
        return True
    dated = _BUILD_DATE.fullmatch(version)
    if dated:
        return dated.group(1) >= _V2_MIN_DATE
    match = _SEMVER.fullmatch(version)
    if not match:
        raise InvalidVersion()
    core = tuple(int(g.lstrip(".")) if g else 0 for g in match.group(1, 2, 3))
    return core >= _V2_MIN


def parse_duration(text: str) -> float:
    """Seconds in a Go duration such as `25s`, `1m30s`, `500ms`; a bare number is seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return parse_go_duration(text)
