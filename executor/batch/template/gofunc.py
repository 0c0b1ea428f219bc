"""How a callable looks to the template engine: its Go parameter types and arity.

Owns: `GoFunc`, the descriptor the evaluator uses to check arity and convert arguments like
Go's `evalCall`/`evalArg`/`validateType` do, and `CallError`, which a function raises to
report `error calling NAME: <message>`. Knows nothing of specific functions.

Parameter types are Go type names, because they appear verbatim in error messages:
`string`, `[]string`, `int`, `bool`, `float64`, `interface {}` (any value, unboxed) and
`reflect.Value` (the raw evaluator value, boxing and invalid values kept; Go's own builtins
take these).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ANY", "NILLABLE", "VALUE", "CallError", "GoFunc", "wrap_python_callable"]

ANY = "interface {}"
VALUE = "reflect.Value"
# Types whose zero value is nil: an invalid value or `nil` literal converts to their zero.
NILLABLE = frozenset({ANY, VALUE, "[]string", "map[string]interface {}"})


class CallError(Exception):
    """Raised by a template function: becomes `error calling NAME: <message>`."""


@dataclass(frozen=True)
class GoFunc:
    """A callable plus the Go signature the evaluator checks calls against."""

    fn: Callable[..., object]
    params: tuple[str, ...] = ()
    variadic: str | None = None
    builtin: bool = False


def wrap_python_callable(fn: Callable[..., object]) -> GoFunc:
    """Describe a plain Python callable: every parameter is `interface {}`."""
    if isinstance(fn, GoFunc):
        return fn
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return GoFunc(fn, (), ANY)
    fixed = 0
    variadic = False
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            fixed += 1
        elif p.kind is p.VAR_POSITIONAL:
            variadic = True
    return GoFunc(fn, (ANY,) * fixed, ANY if variadic else None)
