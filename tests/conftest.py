"""Shared pytest configuration: fixture plugins live beside this file, one module per area."""

from __future__ import annotations

pytest_plugins: list[str] = ["fixtures_docker", "fixtures_sandbox", "fixtures_daemon"]
