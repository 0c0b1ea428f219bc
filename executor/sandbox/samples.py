"""Sample repositories for the README's first run and the batch tests.

`create_sample_repos(root)` (re)creates three tiny git repositories under `root`, each with
one commit on `main`, and returns `{name: path}` for the sandbox to host in place:

| name | content |
| --- | --- |
| `github.com/sandbox/hello-go` | `README.md` mentioning foo, `go.mod`, `main.go` |
| `github.com/sandbox/hello-py` | `README.md` mentioning foo, `hello.py` |
| `github.com/sandbox/monorepo` | `services/{api,web}/` with foo in `README.md`, `package.json`; |
| | a root `README.md` without foo |

Commits are reproducible (fixed author, committer and dates), so the same samples get the
same commit IDs on every machine and cache keys stay comparable.

Knows git only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["SAMPLE_REPOS", "create_sample_repos"]

SAMPLE_REPOS: dict[str, dict[str, str]] = {
    "github.com/sandbox/hello-go": {
        "README.md": "# hello-go\n\nA tiny Go program that prints foo.\n",
        "go.mod": "module github.com/sandbox/hello-go\n\ngo 1.22\n",
        "main.go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("foo") }\n',
    },
    "github.com/sandbox/hello-py": {
        "README.md": "# hello-py\n\nRun `python hello.py` to print foo.\n",
        "hello.py": 'print("foo")\n',
    },
    "github.com/sandbox/monorepo": {
        "README.md": "# monorepo\n\nTwo services.\n",
        "services/api/README.md": "# api\n\nThe api service returns foo.\n",
        "services/api/package.json": '{"name": "api", "version": "1.0.0"}\n',
        "services/web/README.md": "# web\n\nThe web service shows foo.\n",
        "services/web/package.json": '{"name": "web", "version": "1.0.0"}\n',
    },
}

_DATE = "2024-01-01T00:00:00Z"


def _git(cwd: Path, *args: str) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Sandbox Samples",
        "GIT_AUTHOR_EMAIL": "samples@sandbox.invalid",
        "GIT_AUTHOR_DATE": _DATE,
        "GIT_COMMITTER_NAME": "Sandbox Samples",
        "GIT_COMMITTER_EMAIL": "samples@sandbox.invalid",
        "GIT_COMMITTER_DATE": _DATE,
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def create_sample_repos(root: Path) -> dict[str, Path]:
    """(Re)create every sample repository under `root`; `{name: path}`."""
    created: dict[str, Path] = {}
    for name, files in SAMPLE_REPOS.items():
        path = root / name.replace("/", "_")
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        _git(path, "init", "--quiet", "--initial-branch=main")
        for rel, text in files.items():
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        _git(path, "add", "--all")
        _git(path, "commit", "--quiet", "-m", f"Initial commit of {name}")
        created[name] = path
    return created
