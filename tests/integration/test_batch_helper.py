"""`executor batch helper pre|post` (V2) against `batch exec` (V1) on the same specs, real Docker.

Each test runs a spec both ways in two copies of one workspace and compares the cache entries
(key and the exact `AfterStepResult` JSON: diff, outputs, changed files, stdout/stderr). The V2
side runs the docker steps `executor.sandbox.batches_v2` builds, in order, each as the handler
does (its script with the handler's preamble, `/bin/sh`, the workspace mounted, `skip.json`
read after every `.pre`): the helper either in-process (workspace mounted at its own host path,
so the helper's absolute paths hold in the step container) or in `executor-batcheshelper:latest`
(workspace at `/data`, as the Docker runtime mounts it).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import batch_workspace
import pytest
from fixtures_docker import STEP_IMAGE, DockerEngine

from executor.batch.execflags import ExecFlags, parse_exec_flags, run_batch_exec
from executor.batch.execution import AfterStepResult, WorkspacesExecutionInput, parse_log_events
from executor.batch.helper import HelperError, parse_helper_args, run_helper
from executor.batch.hostrunner import DockerStepRunner
from executor.batch.step_prepare import ContainerRunner
from executor.runtime.argv import DockerOptions, container_labels, container_name, script_content
from executor.runtime.docker import DockerRuntime
from executor.sandbox.batches_v2 import v2_docker_steps

pytestmark = pytest.mark.docker

SECRETS = {"SECRET_X": "s3cr3t value"}


HELPER_FILES = {"sub/README.md": "hello sub\n", "sub/x.txt": "x\n"}


def make_workspace(root: Path, steps: list[dict[str, Any]], **extra: Any) -> Path:
    return batch_workspace.make_workspace(root, steps, HELPER_FILES, **extra)


def entries(lines: list[str]) -> list[tuple[str, str]]:
    events = parse_log_events("".join(f"stdout: {line}\n" for line in lines))
    return [
        (str(e.metadata["key"]), AfterStepResult.model_validate(e.metadata["value"]).to_json())
        for e in events
        if e.operation == "CACHE_AFTER_STEP_RESULT" and e.metadata
    ]


class Runner:
    def __init__(self, docker: DockerEngine, labels: dict[str, str]) -> None:
        self.docker = docker
        self.name = f"test-{uuid.uuid4().hex[:8]}"
        self.labels = {**container_labels(executor_name=self.name, job_id="1", host="t"), **labels}

    def v1(self, root: Path) -> tuple[int, list[str]]:
        flags = parse_exec_flags(
            ["-f", "input.json", "-repo", "repository", "-tmp", ".src-tmp", "-binaryDiffs"]
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
            )

        environ = {**self.docker.env, **SECRETS}
        try:
            code, _ = asyncio.run(
                run_batch_exec(
                    flags, cwd=root, runner_for=runner_for, emit=lines.append, environ=environ
                )
            )
        finally:
            runtime.close()
        return code, lines

    def v2(
        self, root: Path, *, helper_image: str | None = None, cached: AfterStepResult | None = None
    ) -> tuple[int, list[str], list[str]]:
        """Run the V2 docker steps; (exit code, post stdout lines, keys of the steps that ran)."""
        task = WorkspacesExecutionInput.model_validate_json((root / "input.json").read_bytes())
        steps, files = v2_docker_steps(
            steps=list(task.steps or []),
            skipped=sorted(task.skipped_step_indices()),
            path=task.path,
            cached=cached,
            secret_env=SECRETS,
            helper_image=helper_image or "in-process",
        )
        for name, content in files.items():
            (root / name).write_bytes(content)
        scripts = root / ".sourcegraph-executor"
        scripts.mkdir()
        lines: list[str] = []
        ran: list[str] = []
        skip_until = ""
        for step in steps:
            key = step["key"]
            if skip_until and key != skip_until:
                continue
            skip_until = ""
            ran.append(key)
            helper = key.endswith((".pre", ".post"))
            if helper and helper_image is None:
                mode, index = key.split(".")[2], key.split(".")[1]
                try:
                    asyncio.run(
                        run_helper(
                            parse_helper_args([mode, index]),
                            cwd=root,
                            environ={"PATH": "/usr/bin:/bin", **SECRETS},
                            emit=lines.append if mode == "post" else lambda _: None,
                        )
                    )
                except HelperError:
                    return 1, lines, ran
            elif key == "apply-diff" and helper_image is None:
                # In-process mode has no helper image: the host's git runs the same commands.
                script = "\n".join(step["commands"])
                done = subprocess.run(["sh", "-c", script], cwd=root / step["dir"], timeout=60)
                if done.returncode != 0:
                    return done.returncode, lines, ran
            else:
                mount = "/data" if helper_image else str(root)
                (scripts / f"{key}.sh").write_text(script_content(step["commands"]))
                argv = ["docker", "run", "--rm"]
                for label, value in self.labels.items():
                    argv += ["--label", f"{label}={value}"]
                argv += ["-v", f"{root}:{mount}", "-w", f"{mount}/{step['dir']}"]
                for pair in step["env"]:
                    argv += ["-e", pair]
                argv += [
                    "--entrypoint",
                    "/bin/sh",
                    step["image"],
                    f"{mount}/{scripts.name}/{key}.sh",
                ]
                done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
                if key.endswith(".post"):
                    lines += done.stdout.splitlines()
                if done.returncode != 0:
                    return done.returncode, lines, ran
            if key.endswith(".pre") and (root / "skip.json").exists():
                skip_until = json.loads((root / "skip.json").read_text())["nextStep"]
                (root / "skip.json").unlink()
        return 0, lines, ran


@pytest.fixture
def runner(docker_engine: DockerEngine, test_labels: dict[str, str]) -> Runner:
    return Runner(docker_engine, test_labels)


def step(run: str, **extra: Any) -> dict[str, Any]:
    return {"run": run, "container": STEP_IMAGE, **extra}


FEATURES = [
    step(
        'echo "${{ repository.name }} $SECRET_X $STATIC" > a.txt; cat /tmp/f.txt >> a.txt\n'
        'sed -i s/hello/bye/ README.md; printf \'{"n": 3, "s": "x"}\'',
        env=["SECRET_X", {"STATIC": "v-${{ batch_change.name }}"}],
        files={"/tmp/f.txt": "file of ${{ batch_change.name }}\n"},
        outputs={
            "j": {"value": "${{ step.stdout }}", "format": "json"},
            "m": {"value": "${{ step.modified_files }} ${{ step.added_files }}"},
        },
    ),
    step("echo never > never.txt", **{"if": '${{ eq outputs.j.s "y" }}'}),
    step(
        'echo "${{ outputs.j.n }} ${{ previous_step.modified_files }} ${{ steps.added_files }}"'
        " >> b.txt; echo oops >&2",
        outputs={"e": {"value": "${{ step.stderr }}", "format": "yaml"}},
    ),
]


def _both(tmp_path: Path, steps: list[dict[str, Any]], **extra: Any) -> tuple[Path, Path]:
    return make_workspace(tmp_path / "v1", steps, **extra), make_workspace(
        tmp_path / "v2", steps, **extra
    )


def test_v2_equals_v1_templates_if_outputs_files_env(runner: Runner, tmp_path: Path) -> None:
    one, two = _both(tmp_path, FEATURES)
    code1, lines1 = runner.v1(one)
    code2, lines2, ran = runner.v2(two)
    assert (code1, code2) == (0, 0)
    v1, v2 = entries(lines1), entries(lines2)
    assert [k.rsplit("-", 1)[1] for k, _ in v1] == ["0", "2"]
    assert v2 == v1
    # step 2 (index 1) was skipped by its `.pre`: its run and post never started.
    assert "step.1.run" not in ran and "step.2.pre" in ran
    last = AfterStepResult.model_validate_json(v2[-1][1])
    assert last.outputs == {"j": {"n": 3.0, "s": "x"}, "m": "[README.md] [a.txt]", "e": "oops"}
    assert (two / "repository" / "b.txt").read_text() == "3 [README.md] [a.txt]\n"
    assert "s3cr3t value v-bc\nfile of bc\n" in (two / "repository" / "a.txt").read_text()
    skipped = json.loads((two / "step1.json").read_text())
    assert skipped == {
        "version": 2,
        "changedFiles": {"modified": None, "added": None, "deleted": None, "renamed": None},
        "stdout": "",
        "stderr": "",
        "stepIndex": 0,
        "diff": None,
        "outputs": None,
        "skipped": True,
    }
    assert not (two / "step0files").exists()


def test_v2_equals_v1_in_a_workspace_path_with_static_skip(runner: Runner, tmp_path: Path) -> None:
    steps = [
        step("echo static-skip > s.txt", **{"if": False}),
        step("ls; echo more >> README.md", outputs={"p": {"value": "${{ steps.path }}"}}),
    ]
    one, two = _both(tmp_path, steps, path="sub", skippedSteps={"0": {}})
    code1, lines1 = runner.v1(one)
    code2, lines2, ran = runner.v2(two)
    assert (code1, code2) == (0, 0)
    assert entries(lines2) == entries(lines1)
    assert ran == ["step.1.pre", "step.1.run", "step.1.post"]
    (only,) = entries(lines2)
    result = AfterStepResult.model_validate_json(only[1])
    assert result.changed_files.modified == ["sub/README.md"] and result.outputs == {"p": "sub"}


def test_v2_resumes_from_a_cached_result_like_v1(runner: Runner, tmp_path: Path) -> None:
    seed_code, seed_lines = runner.v1(make_workspace(tmp_path / "seed", FEATURES[:1]))
    assert seed_code == 0
    (cached_json,) = [v for _, v in entries(seed_lines)]
    cached = AfterStepResult.model_validate_json(cached_json)
    extra = {"cachedStepResultFound": True, "cachedStepResult": json.loads(cached_json)}
    one, two = _both(tmp_path, FEATURES, **extra)
    code1, lines1 = runner.v1(one)
    code2, lines2, ran = runner.v2(two, cached=cached)
    assert (code1, code2) == (0, 0)
    assert entries(lines2) == entries(lines1)
    assert ran[0] == "apply-diff" and "step.0.pre" not in ran
    assert [k.rsplit("-", 1)[1] for k, _ in entries(lines2)] == ["2"]


def test_failing_step_keeps_earlier_results(runner: Runner, tmp_path: Path) -> None:
    steps = [step("echo a > a.txt"), step("echo nope >&2; exit 3")]
    one, two = _both(tmp_path, steps)
    code1, lines1 = runner.v1(one)
    code2, lines2, ran = runner.v2(two)
    assert code1 == 1 and code2 != 0
    assert entries(lines2) == entries(lines1) and len(entries(lines2)) == 1
    assert ran[-1] == "step.1.run"
    assert (two / "stderr1.log").read_text() == "nope\n"


def test_in_the_helper_image_equals_v1(runner: Runner, tmp_path: Path, helper_image: str) -> None:
    one, two = _both(tmp_path, FEATURES)
    code1, lines1 = runner.v1(one)
    code2, lines2, _ = runner.v2(two, helper_image=helper_image)
    assert (code1, code2) == (0, 0)
    assert entries(lines2) == entries(lines1) and len(entries(lines1)) == 2
    shutil.rmtree(two, ignore_errors=True)  # root-owned files: best effort
