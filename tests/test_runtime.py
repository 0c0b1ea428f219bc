"""Pure parts of the Docker runtime: script text, script names, the `docker run` argv, line pumping.

The argv fixtures are transcribed from Sourcegraph's
`cmd/executor/internal/worker/command/docker_test.go` @ 0b703ce (a clean commit, no a→b garbling).
Its scriptPath is relative to `.sourcegraph-executor/`; ours is relative to /data, hence the
`.sourcegraph-executor/` prefix below. Go's `docker.MountOptions` become their `String()` form.
The file's two src-cli cases build no `docker run` argv and are not transcribed.
"""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from executor.runtime import FORWARDED_ENV_VARS, forwarded_env
from executor.runtime.argv import (
    LABEL_EXECUTOR,
    LABEL_HOST,
    LABEL_JOB,
    LABEL_LOCK,
    PREAMBLE,
    ContainerSpec,
    DockerOptions,
    container_labels,
    container_name,
    docker_argv,
    script_content,
    script_name,
)
from executor.runtime.auth import write_docker_auth_config
from executor.runtime.stream import pump_lines

TAIL = ["--entrypoint", "/bin/sh", "some-image", "/data/.sourcegraph-executor/some/path"]
VOLUME_WD_ENV = ["-v", "/workingDirectory:/data", "-w", "/data/some/dir", "-e", "FOO=BAR"]

# (name, step dir, env, options, expected argv), one row per docker_test.go case.
FIXTURES: list[tuple[str, str, list[str], DockerOptions, str | None, list[str]]] = [
    (
        "Converts to docker spec",
        "/some/dir",
        ["FOO=BAR"],
        DockerOptions(),
        None,
        [
            "docker", "run", "--rm",
            "-v", "/workingDirectory:/data", "-w", "/data/some/dir", "-e", "FOO=BAR",
            "--entrypoint", "/bin/sh", "some-image", "/data/.sourcegraph-executor/script/path",
        ],
    ),
    (
        "Docker Host Mount Path",
        "/some/dir",
        ["FOO=BAR"],
        DockerOptions(host_mount_path="/docker/host/mount/path"),
        None,
        [
            "docker", "run", "--rm",
            "-v", "/docker/host/mount/path/workingDirectory:/data",
            "-w", "/data/some/dir", "-e", "FOO=BAR", *TAIL,
        ],
    ),
    (
        "Docker Bind Mount",
        "/some/dir",
        ["FOO=BAR"],
        DockerOptions(additional_mounts=["type=bind,source=/foo,target=/bar"]),
        None,
        [
            "docker", "run", "--rm", "--mount", "type=bind,source=/foo,target=/bar",
            *VOLUME_WD_ENV, *TAIL,
        ],
    ),
    (
        "Docker Volume Mount",
        "/some/dir",
        ["FOO=BAR"],
        DockerOptions(additional_mounts=["type=volume,source=foo,target=/bar"]),
        None,
        [
            "docker", "run", "--rm", "--mount", "type=volume,source=foo,target=/bar",
            *VOLUME_WD_ENV, *TAIL,
        ],
    ),
    (
        "Docker Tmpfs Mount",
        "/some/dir",
        ["FOO=BAR"],
        DockerOptions(additional_mounts=["type=tmpfs,target=/tmp"]),
        None,
        ["docker", "run", "--rm", "--mount", "type=tmpfs,target=/tmp", *VOLUME_WD_ENV, *TAIL],
    ),
    (
        "Docker Multiple Mount",
        "/some/dir",
        ["FOO=BAR"],
        DockerOptions(
            additional_mounts=[
                "type=volume,source=gomodcache,target=/gomodcache",
                "type=tmpfs,target=/tmp",
            ]
        ),
        None,
        [
            "docker", "run", "--rm",
            "--mount", "type=volume,source=gomodcache,target=/gomodcache",
            "--mount", "type=tmpfs,target=/tmp",
            *VOLUME_WD_ENV, *TAIL,
        ],
    ),
    (
        "Config Path",
        "/some/dir",
        ["FOO=BAR"],
        DockerOptions(),
        "/docker/config/path",
        ["docker", "--config", "/docker/config/path", "run", "--rm", *VOLUME_WD_ENV, *TAIL],
    ),
    (
        "Docker Host Gateway",
        "/some/dir",
        ["FOO=BAR"],
        DockerOptions(add_host_gateway=True),
        None,
        [
            "docker", "run", "--rm", "--add-host=host.docker.internal:host-gateway",
            *VOLUME_WD_ENV, *TAIL,
        ],
    ),
    (
        "CPU and Memory",
        "/some/dir",
        ["FOO=BAR"],
        DockerOptions(cpus=10, memory="10G"),
        None,
        ["docker", "run", "--rm", "--cpus", "10", "--memory", "10G", *VOLUME_WD_ENV, *TAIL],
    ),
    (
        "Default Spec Dir",
        "",
        ["FOO=BAR"],
        DockerOptions(),
        None,
        [
            "docker", "run", "--rm",
            "-v", "/workingDirectory:/data", "-w", "/data", "-e", "FOO=BAR", *TAIL,
        ],
    ),
    (
        "No environment variables",
        "/some/dir",
        [],
        DockerOptions(),
        None,
        ["docker", "run", "--rm", "-v", "/workingDirectory:/data", "-w", "/data/some/dir", *TAIL],
    ),
]  # fmt: skip


def _fixture_spec(name: str, step_dir: str, env: list[str], config: str | None) -> ContainerSpec:
    script = "script/path" if name == "Converts to docker spec" else "some/path"
    return ContainerSpec(
        image="some-image",
        script_path=f".sourcegraph-executor/{script}",
        workspace_dir="/workingDirectory",
        dir=step_dir,
        env=env,
        docker_config_dir=config,
    )


@pytest.mark.parametrize(
    ("name", "step_dir", "env", "options", "config", "expected"),
    FIXTURES,
    ids=[f[0] for f in FIXTURES],
)
def test_docker_argv_matches_sourcegraph_without_additions(
    name: str,
    step_dir: str,
    env: list[str],
    options: DockerOptions,
    config: str | None,
    expected: list[str],
) -> None:
    """No name, no labels, hardening off: exactly Sourcegraph's argv."""
    from dataclasses import replace

    spec = _fixture_spec(name, step_dir, env, config)
    assert docker_argv(spec, replace(options, hardening=False, pids_limit=4096)) == expected


def test_ex22_cpu_and_memory() -> None:
    """Spec Ex22, verbatim."""
    spec = _fixture_spec("CPU and Memory", "/some/dir", ["FOO=BAR"], None)
    expected = json.loads(
        '["docker","run","--rm","--cpus","10","--memory","10G","-v","/workingDirectory:/data",'
        '"-w","/data/some/dir","-e","FOO=BAR","--entrypoint","/bin/sh","some-image",'
        '"/data/.sourcegraph-executor/some/path"]'
    )
    assert docker_argv(spec, DockerOptions(cpus=10, memory="10G", hardening=False)) == expected


def test_docker_argv_with_every_addition() -> None:
    labels = container_labels(
        executor_name="host-1234", job_id=42, host="host", lock_path="/tmp/.executor-x.lock"
    )
    spec = ContainerSpec(
        image="executor-busybox:latest",
        script_path=".sourcegraph-executor/42.0_@c.sh",
        workspace_dir="/tmp/workspace-42-abc",
        dir="sub",
        env=["A=1", "B=two words"],
        name="executor-host-1234-42-0",
        labels=labels,
        docker_config_dir="/tmp/cfg",
    )
    options = DockerOptions(
        cpus=2,
        memory="1G",
        pids_limit=256,
        add_host_gateway=True,
        additional_mounts=["type=tmpfs,target=/tmp"],
    )
    assert docker_argv(spec, options) == [
        "docker", "--config", "/tmp/cfg", "run", "--rm",
        "--name", "executor-host-1234-42-0",
        "--label", "executor.host=host",
        "--label", "executor.job=42",
        "--label", "executor.lock=/tmp/.executor-x.lock",
        "--label", "executor.name=host-1234",
        "--init", "--security-opt", "no-new-privileges", "--pids-limit", "256",
        "--add-host=host.docker.internal:host-gateway",
        "--cpus", "2", "--memory", "1G",
        "--mount", "type=tmpfs,target=/tmp",
        "-v", "/tmp/workspace-42-abc:/data", "-w", "/data/sub",
        "-e", "A=1", "-e", "B=two words",
        "--entrypoint", "/bin/sh", "executor-busybox:latest",
        "/data/.sourcegraph-executor/42.0_@c.sh",
    ]  # fmt: skip


def test_docker_argv_limits_edge_cases() -> None:
    spec = _fixture_spec("x", "", [], None)
    no_limits = docker_argv(spec, DockerOptions(cpus=0, memory="0", pids_limit=0))
    assert "--cpus" not in no_limits
    assert "--memory" not in no_limits
    assert "--pids-limit" not in no_limits
    assert no_limits[3:7] == ["--init", "--security-opt", "no-new-privileges", "-v"]
    half = docker_argv(spec, DockerOptions(cpus=0.5, hardening=False))
    assert half[3:5] == ["--cpus", "0.5"]


@pytest.mark.parametrize(
    ("step_dir", "workdir"),
    [("", "/data"), ("a/b", "/data/a/b"), ("/a/b/", "/data/a/b"), ("a/../b", "/data/b")],
)
def test_docker_argv_workdir_follows_go_filepath_join(step_dir: str, workdir: str) -> None:
    argv = docker_argv(_fixture_spec("x", step_dir, [], None), DockerOptions(hardening=False))
    assert argv[argv.index("-w") + 1] == workdir


@pytest.mark.parametrize("image", ["", "--privileged", "-it"])
def test_docker_argv_refuses_images_that_look_like_flags(image: str) -> None:
    spec = ContainerSpec(image=image, script_path="s.sh", workspace_dir="/w")
    with pytest.raises(ValueError, match="invalid step image"):
        docker_argv(spec, DockerOptions())


def test_script_content_is_preamble_blank_line_commands() -> None:
    content = script_content(["echo hello", "exit 3"])
    assert content == PREAMBLE + "\n\necho hello\nexit 3\n"
    assert content.startswith(
        '\n# Only on the first run, check if we can upgrade to bash.\nif [ -z "$1" ]'
    )
    assert "set +e\n# From the actual script, log all commands.\nset -x\n\necho hello\n" in content
    assert script_content([]) == PREAMBLE + "\n\n"


def test_preamble_is_spec_text() -> None:
    lines = PREAMBLE.split("\n")
    assert lines[0] == ""
    assert lines[-1] == "set -x"
    assert '    exec "${bash_path}" "$0" skip-check' in lines
    assert '      exec /bin/bash "$0" skip-check' in lines
    assert len(lines) == 20


def test_script_name() -> None:
    assert (
        script_name(42, 0, "github.com/sourcegraph/sourcegraph", "d34db33f")
        == "42.0_github.com_sourcegraph_sourcegraph@d34db33f.sh"
    )
    assert script_name(42, 0, "", "commit") == "42.0_@commit.sh"
    assert script_name("7", 3, "a/b", "c") == "7.3_a_b@c.sh"


def test_container_name_and_labels() -> None:
    assert container_name("box-1f2e", 42, 0) == "executor-box-1f2e-42-0"
    assert container_name("we ird/név", 1, "step.pre") == "executor-we_ird_n_v-1-step.pre"
    assert container_labels(executor_name="e", job_id=5, host="h") == {
        LABEL_EXECUTOR: "e",
        LABEL_JOB: "5",
        LABEL_HOST: "h",
    }
    assert LABEL_LOCK not in container_labels(executor_name="e", job_id=5, host="h")


def test_forwarded_env_keeps_only_four_variables() -> None:
    environ = {
        "HOME": "/root",
        "PATH": "/bin",
        "USER": "u",
        "DOCKER_HOST": "unix:///x.sock",
        "EXECUTOR_FRONTEND_PASSWORD": "secret",
        "LD_PRELOAD": "evil.so",
    }
    assert forwarded_env(environ) == {k: environ[k] for k in FORWARDED_ENV_VARS}
    assert forwarded_env({"PATH": "/bin"}) == {"PATH": "/bin"}


def test_docker_auth_config_is_private(tmp_path: Path) -> None:
    auth = {"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}}}
    directory = write_docker_auth_config(auth, tmp_path)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    config = directory / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text()) == auth


class ListSink:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def write(self, stream: str, line: str) -> None:
        self.lines.append((stream, line))


def _pump(data: bytes, chunks: int = 7, max_line: int = 1 << 20) -> list[tuple[str, str]]:
    async def go() -> list[tuple[str, str]]:
        reader = asyncio.StreamReader()
        step = max(1, len(data) // chunks)
        for i in range(0, len(data), step):
            reader.feed_data(data[i : i + step])
        reader.feed_eof()
        sink = ListSink()
        await pump_lines(reader, "stdout", sink, max_line=max_line)
        return sink.lines

    return asyncio.run(go())


def test_pump_lines_splits_decodes_and_keeps_last_partial_line() -> None:
    lines = _pump(b"one\ntwo\n\nthr\xffee\nno newline at end")
    assert [line for _, line in lines] == ["one", "two", "", "thr\ufffdee", "no newline at end"]
    assert {stream for stream, _ in lines} == {"stdout"}


def test_pump_lines_long_lines_are_cut_at_max_line() -> None:
    lines = _pump(b"x" * 25 + b"\nok\n", chunks=30, max_line=10)
    assert [line for _, line in lines] == ["x" * 10, "x" * 10, "x" * 5, "ok"]


def test_pump_lines_cuts_a_line_that_never_ends_while_reading() -> None:
    async def go() -> list[str]:
        reader = asyncio.StreamReader()
        sink = ListSink()
        task = asyncio.create_task(pump_lines(reader, "stderr", sink, max_line=4))
        reader.feed_data(b"abcdefghij")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen = [line for _, line in sink.lines]
        reader.feed_data(b"kl\n")
        reader.feed_eof()
        await task
        return [*seen, "|", *(line for _, line in sink.lines)]

    # Memory stays bounded: the first 8 bytes leave before the newline arrives.
    assert asyncio.run(go()) == ["abcd", "efgh", "|", "abcd", "efgh", "ijkl"]


def test_pump_lines_one_mebibyte_line_intact() -> None:
    big = b"y" * (1 << 20)
    lines = _pump(big + b"\n" + big, chunks=5, max_line=100 << 20)
    assert [len(line) for _, line in lines] == [1 << 20, 1 << 20]
