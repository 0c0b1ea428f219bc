"""Go's value syntaxes, parsed as Go parses them: durations, booleans, integers, data sizes.

`time.ParseDuration`, `strconv.ParseBool`, `strconv.Atoi` and the size strings Sourcegraph's
config accepts (`12G`). Error messages are Go's own. Nothing is trimmed: Go refuses `" 2"`,
`"2s "` and `" true"`, and so do these. Sizes follow Docker's `units.RAMInBytes` (the daemon
parses `--memory`): one optional space between the number and the unit, none around them.
Pure; imports nothing from the project.
"""

from __future__ import annotations

import re

__all__ = [
    "FALSE_SPELLINGS",
    "TRUE_SPELLINGS",
    "format_go_duration",
    "parse_data_size",
    "parse_go_bool",
    "parse_go_duration",
    "parse_go_int",
]

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_MAX_DURATION = (2**63 - 1) / 1e9
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(value: object) -> float:
    """Seconds from a Go duration string (`time.ParseDuration`); numbers pass through."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value)
    original = text
    sign = 1.0
    if text[:1] in "+-" and text:
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise ValueError(f'time: invalid duration "{original}"')
    total, pos = 0.0, 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if not match or match.group(1) in ("", "."):
            if match is None and re.match(r"[0-9]*\.?[0-9]*$", text[pos:]):
                raise ValueError(f'time: missing unit in duration "{original}"')
            raise ValueError(f'time: invalid duration "{original}"')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if total > _MAX_DURATION:
        # Go's Duration is int64 nanoseconds (about 292 years); past it ParseDuration fails.
        raise ValueError(f'time: invalid duration "{original}"')
    return sign * total


def format_go_duration(seconds: float) -> str:
    """Go's `Duration.String()`: `0s`, `1.5ms`, `12µs`, `2.003s`, `1m4s`, `30m0s`, `1h0m0s`."""
    ns = round(seconds * 1e9)
    if ns < 0:
        return "-" + format_go_duration(-seconds)
    if ns == 0:
        return "0s"
    if ns < 1000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.3f}".rstrip("0").rstrip(".") + "µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.6f}".rstrip("0").rstrip(".") + "ms"
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    secs = f"{rest / 1e9:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    return f"{minutes}m{secs}" if minutes else secs


TRUE_SPELLINGS = {"1", "t", "T", "TRUE", "true", "True"}
FALSE_SPELLINGS = {"0", "f", "F", "FALSE", "false", "False"}


def parse_go_bool(value: object) -> bool:
    """`strconv.ParseBool`: exactly the twelve spellings Go accepts."""
    if isinstance(value, bool):
        return value
    text = str(value)
    if text in TRUE_SPELLINGS:
        return True
    if text in FALSE_SPELLINGS:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def parse_go_int(value: object) -> int:
    """`strconv.Atoi` on a 64-bit platform: decimal digits with an optional sign, int64 range."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
        text = str(value)
    else:
        text = str(value)
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise ValueError(f'strconv.Atoi: parsing "{text}": invalid syntax')
        number = int(text)
    if not -(2**63) <= number < 2**63:
        raise ValueError(f'strconv.Atoi: parsing "{text}": value out of range')
    return number


_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?([kmgtp]?)(i?b?)", re.IGNORECASE)


def parse_data_size(value: str) -> int:
    """Bytes from `12G`, `512M`, `1GB`, `1GiB` or a plain byte count (binary multiples)."""
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(
            f'invalid data size "{value}": want a number with an optional unit such as 512M or 12G'
        )
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * 1024 ** "bkmgtp".index(unit or "b"))
