"""Glob matching for the `matches` helper, after gobwas/glob v0.2.3 with no separators.

Owns: compiling a gobwas pattern (lexer rules and compile errors) into a matcher. Knows
nothing of templates.

Facts (gobwas/glob `syntax/lexer/lexer.go`, `compiler`, `match`):
- `*` and `**` match any run of characters, `/` and newlines included (no separators are
  configured by Sourcegraph); `?` matches one character; `[abc]`, `[!abc]`, `[a-z]`,
  `[!a-z]` are classes; `{a,b}` alternatives nest; `\\c` is a literal `c`; a lone trailing
  `\\` is dropped; an unclosed `{` acts as if closed; `,` and `}` are literal outside braces.
- A class is either a single `lo-hi` range or a list of characters: `[a-z0-9]` is the error
  `expected close range character`. Other errors: `unexpected end of input` (`[`, `[a-`),
  `could not parse range` (`[]`, `[!]`), `hi character 'a' should be greater than lo 'z'`.
- Quirks reproduced: a one-character pattern (`?`, `[!a]`) also matches `""`; a `P*S`
  pattern is a prefix test plus a suffix test that may overlap (`"bb"` matches `bb*b`).
- Divergence (documented, not reproduced): gobwas treats a variable-length alternative
  beside other parts as fixed-length (`x{a*,b}` only matches 2 characters). This port
  matches such patterns the regular way.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["GlobError", "compile_glob"]


class GlobError(ValueError):
    """A pattern gobwas/glob would refuse to compile; the message is gobwas's."""


class _Compiler:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.depth = 0
        self.parts: list[str] = []
        # Simple shape tracking for the quirks: list of ("lit", text) / ("any",) / other.
        self.shape: list[tuple[str, str]] = []

    def read(self) -> str:
        c = self.p[self.i] if self.i < len(self.p) else ""
        self.i += 1
        return c

    def compile(self) -> str:
        while self.i < len(self.p):
            c = self.read()
            if c == "\\":
                nxt = self.read()
                if nxt:
                    self.literal(nxt)
            elif c == "*":
                while self.i < len(self.p) and self.p[self.i] == "*":
                    self.i += 1
                self.parts.append("(?s:.*)")
                self.shape.append(("any", ""))
            elif c == "?":
                self.parts.append("(?s:.)")
                self.shape.append(("single", ""))
            elif c == "[":
                self.parts.append(self.char_class())
            elif c == "{":
                self.depth += 1
                self.parts.append("(?:")
                self.shape.append(("alt", ""))
            elif c == "," and self.depth > 0:
                self.parts.append("|")
            elif c == "}" and self.depth > 0:
                self.depth -= 1
                self.parts.append(")")
            else:
                self.literal(c)
        self.parts.append(")" * self.depth)
        return "".join(self.parts)

    def literal(self, c: str) -> None:
        self.parts.append(re.escape(c))
        if self.shape and self.shape[-1][0] == "lit":
            self.shape[-1] = ("lit", self.shape[-1][1] + c)
        else:
            self.shape.append(("lit", c))

    def char_class(self) -> str:
        negated = False
        if self.i < len(self.p) and self.p[self.i] == "!":
            negated = True
            self.i += 1
        first = self.read()
        if first == "":
            raise GlobError("unexpected end of input")
        if self.i < len(self.p) and self.p[self.i] == "-":
            self.i += 1
            hi = self.read()
            if hi == "":
                raise GlobError("unexpected end of input")
            close = self.read()
            if close == "":
                raise GlobError("unexpected end of input")
            if close != "]":
                raise GlobError("expected close range character")
            if hi < first:
                raise GlobError(f"hi character '{hi}' should be greater than lo '{first}'")
            body = f"{re.escape(first)}-{re.escape(hi)}"
        else:
            self.i -= 1
            chars = ""
            while True:
                c = self.read()
                if c == "":
                    raise GlobError("unexpected end of input")
                if c == "]":
                    break
                if c == "\\":
                    c = self.read()
                    if c == "":
                        raise GlobError("unexpected end of input")
                chars += c
            if not chars:
                raise GlobError("could not parse range")
            body = "".join(re.escape(c) for c in chars)
        self.shape.append(("negclass" if negated else "class", ""))
        return f"[{'^' if negated else ''}{body}]"


def compile_glob(pattern: str) -> Callable[[str], bool]:
    """Compile `pattern`; return a whole-string matcher. Raises GlobError."""
    comp = _Compiler(pattern)
    regex = re.compile(comp.compile(), re.DOTALL)
    shape = comp.shape
    kinds = [k for k, _ in shape]
    if kinds in (["single"], ["negclass"]):
        # gobwas's single-rune matchers accept the empty string (match/single.go, list.go).
        return lambda s: s == "" or regex.fullmatch(s) is not None
    if kinds == ["lit", "any", "lit"]:
        prefix, suffix = shape[0][1], shape[2][1]
        # match/prefix_suffix.go does not check that prefix and suffix are disjoint.
        return lambda s: s.startswith(prefix) and s.endswith(suffix)
    return lambda s: regex.fullmatch(s) is not None
