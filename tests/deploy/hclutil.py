"""Shared helpers for the deployment tests: paths and HCL loading via python-hcl2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TF = REPO / "deploy" / "terraform"

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is needed (dev extras)")


def unquote(value: Any) -> Any:
    """python-hcl2 8.x keeps HCL quotes on strings and block labels; strip them recursively."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return value[1:-1]
        return value
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


def load_dir(path: Path) -> dict[str, list[Any]]:
    """Merge every .tf file of a module: {"resource": [...], "variable": [...], ...}."""
    merged: dict[str, list[Any]] = {}
    for tf in sorted(path.glob("*.tf")):
        with tf.open() as fh:
            doc = unquote(hcl2.load(fh))
        for key, items in doc.items():
            merged.setdefault(key, []).extend(items)
    return merged


def resources(module: dict[str, list[Any]], rtype: str) -> dict[str, dict[str, Any]]:
    """All resources of one type in a loaded module, by name."""
    out: dict[str, dict[str, Any]] = {}
    for block in module.get("resource", []):
        for name, body in block.get(rtype, {}).items():
            out[name] = body
    return out


def variables(module: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    """All variable blocks of a loaded module, by name."""
    out: dict[str, dict[str, Any]] = {}
    for block in module.get("variable", []):
        out.update(block)
    return out


def first(value: Any) -> Any:
    """Nested blocks load as one-element lists."""
    return value[0] if isinstance(value, list) and value else value
