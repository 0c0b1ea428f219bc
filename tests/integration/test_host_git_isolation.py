"""Hostile corpus, V1 batch steps: a step rewrites its repository's git configuration and
attributes to get a command run on the host by the engine's `git add` / `git diff`. None of the
drivers may run (a canary file outside the workspace stays absent) and the step's real change
is still the diff (`executor.batch.diff`: the host uses a private git dir)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_batch_exec import Exec, exe, make_workspace, results_of, step

pytestmark = pytest.mark.docker

__all__ = ["exe"]  # the fixture, re-exported for pytest

ATTACKS = {
    "filter driver": (
        'printf \'[filter "x"]\\n\\tclean = touch {canary}; cat\\n\\tsmudge = cat\\n\\t'
        "required = true\\n' >> .git/config; echo '* filter=x' > .gitattributes"
    ),
    "fsmonitor": "git config core.fsmonitor 'touch {canary}; true' 2>/dev/null || "
    "printf '[core]\\n\\tfsmonitor = touch {canary}\\n' >> .git/config",
    "external diff": "printf '[diff]\\n\\texternal = touch {canary}\\n' >> .git/config",
    "textconv": (
        "printf '[diff \"t\"]\\n\\ttextconv = touch {canary}; cat\\n' >> .git/config; "
        "echo '* diff=t' > .gitattributes"
    ),
    "hook": (
        "mkdir -p .git/hooks && printf '#!/bin/sh\\ntouch {canary}\\n' > .git/hooks/pre-commit"
        " && chmod +x .git/hooks/pre-commit && printf '[core]\\n\\thooksPath = .git/hooks\\n'"
        " >> .git/config"
    ),
    "alternates": "mkdir -p .git/objects/info && echo /etc > .git/objects/info/alternates",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_step_written_git_config_runs_nothing_on_the_host(
    exe: Exec, tmp_path: Path, attack: str
) -> None:
    canary = tmp_path / "outside" / "canary"
    canary.parent.mkdir()
    script = ATTACKS[attack].format(canary=canary) + "; echo changed >> README.md"
    root = make_workspace(tmp_path / "ws", [step(script)])
    code, events, _ = exe.run(root)
    assert not canary.exists(), f"{attack}: a step-written driver ran on the host"
    assert code == 0, events
    (result,) = results_of(events)
    diff = result.diff or b""
    assert b"+changed" in diff, diff
    assert result.changed_files.modified == ["README.md"]
