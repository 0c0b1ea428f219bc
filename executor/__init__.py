"""Executor: a Python executor daemon for Sourcegraph's executor queue API.

Owns the version string, and one start-up decision for the daemon: `executor run` (or `python
-m executor run`, or no command) never needs rich, pygments or click, which libraries pull in
only because they are installed (the sandbox CLI uses rich): `structlog.dev` imports rich for
pretty tracebacks when it can, and `httpx` imports its command-line tool (`httpx._main`: rich,
pygments, click). Marking them absent before any of these libraries is imported makes each take
its fallback (plain tracebacks, no `httpx` CLI) and saves ~4 MiB of an idle daemon's RSS
(`bench.idle`). Every other command, and any other program importing this package, is left
alone. trio (which `httpcore._synchronization` imports when selenium, a test dependency,
installed it) was marked absent too until that broke log uploads under injected faults
("import of trio halted", `tests/e2e/test_chaos_e2e.py`); it costs ~4 MiB in a dev venv only.
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
    # Not trio: marked absent it broke log uploads under faults ("import of trio halted" from
    # httpx/httpcore when a request was retried or timed out, tests/e2e/test_chaos_e2e.py).
    for _name in ("rich", "httpx._main"):
        if _name not in sys.modules:
            sys.modules[_name] = None  # type: ignore[assignment]  # import raises ImportError
