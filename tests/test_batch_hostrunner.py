"""`hostrunner.DockerStepRunner.spec_for`: a batch step's docker argv, src-cli's layout.

The containers themselves run in `tests/integration/test_batch_exec.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.batch.hostrunner import STEP_DIR, DockerStepRunner
from executor.batch.step_prepare import StepContainer, StepFailure
from executor.runtime.argv import DockerOptions, docker_argv
from executor.runtime.docker import DockerRuntime


def _runner(root: Path, **kw: object) -> DockerStepRunner:
    return DockerStepRunner(
        runtime=DockerRuntime(executor_name="e", env={}),
        docker=DockerOptions(hardening=False, **kw),  # type: ignore[arg-type]
        root=root,
        name_for=lambda i: f"step-{i}",
        labels={},
    )


def _container(root: Path, workdir: str = "a/b") -> StepContainer:
    step_dir = root / ".src-tmp" / "step-0-x"
    step_dir.mkdir(parents=True)
    (root / "repository").mkdir()
    return StepContainer(
        index=0,
        image="img",
        script=step_dir / "run.sh",
        repo_dir=root / "repository",
        workdir=workdir,
        env={"A": "1"},
        mounts=[(str(step_dir / "file-0"), "/etc/x.conf"), (f"{root}/wf/tools/", "/opt/t")],
    )


def test_src_cli_layout(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    container = _container(root)
    spec, options = _runner(root).spec_for(container)
    step_dir = root / ".src-tmp" / "step-0-x"
    assert docker_argv(spec, options) == [
        "docker", "run", "--rm", "--name", "step-0", "--user", "0:0",
        "--mount", f"type=bind,source={step_dir},target={STEP_DIR},readonly",
        "--mount", f"type=bind,source={step_dir}/file-0,target=/etc/x.conf,readonly",
        "--mount", f"type=bind,source={root}/wf/tools/,target=/opt/t,readonly",
        "-v", f"{root}/repository:/work", "-w", "/work/a/b", "-e", "A=1",
        "--entrypoint", "/bin/sh", "img", f"{STEP_DIR}/run.sh",
    ]  # fmt: skip


def test_image_user_and_root_path(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    runner = _runner(root)
    runner.run_as_image_user = True
    argv = docker_argv(*runner.spec_for(_container(root, workdir="")))
    assert "--user" not in argv
    assert argv[argv.index("-w") + 1] == "/work"


def test_docker_in_docker_paths(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    argv = docker_argv(*_runner(root, host_mount_path="/host").spec_for(_container(root)))
    mapped = f"/host/{root.name}"
    assert argv[argv.index("-v") + 1] == f"{mapped}/repository:/work"
    assert f"type=bind,source={mapped}/.src-tmp/step-0-x,target={STEP_DIR},readonly" in argv


def test_repository_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    root = (tmp_path / "job").resolve()
    root.mkdir()
    container = _container(root)
    outside = StepContainer(**{**container.__dict__, "repo_dir": tmp_path / "elsewhere"})
    with pytest.raises(StepFailure, match="not inside the job workspace"):
        _runner(root).spec_for(outside)
