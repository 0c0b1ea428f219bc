"""Go-compatible helpers of the sandbox: version gate, decoder errors, durations."""

from __future__ import annotations

import pytest

from executor.sandbox.compat import (
    InvalidVersion,
    go_json_error,
    go_quote,
    parse_duration,
    supports_v2,
)


@pytest.mark.parametrize(
    ("version", "v2"),
    [
        ("", False),
        ("dev", True),
        ("0.0.0+dev", True),
        ("5.3.0", True),
        ("4.3.0", True),
        ("4.3.0-rc.1", True),
        ("v4.3.1", True),
        ("4.2.9", False),
        ("4.2", False),
        ("3", False),
        ("0.0.0-dev", False),
        ("123_2022-11-24_abcdef1", True),
        ("123_2022-11-23_abcdef1", False),
    ],
)
def test_supports_v2(version: str, v2: bool) -> None:
    assert supports_v2(version) is v2


@pytest.mark.parametrize("version", ["\n1.2", "not-a-version", "1.2.3.4", "5.3.0\n"])
def test_invalid_versions(version: str) -> None:
    with pytest.raises(InvalidVersion, match="Invalid Semantic Version"):
        supports_v2(version)


def test_go_quote_escapes_like_percent_q() -> None:
    assert go_quote("\n1.2") == '"\\n1.2"'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "EOF"),
        (b"   ", "EOF"),
        (b"not json", "invalid character 'n' looking for beginning of value"),
        (b'{"executorName":', "unexpected EOF"),
        (b"{} x", "invalid character 'x' after top-level value"),
    ],
)
def test_go_json_error(body: bytes, message: str) -> None:
    assert go_json_error(body) == message


@pytest.mark.parametrize(
    ("text", "seconds"), [("25s", 25.0), ("1m30s", 90.0), ("500ms", 0.5), ("2", 2.0)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
