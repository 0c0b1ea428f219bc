"""A `src batch exec` workspace on disk for the engine's tests: a committed repository and the
`input.json` Sourcegraph writes (`WorkspacesExecutionInput`), as the batch engine and the
batch helper read them (`tests/integration/test_batch_exec.py`, `test_batch_helper.py`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["make_workspace"]


def make_workspace(
    root: Path, steps: list[dict[str, Any]], files: dict[str, str] | None = None, **extra: Any
) -> Path:
    """`root/repository` (README.md plus `files`, one commit) and `root/input.json`."""
    repo = root / "repository"
    repo.mkdir(parents=True)
    for name, text in {"README.md": "hello\n", **(files or {})}.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@e", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    data = {
        "BatchChangeAttributes": {"name": "bc", "description": "d"},
        "repository": {"id": "UmVwbzox", "name": "github.com/a/b"},
        "branch": {"name": "refs/heads/main", "target": {"oid": "d34db33f"}},
        "path": "",
        "steps": steps,
        "searchResultPaths": ["README.md"],
        **extra,
    }
    (root / "input.json").write_text(json.dumps(data))
    return root
