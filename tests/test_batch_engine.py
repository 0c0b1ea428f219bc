"""The batch exec engine without Docker: steps run by the host's /bin/sh, real git, real events.

`HostShellRunner` is a real `ContainerRunner` (like Sourcegraph's shell runtime): it runs the
engine's entry script with /bin/sh in the repository, with only the step env. Everything
else (templates, git diffs, outputs, cache keys, event order) is the production code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from executor.batch.engine import BatchEngine, EngineOptions
from executor.batch.execflags import FlagError, parse_exec_flags
from executor.batch.execution import AfterStepResult, WorkspacesExecutionInput
from executor.batch.step_prepare import StepContainer
from executor.batch.steps import OutputCapture, OutputError, parse_output, step_failed_message
from executor.runtime.stream import OutputSink, pump_lines

GIT_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}


class HostShellRunner:
    """Runs a step's entry script on the host (no files/mounts support)."""

    def __init__(self) -> None:
        self.started: list[StepContainer] = []

    async def run_container(self, container: StepContainer, sink: OutputSink) -> int:
        self.started.append(container)
        env = {"PATH": GIT_ENV["PATH"], **container.env}
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            str(container.script),
            cwd=container.repo_dir / container.workdir,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        await asyncio.gather(
            pump_lines(proc.stdout, "stdout", sink), pump_lines(proc.stderr, "stderr", sink)
        )
        return await proc.wait()


def make_repo(root: Path) -> Path:
    repo = root / "repository"
    repo.mkdir()
    (repo / "README.md").write_text("hello\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@e", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    return repo


def task(steps: list[dict[str, Any]], **extra: Any) -> WorkspacesExecutionInput:
    raw = {
        "BatchChangeAttributes": {"name": "bc", "description": "desc"},
        "repository": {"id": "UmVwbzox", "name": "github.com/a/b"},
        "branch": {"name": "refs/heads/main", "target": {"oid": "d34db33f"}},
        "path": "",
        "steps": steps,
        "searchResultPaths": ["README.md"],
        **extra,
    }
    return WorkspacesExecutionInput.model_validate(raw)


def run(
    tmp_path: Path,
    t: WorkspacesExecutionInput,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 3600.0,
) -> tuple[int, list[dict[str, Any]], BatchEngine, HostShellRunner]:
    repo = tmp_path / "repository"
    if not repo.exists():
        make_repo(tmp_path)
    (tmp_path / ".src-tmp").mkdir(exist_ok=True)
    lines: list[str] = []
    runner = HostShellRunner()
    options = EngineOptions(
        repo_dir=repo,
        tmp_dir=tmp_path / ".src-tmp",
        workspace_files_dir=tmp_path,
        binary_diffs=True,
        global_env=[f"{k}={v}" for k, v in (env or {}).items()],
        git_env=GIT_ENV,
        timeout=timeout,
    )
    engine = BatchEngine(t, runner, options, lines.append)
    code = asyncio.run(engine.execute())
    return code, [json.loads(line) for line in lines], engine, runner


def ops(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["operation"], e["status"]) for e in events if e["status"] != "PROGRESS"]


def results(events: list[dict[str, Any]]) -> list[AfterStepResult]:
    return [
        AfterStepResult.model_validate(e["metadata"]["value"])
        for e in events
        if e["operation"] == "CACHE_AFTER_STEP_RESULT"
    ]


def test_two_steps_event_sequence_outputs_and_previous_step(tmp_path: Path) -> None:
    steps = [
        {
            "run": "echo more >> README.md\necho 'new' > 'a b.txt'\nprintf 'out-%s' \"$FOO\"",
            "container": "img",
            "env": {"FOO": "bar"},
            "outputs": {"x": {"value": "${{ step.stdout }}"}},
        },
        {
            "run": "echo '${{ previous_step.modified_files }} ${{ outputs.x }}' > second.txt",
            "container": "img",
        },
    ]
    code, events, engine, _ = run(tmp_path, task(steps))
    assert code == 0
    assert ops(events) == [
        ("PREPARING_DOCKER_IMAGES", "STARTED"),
        ("PREPARING_DOCKER_IMAGES", "SUCCESS"),
        ("EXECUTING_TASK", "STARTED"),
        ("TASK_PREPARING_STEP", "STARTED"),
        ("TASK_PREPARING_STEP", "SUCCESS"),
        ("TASK_STEP", "STARTED"),
        ("TASK_STEP", "SUCCESS"),
        ("TASK_PREPARING_STEP", "STARTED"),
        ("TASK_PREPARING_STEP", "SUCCESS"),
        ("TASK_STEP", "STARTED"),
        ("TASK_STEP", "SUCCESS"),
        ("CACHE_AFTER_STEP_RESULT", "SUCCESS"),
        ("CACHE_AFTER_STEP_RESULT", "SUCCESS"),
        ("EXECUTING_TASK", "SUCCESS"),
    ]
    started = [e for e in events if e["operation"] == "TASK_STEP" and e["status"] == "STARTED"]
    assert started[0]["metadata"] == {"taskID": engine.task_id, "step": 1, "env": {"FOO": "bar"}}
    first, second = results(events)
    assert first.step_index == 0 and second.step_index == 1
    assert first.stdout == "out-bar"  # untrimmed: no newline was printed
    assert first.outputs == {"x": "out-bar"}
    assert first.changed_files.modified == ["README.md"]
    assert first.changed_files.added == ["a b.txt"]
    assert (tmp_path / "repository" / "second.txt").read_text() == "[README.md] out-bar\n"
    assert second.changed_files.added == ["a b.txt", "second.txt"]
    assert b"+++ second.txt" in (second.diff or b"")
    keys = [e["metadata"]["key"] for e in events if e["operation"] == "CACHE_AFTER_STEP_RESULT"]
    assert keys[0].endswith("-step-0") and keys[1].endswith("-step-1")
    assert engine.containers_started == 2


def test_progress_events_carry_prefixed_output(tmp_path: Path) -> None:
    code, events, _, _ = run(tmp_path, task([{"run": "echo out; echo err >&2", "container": "i"}]))
    assert code == 0
    out = "".join(
        e["metadata"]["out"]
        for e in events
        if e["operation"] == "TASK_STEP" and e["status"] == "PROGRESS"
    )
    assert sorted(out.splitlines()) == ["stderr: err", "stdout: out"]
    (result,) = results(events)
    assert (result.stdout, result.stderr) == ("out\n", "err\n")


def test_if_false_skips_and_previous_step_points_at_last_executed(tmp_path: Path) -> None:
    steps = [
        {"run": "echo one > one.txt", "container": "i"},
        {"run": "echo two > two.txt", "container": "i", "if": False},
        {
            "run": "echo '${{ previous_step.added_files }}' > three.txt",
            "container": "i",
            "if": '${{ eq repository.name "github.com/a/b" }}',
        },
    ]
    code, events, engine, _ = run(tmp_path, task(steps))
    assert code == 0
    skipped = [e for e in events if e["operation"] == "TASK_STEP_SKIPPED"]
    assert [e["metadata"]["step"] for e in skipped] == [2]
    assert [r.step_index for r in results(events)] == [0, 2]
    assert not (tmp_path / "repository" / "two.txt").exists()
    assert (tmp_path / "repository" / "three.txt").read_text() == "[one.txt]\n"
    assert engine.containers_started == 2


def test_failing_step_reports_failure_and_keeps_earlier_results(tmp_path: Path) -> None:
    steps = [
        {"run": "echo ok > ok.txt", "container": "i"},
        {"run": "echo before\necho broken >&2\nexit 3", "container": "img:1"},
        {"run": "echo never", "container": "i"},
    ]
    code, events, engine, _ = run(tmp_path, task(steps))
    assert code == 1
    failure = next(e for e in events if e["operation"] == "TASK_STEP" and e["status"] == "FAILURE")
    assert failure["metadata"]["step"] == 2 and failure["metadata"]["exitCode"] == 3
    assert failure["metadata"]["error"] == (
        "run: echo before\n\t(... and 2 more lines)\ncontainer: img:1\n"
        "\nstandard out:\n\tbefore\n\nstandard error:\n\tbroken\n"
        "\nCommand failed with exit code 3."
    )
    assert [r.step_index for r in results(events)] == [0]
    assert ops(events)[-1] == ("EXECUTING_TASK", "FAILURE")
    assert engine.containers_started == 2


def test_template_error_fails_the_step_with_position(tmp_path: Path) -> None:
    steps = [{"run": "echo ${{ outputs.nope }}", "container": "i"}]
    code, events, engine, _ = run(tmp_path, task(steps))
    assert code == 1
    failure = next(e for e in events if e["operation"] == "TASK_STEP" and e["status"] == "FAILURE")
    error = failure["metadata"]["error"]
    assert error.startswith("parsing step run: template: step-run:1:")
    assert 'map has no entry for key "nope"' in error
    assert failure["metadata"]["exitCode"] == -1
    assert engine.containers_started == 0


def test_unknown_function_is_a_parse_error(tmp_path: Path) -> None:
    code, events, _, _ = run(tmp_path, task([{"run": "${{ nosuch 1 }}", "container": "i"}]))
    assert code == 1
    failure = next(e for e in events if e["operation"] == "TASK_STEP" and e["status"] == "FAILURE")
    assert 'function "nosuch" not defined' in failure["metadata"]["error"]


def test_env_secret_pass_through(tmp_path: Path) -> None:
    steps = [{"run": 'printf "%s" "$SECRET" > s.txt', "container": "i", "env": ["SECRET"]}]
    code, _, _, runner = run(tmp_path, task(steps), env={"SECRET": "hunter2", "OTHER": "x"})
    assert code == 0
    assert (tmp_path / "repository" / "s.txt").read_text() == "hunter2"
    assert dict(runner.started[0].env) == {"SECRET": "hunter2"}


def test_resume_from_cached_last_step_starts_nothing(tmp_path: Path) -> None:
    steps = [{"run": "echo a > a.txt", "container": "i"}]
    code, events, _, _ = run(tmp_path, task(steps))
    (cached,) = results(events)
    other = tmp_path / "again"
    other.mkdir()
    t = task(steps, cachedStepResultFound=True, cachedStepResult=json.loads(cached.to_json()))
    code, events2, engine, _ = run(other, t)
    assert code == 0 and engine.containers_started == 0
    (again,) = results(events2)
    assert again.to_json() == cached.to_json()
    keys = [e["metadata"]["key"] for e in events + events2 if "key" in e.get("metadata", {})]
    assert keys[0] == keys[1]


def test_resume_applies_cached_diff_and_continues(tmp_path: Path) -> None:
    first = {
        "run": "echo a > 'ä b.txt'; printf v",
        "container": "i",
        "outputs": {"o": {"value": "${{ step.stdout }}"}},
    }
    second = {
        "run": "cat 'ä b.txt' > copy.txt; echo '${{ outputs.o }}' >> copy.txt",
        "container": "i",
    }
    _, events, _, _ = run(tmp_path, task([first]))
    (cached,) = results(events)
    other = tmp_path / "again"
    other.mkdir()
    t = task(
        [first, second], cachedStepResultFound=True, cachedStepResult=json.loads(cached.to_json())
    )
    code, events2, engine, _ = run(other, t)
    assert code == 0 and engine.containers_started == 1
    skipping = next(e for e in events2 if e["operation"] == "TASK_SKIPPING_STEPS")
    assert skipping["metadata"]["startStep"] == 2
    (result,) = results(events2)
    assert result.step_index == 1
    assert (other / "repository" / "copy.txt").read_text() == "a\nv\n"
    assert result.changed_files.added == ["copy.txt", "ä b.txt"]


def test_binary_file_in_diff_round_trips_base64(tmp_path: Path) -> None:
    steps = [{"run": "printf '\\000\\001\\377' > bin.dat", "container": "i"}]
    code, events, _, _ = run(tmp_path, task(steps))
    assert code == 0
    raw = next(e for e in events if e["operation"] == "CACHE_AFTER_STEP_RESULT")
    diff = base64.b64decode(raw["metadata"]["value"]["diff"])
    assert b"GIT binary patch" in diff


def test_output_capture_restores_exact_text() -> None:
    sent: list[str] = []
    capture = OutputCapture("M", sent.append, interval=0.0)
    for line in ["a", "", "b", "M"]:
        capture.write("stdout", line)  # output "a\n\nb" then "\nM\n"
    for line in ["x", "", "M"]:
        capture.write("stderr", line)  # output "x\n" then "\nM\n"
    capture.finish()
    assert capture.text("stdout") == "a\n\nb"
    assert capture.text("stderr") == "x\n"
    assert "".join(sent) == "stdout: a\nstdout: \nstdout: b\nstderr: x\n"


def test_output_capture_without_marker_ends_lines() -> None:
    capture = OutputCapture("M")
    capture.write("stderr", "Unable to find image")
    capture.finish()
    assert capture.text("stderr") == "Unable to find image\n"
    assert capture.text("stdout") == ""


def test_parse_output_formats() -> None:
    assert parse_output("hello.txt\n", "") == "hello.txt\n"
    assert parse_output(' {"a": 1, "b": [2.5]} trailing', "json") == {"a": 1.0, "b": [2.5]}
    assert isinstance(parse_output("1 2", "json"), float)
    assert parse_output("a: 1\nb: [x]\n---\nc: 2\n", "yaml") == {"a": 1, "b": ["x"]}
    with pytest.raises(OutputError, match="EOF"):
        parse_output("  ", "json")
    with pytest.raises(OutputError, match="invalid character 'h'"):
        parse_output("hello", "json")


def test_step_failed_message_without_exit_code() -> None:
    text = step_failed_message(
        run="x", container="c", stdout="", stderr="", exit_code=-1, error="boom"
    )
    assert text == "run: x\ncontainer: c\n\nCommand failed: boom"


def test_parse_exec_flags() -> None:
    flags = parse_exec_flags(
        ["-f", "input.json", "-repo", "repository", "-tmp", ".src-tmp", "-binaryDiffs",
         "--workspaceFiles=workspace-files", "-timeout", "1h30m"]
    )  # fmt: skip
    assert (flags.file, flags.repo, flags.tmp) == ("input.json", "repository", ".src-tmp")
    assert flags.binary_diffs and flags.workspace_files == "workspace-files"
    assert flags.timeout == 5400.0
    with pytest.raises(FlagError, match="repoDir parameter missing"):
        parse_exec_flags(["-f", "x", "-tmp", "t"])
    with pytest.raises(FlagError, match="flag provided but not defined: -nope"):
        parse_exec_flags(["-nope"])
    with pytest.raises(FlagError, match="additional arguments not allowed"):
        parse_exec_flags(["-f", "x", "-tmp", "t", "-repo", "r", "extra"])


def test_timeout_covers_all_steps(tmp_path: Path) -> None:
    steps = [{"run": "echo a > a.txt", "container": "i"}, {"run": "sleep 5", "container": "i"}]
    code, events, _, _ = run(tmp_path, task(steps), timeout=1.0)
    assert code == 1
    final = events[-1]
    assert final["operation"] == "EXECUTING_TASK" and final["status"] == "FAILURE"
    assert final["metadata"]["error"] == "Timeout reached. Execution took longer than 1s."
    assert [r.step_index for r in results(events)] == [0]
