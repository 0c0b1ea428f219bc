"""The batch exec engine: src-cli's semantics for server-side batch changes."""

from __future__ import annotations

__all__: list[str] = []
