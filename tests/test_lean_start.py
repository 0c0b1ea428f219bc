"""`executor run` starts without rich, pygments and click (`executor/__init__.py`), which
structlog and httpx would import only because they are installed; other commands keep
them. A running idle daemon loads nothing its configuration does not use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fixtures_daemon import wait_for


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


def test_idle_daemon_loads_only_what_its_configuration_needs(
    daemon_factory: Any,
) -> None:
    """A daemon that has connected and swept once (the janitor starts after the first answer
    from the frontend) imported neither pydantic-settings nor the batch engine (`bench.idle`)."""
    root: Path = daemon_factory.workspace_root
    dead_lock = root / ".executor-gone-daemon.lock"
    dead_lock.write_text("1\n")  # unlocked: the first sweep removes it, after its listing
    daemon = daemon_factory(plain_env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert wait_for(lambda: not dead_lock.exists(), timeout=120), daemon.log_text
    names = {
        line.split("|")[2].strip()
        for line in daemon.log_text.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "executor.runtime.janitor" in names
    heavy = ("pydantic_settings", "dotenv", "executor.batch")
    # A package marked absent still logs one line (the failed attempt); loaded, its submodules.
    loaded = sorted(n for n in names if n.startswith(tuple(f"{h}." for h in heavy)))
    assert loaded == []
