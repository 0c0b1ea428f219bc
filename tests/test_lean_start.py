"""`executor run` starts without rich, pygments and click (`executor/__init__.py`), which
structlog and httpx would import only because they are installed; other commands keep them."""

from __future__ import annotations

import os
import subprocess
import sys


def _imported(*args: str) -> set[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "executor", *args],
        env=env,  # no EXECUTOR_FRONTEND_URL: `run` stops at the configuration check
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return {
        line.split("|")[2].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_run_loads_neither_rich_nor_the_httpx_cli() -> None:
    names = _imported("run")
    assert "structlog.dev" in names  # the code path that would have pulled rich in
    assert not [n for n in names if n.startswith(("rich.", "pygments", "click", "httpx._main"))]


def test_other_commands_keep_rich() -> None:
    assert any(n.startswith("rich.") for n in _imported("sandbox", "--help"))
