"""Executor: a Python executor daemon for Sourcegraph's executor queue API.

Owns the version string only; every other module is imported by name.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
