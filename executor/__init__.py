"""Executor: a Python executor daemon for Sourcegraph's executor queue API.

Owns the version string, and one start-up decision for the daemon: `executor run` (or `python
-m executor run`, or no command) never needs rich, pygments or click, which two libraries pull
in only because they are installed (the sandbox CLI uses rich): `structlog.dev` imports rich
for pretty tracebacks when it can, and `httpx` imports its command-line tool (`httpx._main`:
rich, pygments, click). Marking them absent before either library is imported makes both take
their fallback (plain tracebacks, no `httpx` CLI) and saves ~4 MiB of an idle daemon's RSS
(`bench.idle`). Every other command, and any other program importing this package, is left
alone.
"""

from __future__ import annotations

import os
import sys

__all__ = ["__version__"]

__version__ = "0.1.0"


def _daemon_start() -> bool:
    # While `python -m executor` locates the package, argv[0] is "-m" (Python's documented
    # placeholder); the console script's argv[0] is its path.
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    return program in ("-m", "executor") and sys.argv[1:2] in ([], ["run"])


if _daemon_start():
    for _name in ("rich", "httpx._main"):
        if _name not in sys.modules:
            sys.modules[_name] = None  # type: ignore[assignment]  # import raises ImportError
