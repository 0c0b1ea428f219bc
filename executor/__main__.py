"""`python -m executor` runs the CLI."""

from __future__ import annotations

from executor.cli import main

__all__: list[str] = []

main()
