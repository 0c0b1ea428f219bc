"""structlog configuration, done once by the CLI.

JSON lines by default, a console renderer on a TTY (`EXECUTOR_LOG_FORMAT` overrides). Every
event carries the context bound with `structlog.contextvars` (`jobID`, `queue`, `stepKey`).
SECURITY: a last processor replaces the executor token and any registered secret in every
string value, so even a careless log call cannot leak one.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["add_secret", "configure_logging"]

_SECRETS: set[str] = set()
_PATTERN: list[re.Pattern[str]] = []


def add_secret(value: str) -> None:
    """Register a value that must never appear in a log line."""
    if len(value) < 4 or value in _SECRETS:
        return
    _SECRETS.add(value)
    alternatives = sorted(_SECRETS, key=len, reverse=True)
    _PATTERN[:] = [re.compile("|".join(re.escape(s) for s in alternatives))]


def _scrub(value: Any) -> Any:
    if isinstance(value, str) and _PATTERN:
        return _PATTERN[0].sub("SECRET_REMOVED", value)
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


def _redact_processor(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        event[key] = _scrub(value)
    return event


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    """Set structlog up for the process (`fmt`: auto, json or console)."""
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
