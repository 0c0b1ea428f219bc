"""The engine's front door: build a function map, parse once, execute.

Owns: `Template` (Go's `template.New(name).Delims(...).Option(...).Funcs(...).Parse(...)`)
and `render`. Knows nothing of step contexts (see `step_context.py`).

Function lookup follows Go's `findFunction`: the template's own functions first (the caller's
`funcs`, then Sourcegraph's helpers), then Go's builtins, so a caller may shadow a builtin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .exec import MISSING_KEY_MODES, execute
from .funcs import BUILTINS
from .gofunc import GoFunc, wrap_python_callable
from .parse import Tree, parse
from .sg_funcs import SG_HELPERS

__all__ = ["SG_DELIMS", "Template", "render"]

SG_DELIMS = ("${{", "}}")


class Template:
    """A parsed template with its functions; `execute(data)` may be called many times."""

    def __init__(
        self,
        name: str,
        source: str,
        *,
        delims: tuple[str, str] = SG_DELIMS,
        funcs: Mapping[str, Callable[..., object] | GoFunc] | None = None,
        helpers: bool = True,
        missingkey: str = "error",
    ) -> None:
        if missingkey not in MISSING_KEY_MODES:
            raise ValueError(f"unrecognized option: missingkey={missingkey}")
        table: dict[str, GoFunc] = dict(BUILTINS)
        if helpers:
            table.update(SG_HELPERS)
        for key, fn in (funcs or {}).items():
            table[key] = wrap_python_callable(fn) if not isinstance(fn, GoFunc) else fn
        self.name = name
        self.funcs = table
        self.missingkey = missingkey
        left, right = delims
        self.tree: Tree = parse(name, source, (left or "{{", right or "}}"), frozenset(table))

    def execute(self, data: object) -> str:
        """Run the template with dot and `$` set to `data`."""
        return execute(self.tree, data, self.funcs, missingkey=self.missingkey)


def render(
    source: str,
    data: Mapping[str, object] | object,
    *,
    name: str = "step",
    delims: tuple[str, str] = SG_DELIMS,
    funcs: Mapping[str, Callable[..., object]] | None = None,
    helpers: bool = True,
    missingkey: str = "error",
) -> str:
    """Parse and execute `source` with Go `text/template` semantics.

    `data` becomes dot and `$` (a dict is a `map[string]interface {}`). `funcs` are extra
    functions, each taking `interface {}` arguments (pass a `GoFunc` for typed ones).
    Sourcegraph's helpers (`join split replace join_if matches`) are included unless
    `helpers=False`. Raises `TemplateError` with Go's message on any failure.
    """
    return Template(
        name, source, delims=delims, funcs=funcs, helpers=helpers, missingkey=missingkey
    ).execute(data)
