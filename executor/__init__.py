"""Executor: a Python executor daemon for Sourcegraph's executor queue API.

Owns the version string, and the daemon's start-up decisions about optional libraries:
`executor run` (or `python -m executor run`, or no command) never needs what some libraries
pull in only because it is installed. Every other command, and any other program importing
this package, is left alone.

* **rich** and **`httpx._main`** are marked absent: `structlog.dev` imports rich for pretty
  tracebacks when it can, and `httpx` imports its command-line tool (rich, pygments, click);
  both take their fallback (plain tracebacks, no `httpx` CLI). ~4 MiB of an idle daemon.
* **charset_normalizer** is marked absent: requests (docker-py's transport) imports it to guess
  the encoding of a body that declares none, and falls back to UTF-8 without it, which is
  what the Engine API sends (JSON). Its compiled modules are ~2.6 MiB. requests warns once
  at import that it found no detector; that one warning is silenced.
* **trio** is hidden from **httpcore only**, while httpcore is imported:
  `httpcore._synchronization` imports it (attrs, outcome, sortedcontainers: 80 modules, ~4 MiB)
  only to tell which event loop it runs under when selenium, a test dependency, installed it;
  without it httpcore supports asyncio, the daemon's only loop. The marker is removed right
  after, so trio is never absent for anyone else: marked absent for the whole run it broke log
  uploads retried under injected faults, because tenacity's sleep does `import trio` whenever
  "trio" is in `sys.modules` and got "import of trio halted" (`tests/e2e/test_chaos_e2e.py`).
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


def _mark_absent() -> None:
    """The optional libraries `executor run` goes without (module docstring)."""
    for name in ("rich", "httpx._main", "charset_normalizer"):
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    import warnings

    warnings.filterwarnings("ignore", message="Unable to find acceptable character detection")
    # pydantic looks for plugins in every installed distribution's entry points when it
    # builds the first model; the daemon uses none (~0.4 MiB of metadata objects).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def _import_httpcore_without_trio() -> None:
    """Import httpcore while trio looks absent; afterwards trio is importable as ever."""
    if "trio" in sys.modules or "httpcore" in sys.modules:
        return
    sys.modules["trio"] = None  # type: ignore[assignment]
    try:
        import httpcore  # noqa: F401  # its `try: import trio` takes the ImportError
    except ImportError:
        pass
    finally:
        del sys.modules["trio"]


if _daemon_start():
    _mark_absent()
    _import_httpcore_without_trio()
