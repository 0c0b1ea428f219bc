"""The repository cache under a hostile step (real daemon, Docker, git): a step running as root
that writes to every path it can see leaves the cache byte for byte as it was, and the next job
is still served from the cache with the repository as committed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "executor-busybox:latest"
FINAL = ("completed", "errored", "failed", "canceled")

# Append to every writable regular file (but the image's own programs, which it needs to go on)
# and drop a file in every writable directory the container sees, the workspace mount included;
# then print what it saw.
HOSTILE = (
    "for f in $(find / -type f 2>/dev/null | grep -Ev '^/(proc|sys|bin|sbin|usr|lib)'); do "
    '[ -w "$f" ] && echo pwned >> "$f" 2>/dev/null; done; '
    "for d in $(find / -type d 2>/dev/null | grep -v '^/proc' | grep -v '^/sys'); do "
    'touch "$d/pwned" 2>/dev/null; done; '
    "echo seen-cache=$(find / -name ready.json 2>/dev/null | grep -v '^/proc' | wc -l); "
    "echo wrote=$(grep -rl pwned /data 2>/dev/null | wc -l); exit 0"  # before its appended line
)


def digest(root: Path) -> dict[str, str]:
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _job(repo: Any, *commands: str) -> dict[str, Any]:
    step = {"key": "", "image": IMAGE, "commands": list(commands), "dir": ".", "env": []}
    return {
        "repositoryName": repo.name,
        "commit": repo.head,
        "shallowClone": True,
        "dockerSteps": [step],
    }


def _out(sandbox: Any, job_id: int, key: str) -> str:
    logs = {e["key"]: e for e in sandbox.job(job_id)["execution_logs"]}
    return str(logs[key]["out"])


def test_a_step_writing_everywhere_cannot_touch_the_cache(
    sandbox: Any, sample_repo: Any, daemon_factory: Any, tmp_path: Path
) -> None:
    sandbox.add_repo(sample_repo.name, sample_repo.path)
    cache = tmp_path / "repo-cache"
    daemon_factory(repo_cache_dir=str(cache), maximum_num_jobs="1")
    first = sandbox.enqueue(_job(sample_repo, "true"))
    assert sandbox.wait_state(first, FINAL, timeout=120)["state"] == "completed"
    before = digest(cache)
    assert any(name.endswith("ready.json") for name in before), before

    hostile = sandbox.enqueue(_job(sample_repo, HOSTILE))
    done = sandbox.wait_state(hostile, FINAL, timeout=300)
    assert done["state"] == "completed", _out(sandbox, hostile, "step.docker.0")[-1500:]
    fetch = next(e for e in sandbox.job(hostile)["execution_logs"] if e["key"] == "setup.git.fetch")
    assert fetch["command"][-2].startswith("file://"), fetch["command"]  # served from the cache
    out = _out(sandbox, hostile, "step.docker.0")
    assert "stdout: seen-cache=0" in out, out  # the cache is not even visible
    wrote = int(out.split("stdout: wrote=")[1].split()[0])
    assert wrote > 0, out  # the step did write wherever it could
    assert digest(cache) == before  # and none of it reached the cache

    after = sandbox.enqueue(_job(sample_repo, "cat README.md", "ls -a | grep -c pwned || true"))
    assert sandbox.wait_state(after, FINAL, timeout=120)["state"] == "completed"
    out = _out(sandbox, after, "step.docker.0")
    # Only what the commands printed: the shell's xtrace lines (stderr) name `pwned` too, and
    # the two sides of the pipe trace concurrently, so their lines can interleave mid-word.
    printed = [line for line in out.splitlines() if line.startswith("stdout: ")]
    assert "stdout: # sample" in printed and not any("pwned" in p for p in printed), out
    assert "stdout: 0" in printed, out
