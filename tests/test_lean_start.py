"""`executor run` starts without rich, pygments, click and charset_normalizer, and with trio
hidden from httpcore only (`executor/__init__.py`): libraries would import them only because
they are installed; other commands keep them. A running idle daemon loads nothing its
configuration does not use: not docker-py (its janitor lists containers over the engine's
socket with httpx), the batch engine, ruamel, the Kubernetes client or trio."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fake_engine import fake_engine
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
    from the frontend) imported none of the heavy optional parts (`bench.idle`)."""
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
    assert "httpcore._synchronization" in names  # the module that would have imported trio
    heavy = (
        "pydantic_settings",
        "dotenv",
        "executor.batch",
        "docker",
        "requests",
        "urllib3",
        "charset_normalizer",
        "trio",
        "ruamel",
        "kubernetes_asyncio",
        "rich",
    )
    # A package marked absent still logs one line (the failed attempt); loaded, its submodules.
    loaded = sorted(n for n in names if n.startswith(tuple(f"{h}." for h in heavy)))
    assert loaded == []


def _as_daemon_start(code: str) -> dict[str, Any]:
    """Run `code` after `import executor` made `executor run`'s start-up decisions; `code`
    leaves its findings in `found`, printed as JSON."""
    program = (
        "import json, sys\n"
        "sys.argv = ['executor', 'run']\n"
        "import executor\n"
        "found = {}\n" + textwrap.dedent(code) + "\nprint(json.dumps(found))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", program],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return found


def test_trio_is_hidden_from_httpcore_only_and_retries_still_sleep() -> None:
    """Marked absent for the whole run, trio broke every retried upload: tenacity's sleep
    imports trio whenever "trio" is in sys.modules ("import of trio halted")."""
    found = _as_daemon_start(
        """
        import asyncio, importlib.util
        import httpcore._synchronization as sync
        from tenacity import AsyncRetrying, stop_after_attempt, wait_fixed

        found["httpcore_trio"] = repr(sync.trio)
        found["trio_in_modules"] = "trio" in sys.modules
        attempts = []

        async def flaky():
            async for attempt in AsyncRetrying(stop=stop_after_attempt(3), wait=wait_fixed(0.01)):
                with attempt:
                    attempts.append(1)
                    if len(attempts) < 2:
                        raise OSError("injected")

        asyncio.run(flaky())
        found["attempts"] = len(attempts)
        found["trio_installed"] = importlib.util.find_spec("trio") is not None
        if found["trio_installed"]:
            import trio  # importable for anyone after start-up
            found["trio_works"] = trio.run(trio.sleep, 0) is None
        """
    )
    assert found["httpcore_trio"] == "None"
    assert found["trio_in_modules"] is False
    assert found["attempts"] == 2
    if found["trio_installed"]:
        assert found["trio_works"] is True


def test_requests_goes_without_charset_normalizer_quietly() -> None:
    """`-W error`: the warning requests gives without a detector would fail the import."""
    found = _as_daemon_start(
        """
        import requests, requests.compat
        found["detector"] = repr(requests.compat.chardet)
        response = requests.models.Response()
        response._content = '{"message": "ünïcode"}'.encode()
        found["text"] = response.text
        found["loaded"] = sys.modules.get("charset_normalizer") is not None
        """
    )
    assert found == {"detector": "None", "text": '{"message": "ünïcode"}', "loaded": False}


def test_other_programs_keep_charset_normalizer() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import executor, requests.compat as c; print(c.chardet is None)"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.strip() == "False", done.stderr


def test_a_listing_that_fails_raises_with_the_reason(tmp_path: Path) -> None:
    """The janitor's listing goes over the engine's socket without docker-py; an engine it
    cannot reach, or one that answers an error, is an error of the sweep (counted, logged),
    never an empty list."""
    from executor.runtime.docker import DockerRuntime

    def listing_error(engine: str) -> str:
        runtime = DockerRuntime(
            executor_name="lean", env={"PATH": os.environ["PATH"], "DOCKER_HOST": engine}
        )
        with pytest.raises(RuntimeError) as caught:
            asyncio.run(runtime.list_containers({"executor.host": "lean"}))
        assert runtime._client is None  # the SDK was not loaded here for it
        return str(caught.value)

    missing = listing_error("unix:///nonexistent/docker.sock")
    assert missing.startswith("container listing failed: /nonexistent/docker.sock: "), missing
    with fake_engine(tmp_path, "error") as engine:
        answered = listing_error(engine)
    assert answered == "container listing failed: the engine answered 404: page not found"


def test_an_engine_that_is_not_a_local_socket_is_listed_through_docker_py() -> None:
    """`tcp://` (and `ssh://`, TLS) engines are docker-py's to speak: the listing loads it."""
    from executor.runtime.docker import DockerRuntime

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # nothing listens once the socket is closed
    runtime = DockerRuntime(
        executor_name="lean",
        env={"PATH": os.environ["PATH"], "DOCKER_HOST": f"tcp://127.0.0.1:{closed}"},
    )
    import docker.errors

    try:
        # docker-py's own error (its client could not even ask the engine's API version).
        with pytest.raises(docker.errors.DockerException, match=r"(?i)connection refused"):
            asyncio.run(runtime.list_containers({"executor.host": "lean"}))
    finally:
        runtime.close()
