"""Without a Docker engine, the Docker tests fail: a CI run on a machine without one is red.

A pytest run in a subprocess, pointed at an engine that does not exist (`DOCKER_HOST` naming a
socket that is not there), uses the `docker_engine` fixture: it must report a failure naming
the engine, never a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_docker_test_fails_when_there_is_no_engine(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        'pytest_plugins = ["fixtures_docker"]\n'
    )
    (tmp_path / "test_needs_docker.py").write_text(
        "def test_needs_docker(docker_engine):\n    assert docker_engine.image\n"
    )
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-such-docker.sock"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "a Docker engine is required" in out, out
    assert "skipped" not in out, out
