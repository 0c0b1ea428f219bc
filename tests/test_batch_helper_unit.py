"""`executor batch helper pre|post` without containers: the files it writes, its events, its cache
keys, against the cases of sourcegraph `cmd/batcheshelper/run/{pre,post}_test.go` and
kballard/go-shellquote. `post` runs real git in a real repository."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from executor.batch.helper import (
    HelperError,
    go_shell_join,
    parse_helper_args,
    run_helper,
)


def _input(root: Path, steps: list[dict[str, Any]], **extra: Any) -> None:
    (root / "input.json").write_text(json.dumps({"steps": steps, **extra}))


def _run(root: Path, *argv: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    lines: list[str] = []
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})}
    asyncio.run(run_helper(parse_helper_args(argv), cwd=root, environ=environ, emit=lines.append))
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize(
    ("args", "joined"),
    [
        (("export", "FOO=BAR"), "export FOO=BAR"),
        (("cp", "/tmp/a b", "x"), "cp '/tmp/a b' x"),
        (("echo", ""), "echo ''"),
        (("echo", "it's here"), "echo 'it'\\''s here'"),
        (("echo", "'a b'"), "echo \\''a b'\\'"),
        (("echo", "$HOME;rm"), "echo \\$HOME\\;rm"),
        (("echo", "~user/~x"), "echo \\~user/~x"),
    ],
)
def test_go_shell_join(args: tuple[str, ...], joined: str) -> None:
    assert go_shell_join(*args) == joined


def test_arguments_like_batcheshelper() -> None:
    args = parse_helper_args(["-input", "in.json", "post", "3", "-workspaceFiles=/w"])
    assert (args.mode, args.step, args.input, args.workspace_files) == ("post", 3, "in.json", "/w")
    for argv, message in (
        (["pre"], "missing arguments"),
        (["pre", "1", "2"], "too many arguments"),
        (["run", "1"], 'invalid mode "run"'),
        (["pre", "x"], "failed to parse step"),
        (["-nope", "1", "pre", "1"], "flag provided but not defined: -nope"),
    ):
        with pytest.raises(HelperError, match=message):
            parse_helper_args(argv)


def test_pre_writes_the_script(tmp_path: Path) -> None:
    _input(tmp_path, [{"run": "echo hello", "container": "alpine"}])
    old = os.umask(0o022)
    try:
        events = _run(tmp_path, "pre", "0")
    finally:
        os.umask(old)
    script = tmp_path / "step0.sh"
    assert script.read_text() == "echo hello"
    assert script.stat().st_mode & 0o777 == 0o755
    assert [(e["operation"], e["status"], e.get("metadata")) for e in events] == [
        ("TASK_STEP", "STARTED", {"step": 1})
    ]


def test_pre_env_files_and_secrets(tmp_path: Path) -> None:
    steps = [
        {
            "run": "echo ${{ repository.name }}",
            "container": "alpine",
            "env": {"FOO": "BAR"},
            "files": {"/b/f.txt": "B", "/a/f.txt": "A ${{ batch_change.name }}"},
        },
        {"run": "true", "container": "alpine", "env": ["TOKEN"]},
    ]
    _input(tmp_path, steps, repository={"name": "r"}, BatchChangeAttributes={"name": "bc"})
    _run(tmp_path, "pre", "0")
    files = tmp_path / "step0files"
    assert (files / "file-0").read_text() == "A bc" and (files / "file-1").read_text() == "B"
    assert (tmp_path / "step0.sh").read_text() == (
        "export FOO=BAR\n"
        f"cp {files}/file-0 /a/f.txt\nchmod +x /a/f.txt\n"
        f"cp {files}/file-1 /b/f.txt\nchmod +x /b/f.txt\n"
        "echo r"
    )
    events = _run(tmp_path, "pre", "1", env={"TOKEN": "s e"})
    assert events[0]["metadata"] == {"step": 2, "env": {"TOKEN": "s e"}}
    assert (tmp_path / "step1.sh").read_text() == "export 'TOKEN=s e'\ntrue"


def test_pre_skips_to_the_next_step_not_statically_skipped(tmp_path: Path) -> None:
    steps = [{"run": "a", "container": "c", "if": False}] + [{"run": "b", "container": "c"}] * 2
    _input(tmp_path, steps, skippedSteps={"1": {}})
    (tmp_path / "skip.json").write_text("stale")
    events = _run(tmp_path, "pre", "0")
    assert [(e["operation"], e["status"], e["metadata"]) for e in events] == [
        ("TASK_STEP_SKIPPED", "PROGRESS", {"step": 1})
    ]
    assert (tmp_path / "skip.json").read_text() == '{"nextStep":"step.2.pre"}'
    assert (tmp_path / "step0.json").read_text() == (
        '{"version":2,"changedFiles":{"modified":null,"added":null,"deleted":null,'
        '"renamed":null},"stdout":"","stderr":"","stepIndex":0,"diff":null,"outputs":null,'
        '"skipped":true}'
    )
    assert not (tmp_path / "step0.sh").exists()


def test_pre_sees_the_newest_result_that_was_not_skipped(tmp_path: Path) -> None:
    steps = [{"run": "a", "container": "c"}] * 2 + [
        {"run": "${{ outputs.x }} ${{ previous_step.stdout }} ${{ steps.added_files }}"}
    ]
    _input(tmp_path, steps)
    diff = (
        b"diff --git n.txt n.txt\nnew file mode 100644\n"
        b"--- /dev/null\n+++ n.txt\n@@ -0,0 +1 @@\n+n\n"
    )
    first = {"version": 2, "stdout": "out0", "stepIndex": 0, "outputs": {"x": "X"}}
    first["diff"] = base64.b64encode(diff).decode()
    (tmp_path / "step0.json").write_text(json.dumps(first))
    (tmp_path / "step1.json").write_text(json.dumps({"version": 2, "skipped": True}))
    _run(tmp_path, "pre", "2")
    assert (tmp_path / "step2.sh").read_text() == "X out0 [n.txt]"


def _repo(root: Path) -> Path:
    repo = root / "repository"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@e", "-C", str(repo)]
    (repo / "README.md").write_text("a\n")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    return repo


def test_post_result_events_and_sourcegraphs_cache_key(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "README.md").write_text("b\n")
    (repo / "new.txt").write_text("n\n")
    _input(
        tmp_path,
        [{"run": "echo hello world", "outputs": {"o": {"value": "${{ step.modified_files }}"}}}],
    )
    (tmp_path / "stdout0.log").write_text("hello world")
    (tmp_path / "stderr0.log").write_text("error")
    (tmp_path / "step0files").mkdir()
    events = _run(tmp_path, "post", "0")
    assert [(e["operation"], e["status"]) for e in events] == [
        ("TASK_STEP", "SUCCESS"),
        ("CACHE_AFTER_STEP_RESULT", "SUCCESS"),
    ]
    assert set(events[0]["metadata"]) == {"version", "diff", "outputs"}  # step 0: omitted
    value = events[1]["metadata"]["value"]
    assert value["stdout"] == "hello world" and value["stderr"] == "error"
    assert value["changedFiles"]["modified"] == ["README.md"]
    assert value["changedFiles"]["added"] == ["new.txt"]
    assert value["outputs"] == {"o": "[README.md]"}
    assert json.loads((tmp_path / "step0.json").read_text()) == value
    assert not (tmp_path / "step0files").exists()
    # `TestPost`'s inputs ("Success", "File Mounts") give its keys:
    _input(tmp_path, [{"run": "echo hello world"}])
    events = _run(tmp_path, "post", "0")
    assert events[1]["metadata"]["key"] == "deZzMP85HWs6lfhWRnMVBA-step-0"
    _input(tmp_path, [{"run": "echo hello world", "files": {"file1.txt": "hello world"}}])
    events = _run(tmp_path, "post", "0")
    assert events[1]["metadata"]["key"] == "4qXjs4-Arh1VpWWfWhqm3A-step-0"


def test_post_failures_name_the_problem(tmp_path: Path) -> None:
    _repo(tmp_path)
    _input(tmp_path, [{"run": "x"}])
    with pytest.raises(HelperError, match="failed to read stdout file"):
        _run(tmp_path, "post", "0")
    with pytest.raises(HelperError, match="parsing EXECUTOR_ADD_SAFE boolean"):
        _run(tmp_path, "post", "0", env={"EXECUTOR_ADD_SAFE": "maybe"})
    with pytest.raises(HelperError, match="out of range"):
        _run(tmp_path, "pre", "5")
    (tmp_path / "input.json").write_text("{")
    with pytest.raises(HelperError, match="failed to unmarshal execution input"):
        _run(tmp_path, "pre", "0")


def test_post_runs_nothing_a_step_planted_in_git_config(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    canary = tmp_path / "canary"
    run = f"sh -c 'touch {canary}; cat'"
    with (repo / ".git" / "config").open("a") as config:
        config.write(
            f'[filter "evil"]\n\tclean = {run}\n\tsmudge = {run}\n\trequired = true\n'
            f"[core]\n\tfsmonitor = {tmp_path / 'mon.sh'}\n\thooksPath = {tmp_path}\n"
            f"[diff]\n\texternal = {tmp_path / 'mon.sh'}\n"
        )
    (tmp_path / "mon.sh").write_text(f"#!/bin/sh\ntouch {canary}\n")
    (tmp_path / "mon.sh").chmod(0o755)
    (repo / ".gitattributes").write_text("* filter=evil diff=evil\n")
    (repo / "README.md").write_text("changed\n")
    _input(tmp_path, [{"run": "x"}])
    (tmp_path / "stdout0.log").write_text("")
    (tmp_path / "stderr0.log").write_text("")
    events = _run(tmp_path, "post", "0")
    assert not canary.exists()
    diff = base64.b64decode(events[1]["metadata"]["value"]["diff"]).decode()
    assert "+++ .gitattributes" in diff and "-a\n+changed\n" in diff
