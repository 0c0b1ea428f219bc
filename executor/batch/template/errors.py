"""The one exception type of the template package.

Owns: `TemplateError`, raised for lexing, parsing and execution failures alike. Its message
is Go's full error text, e.g. `template: t:1:4: executing "t" at <outputs>: map has no entry
for key "x"` (execution) or `template: t:1: function "x" not defined` (parsing), so callers can
wrap it the way src-cli does (`parsing step run: <message>`).
"""

from __future__ import annotations

__all__ = ["TemplateError"]


class TemplateError(Exception):
    """A template failed to parse or execute; `str(err)` is Go's message with its position."""
