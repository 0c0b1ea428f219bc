"""`batch exec` end to end: real Docker (busybox step image), real git, the daemon's runner.

Every container carries the session's test label plus a per-test executor name; after each
test no container with that name may be left.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from batch_workspace import make_workspace
from fixtures_docker import STEP_IMAGE, DockerEngine

from executor.batch.engine import BatchEngine
from executor.batch.execflags import ExecFlags, parse_exec_flags, run_batch_exec
from executor.batch.execution import AfterStepResult, parse_log_events
from executor.batch.hostrunner import BatchExecRunner, DockerStepRunner
from executor.batch.step_prepare import ContainerRunner
from executor.runtime.argv import DockerOptions, container_labels, container_name
from executor.runtime.docker import DockerRuntime
from executor.wire import CliStep, Job
from executor.workspace.clone import Workspace

pytestmark = pytest.mark.docker


class Handle:
    """Collects what the handler's log entry would receive."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def write(self, stream: str, line: str) -> None:
        self.lines.append((stream, line))

    def out(self) -> str:
        return "".join(f"{s}: {line}\n" for s, line in self.lines)


def events_of(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def results_of(events: list[dict[str, Any]]) -> list[AfterStepResult]:
    return [
        AfterStepResult.model_validate(e["metadata"]["value"])
        for e in events
        if e["operation"] == "CACHE_AFTER_STEP_RESULT"
    ]


def leftover(engine_env: dict[str, str], name: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=executor.name={name}"],
        capture_output=True,
        text=True,
        env=engine_env,
        check=True,
    )
    return out.stdout.split()


class Exec:
    """Runs `batch exec` in a workspace with the Docker step runner and test labels."""

    def __init__(self, docker: DockerEngine, labels: dict[str, str]) -> None:
        self.docker = docker
        self.name = f"test-{uuid.uuid4().hex[:8]}"
        self.labels = {**container_labels(executor_name=self.name, job_id="1", host="t"), **labels}

    def run(
        self, root: Path, *args: str, env: dict[str, str] | None = None
    ) -> tuple[int, list[dict[str, Any]], BatchEngine | None]:
        flags = parse_exec_flags(
            ["-f", "input.json", "-repo", "repository", "-tmp", ".src-tmp", *args]
        )
        lines: list[str] = []
        runtime = DockerRuntime(executor_name=self.name, env=self.docker.env)

        def runner_for(flags: ExecFlags, cwd: Path) -> ContainerRunner:
            return DockerStepRunner(
                runtime=runtime,
                docker=DockerOptions(),
                root=cwd,
                name_for=lambda i: container_name(self.name, "1", f"batch-{i}"),
                labels=self.labels,
                run_as_image_user=flags.run_as_image_user,
            )

        environ = {**self.docker.env, **(env or {})}
        try:
            code, engine = asyncio.run(
                run_batch_exec(
                    flags, cwd=root, runner_for=runner_for, emit=lines.append, environ=environ
                )
            )
        finally:
            runtime.close()
        assert leftover(self.docker.env, self.name) == []
        return code, events_of(lines), engine


@pytest.fixture
def exe(docker_engine: DockerEngine, test_labels: dict[str, str]) -> Exec:
    return Exec(docker_engine, test_labels)


def step(run: str, **extra: Any) -> dict[str, Any]:
    return {"run": run, "container": STEP_IMAGE, **extra}


def test_two_steps_previous_step_and_outputs(exe: Exec, tmp_path: Path) -> None:
    steps = [
        step(
            "echo more >> README.md; printf 'x-%s' \"$(pwd)\"",
            outputs={"x": {"value": "${{ step.stdout }}"}},
        ),
        step("echo '${{ previous_step.modified_files }} ${{ outputs.x }}' > second.txt"),
    ]
    root = make_workspace(tmp_path, steps)
    code, events, engine = exe.run(root, "-binaryDiffs")
    assert code == 0 and engine is not None and engine.containers_started == 2
    first, second = results_of(events)
    assert first.stdout == "x-/work"
    assert (root / "repository" / "second.txt").read_text() == "[README.md] x-/work\n"
    assert second.version == 2 and second.changed_files.added == ["second.txt"]
    assert b"+++ second.txt" in (second.diff or b"")


def test_if_false_skips_without_container(exe: Exec, tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path, [step("echo a > a.txt"), step("echo b > b.txt", **{"if": False})]
    )
    code, events, engine = exe.run(root)
    assert code == 0 and engine is not None and engine.containers_started == 1
    assert [e["metadata"]["step"] for e in events if e["operation"] == "TASK_STEP_SKIPPED"] == [2]
    assert [r.step_index for r in results_of(events)] == [0]


def test_failing_step_and_missing_image(exe: Exec, tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path,
        [step("echo ok > ok.txt"), {"run": "true", "container": "executor-no-such-image:0"}],
    )
    code, events, _ = exe.run(root)
    assert code == 1
    failure = next(e for e in events if e["operation"] == "TASK_STEP" and e["status"] == "FAILURE")
    assert failure["metadata"]["exitCode"] == 125
    assert "executor-no-such-image" in failure["metadata"]["error"]
    assert [r.step_index for r in results_of(events)] == [0]


def test_step_exit_code_and_stderr(exe: Exec, tmp_path: Path) -> None:
    root = make_workspace(tmp_path, [step("echo nope >&2; exit 7")])
    code, events, _ = exe.run(root)
    assert code == 1
    failure = next(e for e in events if e["operation"] == "TASK_STEP" and e["status"] == "FAILURE")
    assert failure["metadata"]["exitCode"] == 7
    assert "standard error:\n\tnope\n" in failure["metadata"]["error"]
    assert results_of(events) == []


def test_cached_last_step_starts_no_container(exe: Exec, tmp_path: Path) -> None:
    steps = [step("echo a > a.txt")]
    code, events, _ = exe.run(make_workspace(tmp_path / "one", steps), "-binaryDiffs")
    (cached,) = results_of(events)
    root = make_workspace(
        tmp_path / "two",
        steps,
        cachedStepResultFound=True,
        cachedStepResult=json.loads(cached.to_json()),
    )
    code, events2, engine = exe.run(root, "-binaryDiffs")
    assert code == 0 and engine is not None and engine.containers_started == 0
    assert [r.to_json() for r in results_of(events2)] == [cached.to_json()]


def test_odd_names_binary_files_files_and_secret(exe: Exec, tmp_path: Path) -> None:
    script = (
        "printf 'x' > 'sp ace.txt'; printf 'q' > \"quo'te.txt\"; printf 'u' > 'ünï.txt'\n"
        "printf '\\000\\001\\377' > bin.dat\n"
        'cp /etc/extra.conf copied.conf; printf "%s" "$TOKEN" > token.txt'
    )
    steps = [
        step(
            script,
            env=["TOKEN"],
            files={"/etc/extra.conf": "repo=${{ repository.name }}\n"},
        )
    ]
    root = make_workspace(tmp_path, steps)
    code, events, _ = exe.run(root, "-binaryDiffs", env={"TOKEN": "s3cret"})
    assert code == 0
    (result,) = results_of(events)
    assert result.changed_files.added == [
        "bin.dat", "copied.conf", "quo'te.txt", "sp ace.txt", "token.txt", "ünï.txt",
    ]  # fmt: skip
    assert (root / "repository" / "token.txt").read_text() == "s3cret"
    assert (root / "repository" / "copied.conf").read_text() == "repo=github.com/a/b\n"
    raw = next(e for e in events if e["operation"] == "CACHE_AFTER_STEP_RESULT")
    assert b"GIT binary patch" in base64.b64decode(raw["metadata"]["value"]["diff"])


def test_mount_from_workspace_files(exe: Exec, tmp_path: Path) -> None:
    steps = [
        step("sh /opt/tool/run.sh > tool.txt", mount=[{"path": "tools", "mountpoint": "/opt/tool"}])
    ]
    root = make_workspace(tmp_path, steps)
    (root / "workspace-files" / "tools").mkdir(parents=True)
    (root / "workspace-files" / "tools" / "run.sh").write_text("echo mounted\n")
    code, events, _ = exe.run(root, "-workspaceFiles", "workspace-files")
    assert code == 0, events
    assert (root / "repository" / "tool.txt").read_text() == "mounted\n"


def test_large_diff(exe: Exec, tmp_path: Path) -> None:
    # ~50 MB of text in one step's diff.
    run = (
        "i=0; while [ $i -lt 50 ]; do "
        "head -c 750000 /dev/zero | tr '\\0' 'a' | fold -w 99 > big$i.txt; i=$((i+1)); done"
    )
    root = make_workspace(tmp_path, [step(run)])
    code, events, _ = exe.run(root, "-binaryDiffs")
    assert code == 0
    (result,) = results_of(events)
    assert len(result.diff or b"") > 50 * 750000 // 1
    assert len(result.changed_files.added or []) == 50


def test_daemon_runner_writes_parseable_log(docker_engine: DockerEngine, tmp_path: Path) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    root = make_workspace(tmp_path, [step("echo hi > hi.txt")])
    runtime = DockerRuntime(executor_name=name, env=docker_engine.env)
    runner = BatchExecRunner(
        runtime=runtime, docker=DockerOptions(), executor_name=name, host_label="t"
    )
    job = Job.model_validate({"id": 42, "repositoryName": "github.com/a/b", "commit": "d34db33f"})
    workspace = Workspace(path=root, repo_path=root / "repository", scripts_dir=root / "s")
    cli = CliStep.model_validate(
        {
            "key": "batch-exec",
            "command": ["batch", "exec", "-f", "input.json", "-repo", "repository", "-tmp",
                        ".src-tmp", "-binaryDiffs"],
            "dir": ".",
        }
    )  # fmt: skip
    handle = Handle()
    try:
        code = asyncio.run(
            runner.run_cli_step(
                job, workspace, cli, handle,  # type: ignore[arg-type]
                env={"PATH": os.environ["PATH"]}, docker_config_dir=None,
            )
        )  # fmt: skip
    finally:
        runtime.close()
    assert code == 0
    assert runner.last_engine is not None and runner.last_engine.containers_started == 1
    events = parse_log_events(handle.out())
    cache = [e for e in events if e.operation == "CACHE_AFTER_STEP_RESULT"]
    assert len(cache) == 1
    assert leftover(docker_engine.env, name) == []


def _diff_lines(result: AfterStepResult) -> list[str]:
    return (result.diff or b"").decode().splitlines()


def test_src_cli_layout_work_dir_root_user_and_absolute_paths(exe: Exec, tmp_path: Path) -> None:
    """src-cli parity: the repository is /work, the step runs in /work/<path> as 0:0."""
    script = (
        "pwd > pwd.txt; id -u > uid.txt; id -g > gid.txt\n"
        "echo abs > /work/abs.txt\n"
        "cd /work && ls README.md > sub/ls.txt\n"
        "cp /etc/conf.txt /work/sub/conf.txt; cp /opt/tool/t.txt /work/sub/tool.txt\n"
        # Only the repository is under /work: no job files, no temp dir, no step scripts.
        "for p in input.json .src-tmp repository workspace-files; do"
        ' [ -e "/work/$p" ] && exit 9; done; true'
    )
    steps = [
        step(
            script,
            files={"/etc/conf.txt": "from files\n"},
            mount=[{"path": "tools", "mountpoint": "/opt/tool"}],
        )
    ]
    root = make_workspace(tmp_path, steps, files={"sub/keep.txt": "k\n"}, path="sub")
    (root / "workspace-files" / "tools").mkdir(parents=True)
    (root / "workspace-files" / "tools" / "t.txt").write_text("from mount\n")
    code, events, _ = exe.run(root, "-workspaceFiles", "workspace-files")
    assert code == 0, events
    (result,) = results_of(events)
    assert result.changed_files.added == [
        "abs.txt", "sub/conf.txt", "sub/gid.txt", "sub/ls.txt", "sub/pwd.txt", "sub/tool.txt",
        "sub/uid.txt",
    ]  # fmt: skip
    lines = _diff_lines(result)
    for name, content in [
        ("abs.txt", "abs"),
        ("sub/pwd.txt", "/work/sub"),
        ("sub/uid.txt", "0"),
        ("sub/gid.txt", "0"),
        ("sub/ls.txt", "README.md"),
        ("sub/conf.txt", "from files"),
        ("sub/tool.txt", "from mount"),
    ]:
        at = lines.index(f"+++ {name}")
        assert lines[at + 1 : at + 3] == ["@@ -0,0 +1 @@", f"+{content}"], name


@pytest.fixture(scope="module")
def user_image(docker_engine: DockerEngine) -> Iterator[str]:
    """`executor-busybox:latest` with `USER 4321:4321`, built locally (nothing is pulled)."""
    tag = f"executor-busybox-user:{docker_engine.session}"
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, "-"],
        input=f"FROM {STEP_IMAGE}\nUSER 4321:4321\n",
        text=True,
        capture_output=True,
        env={**docker_engine.env, "DOCKER_BUILDKIT": "0"},
        check=True,
        timeout=120,
    )
    yield tag
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, env=docker_engine.env)


@pytest.mark.parametrize(
    ("flag", "expected"), [((), "0 0"), (("-run-as-image-user",), "4321 4321")]
)
def test_run_as_image_user(
    exe: Exec, tmp_path: Path, user_image: str, flag: tuple[str, ...], expected: str
) -> None:
    """`--user 0:0` by default (src-cli's ForceRoot); the image's user with the flag."""
    steps = [{"run": 'echo "$(id -u) $(id -g) $(pwd)"', "container": user_image}]
    code, events, _ = exe.run(make_workspace(tmp_path, steps), *flag)
    assert code == 0, events
    (result,) = results_of(events)
    assert result.stdout == f"{expected} /work\n"
