"""Executor: a Python executor daemon for Sourcegraph's executor queue API.

Owns the version string, and one start-up decision for the daemon: `executor run` (or `python
-m executor run`, or no command) never needs rich, pygments, click or trio, which libraries pull
in only because they are installed (the sandbox CLI uses rich; selenium, a test dependency,
brings trio): `structlog.dev` imports rich for pretty tracebacks when it can, `httpx` imports
its command-line tool (`httpx._main`: rich, pygments, click), and `httpcore._synchronization`
imports trio (with attrs, outcome, sortedcontainers: 80 modules) to tell which event loop it
runs under. Marking them absent before any of these libraries is imported makes each take its
fallback (plain tracebacks, no `httpx` CLI, asyncio only: the daemon runs nothing else) and
saves ~4 MiB (rich) and ~4 MiB (trio) of an idle daemon's RSS (`bench.idle`). Every other
command, and any other program importing this package, is left alone.
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
    for _name in ("rich", "httpx._main", "trio"):
        if _name not in sys.modules:
            sys.modules[_name] = None  # type: ignore[assignment]  # import raises ImportError
