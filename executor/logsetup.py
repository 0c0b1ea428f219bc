"""structlog configuration, done once by the CLI.

JSON lines by default, a console renderer on a TTY (`EXECUTOR_LOG_FORMAT` overrides). Every
event carries the context bound with `structlog.contextvars` (`jobID`, `queue`, `stepKey`).
SECURITY: a last processor replaces the executor token and any registered secret in every
string value (and the running job's secrets, `executor.redaction.job_redactor`), in every form
`executor.redaction` knows (plain, base64, percent, hex, JSON), so even a careless log call
cannot leak one. Values shorter than 4 characters are not registered: they would garble every
line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from executor.redaction import Redactor, job_redactor

__all__ = ["add_secret", "configure_logging"]

_MIN_SECRET = 4
_SECRETS: set[str] = set()
_REDACTOR: list[Redactor] = []


def add_secret(value: str) -> None:
    """Register a value that must never appear in a log line."""
    if len(value) < _MIN_SECRET or value in _SECRETS:
        return
    _SECRETS.add(value)
    _REDACTOR[:] = [Redactor.for_secrets(_SECRETS)]


def _scrub(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, redact) for v in value)
    if isinstance(value, dict):
        return {k: _scrub(v, redact) for k, v in value.items()}
    return value


def _redact_processor(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    redactors = [r for r in (job_redactor.get(), *_REDACTOR) if r]
    if not redactors:
        return event

    def redact(text: str) -> str:
        for redactor in redactors:
            text = redactor.redact(text)
        return text

    for key, value in list(event.items()):
        event[key] = _scrub(value, redact)
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
