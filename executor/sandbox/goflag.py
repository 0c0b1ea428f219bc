"""Command-line flags as Go's `flag.FlagSet` (with `flag.ExitOnError`) parses and prints them,
for the src-cli commands of `executor.sandbox.srccli`.

Facts from Go's `src/flag/flag.go`: `-name`, `--name`, `-name=value` and `-name value` (not
for booleans: `-b=false`); parsing stops at the first argument that is not a flag, at `-`
and after `--`; `-h`/`-help` print the usage and exit 0; any other error prints one line
(`flag provided but not defined: -x`, `flag needs an argument: -x`, `bad flag syntax: ---x`,
`invalid boolean value "v" for -x: parse error`, `invalid value "v" for flag -x: parse
error`), then the usage, and exits 2. `PrintDefaults` prints flags sorted by name as
`  -name type` + `\\n    \\t` + usage (one tab after a one-letter boolean), then
` (default "x")` for a non-zero string default and ` (default 1h0m0s)` for other types.

One leniency, documented in `docs/sandbox.md`: flags after the first positional argument are
parsed too (`batch apply spec.yaml -wait`, the form this project documented first); Go would
keep them as arguments. `--` still ends the flags.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from executor.config.goparse import parse_go_bool, parse_go_duration

__all__ = ["FlagExit", "FlagSet", "go_duration"]


class FlagExit(Exception):
    """Parsing ended the command: `code` 0 after `-h`, 2 after an error (already printed)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def go_duration(seconds: float) -> str:
    """A duration as Go's `time.Duration.String` prints whole-second values (`1h0m0s`)."""
    total = int(seconds)
    if total == 0:
        return "0s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass
class _Flag:
    name: str
    kind: str  # bool, string, int, duration
    default: Any
    usage: str
    dest: str


def _parse_int(text: str) -> int:
    return int(text, 0)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "int": _parse_int,
    "duration": parse_go_duration,
}


@dataclass
class FlagSet:
    """A named flag set; `usage` prints the help (Go's `flagSet.Usage`)."""

    name: str
    usage: Callable[[FlagSet], None] | None = None
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    _flags: dict[str, _Flag] = field(default_factory=dict)

    def add(self, kind: str, name: str, default: Any, usage: str, dest: str = "") -> None:
        """Define `-name` of `kind` (bool, string, int, duration); `dest` shares a value
        between aliases (`-n` for `-namespace`)."""
        self._flags[name] = _Flag(name, kind, default, usage, dest or name)

    def print_defaults(self, out: TextIO) -> None:
        for flag in sorted(self._flags.values(), key=lambda f: f.name):
            type_name = "" if flag.kind == "bool" else flag.kind
            line = f"  -{flag.name}" + (f" {type_name}" if type_name else "")
            line += "\t" if len(line) <= 4 else "\n    \t"
            line += flag.usage.replace("\n", "\n    \t")
            if flag.default not in (False, "", 0):
                if flag.kind == "string":
                    line += f' (default "{flag.default}")'
                elif flag.kind == "duration":
                    line += f" (default {go_duration(flag.default)})"
                else:
                    line += f" (default {str(flag.default).lower()})"
            print(line, file=out)

    def _fail(self, message: str) -> FlagExit:
        print(message, file=self.stderr)
        self.print_usage()
        return FlagExit(2)

    def print_usage(self) -> None:
        if self.usage is not None:
            self.usage(self)
        else:
            print(f"Usage of {self.name}:", file=self.stderr)
            self.print_defaults(self.stderr)

    def parse(self, args: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
        """(values by `dest`, positional arguments); raises `FlagExit` after -h or an error."""
        values = {f.dest: f.default for f in self._flags.values()}
        positional: list[str] = []
        rest = list(args)
        while rest:
            arg = rest.pop(0)
            if arg == "--":
                positional += rest
                break
            if len(arg) < 2 or not arg.startswith("-"):
                positional.append(arg)
                continue
            name = arg[2:] if arg.startswith("--") else arg[1:]
            if not name or name.startswith("-") or name.startswith("="):
                raise self._fail(f"bad flag syntax: {arg}")
            name, has_value, value = name.partition("=")
            flag = self._flags.get(name)
            if flag is None:
                if name in ("h", "help"):
                    self.print_usage()
                    raise FlagExit(0)
                raise self._fail(f"flag provided but not defined: -{name}")
            if flag.kind == "bool":
                try:
                    values[flag.dest] = parse_go_bool(value) if has_value else True
                except ValueError:
                    raise self._fail(
                        f'invalid boolean value "{value}" for -{name}: parse error'
                    ) from None
                continue
            if not has_value:
                if not rest:
                    raise self._fail(f"flag needs an argument: -{name}")
                value = rest.pop(0)
            try:
                values[flag.dest] = _PARSERS[flag.kind](value)
            except ValueError:
                raise self._fail(f'invalid value "{value}" for flag -{name}: parse error') from None
        return values, positional
