"""DockerRuntime against a real engine and the local busybox image: output, exit codes, limits,
and cancellation that stops and removes the container (not just the CLI)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fixtures_docker import DockerEngine

from executor.runtime.argv import ContainerSpec, DockerOptions, container_labels, script_content
from executor.runtime.docker import DockerRuntime
from executor.workspace.clone import SCRIPTS_DIR


class ListSink:
    """Collects (stream, line) pairs in arrival order."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def write(self, stream: str, line: str) -> None:
        self.lines.append((stream, line))

    def stream(self, name: str, *, traces: bool = False) -> list[str]:
        """One stream's lines; `set -x` traces ("+ cmd") dropped unless asked for."""
        return [
            line
            for stream, line in self.lines
            if stream == name and (traces or not line.startswith("+ "))
        ]


def _workspace(tmp_path: Path, commands: list[str]) -> tuple[Path, str]:
    scripts = tmp_path / SCRIPTS_DIR
    scripts.mkdir(parents=True, exist_ok=True)
    script = scripts / f"{uuid.uuid4().hex[:8]}.sh"
    script.write_text(script_content(commands))
    script.chmod(0o777)
    return tmp_path, f"{SCRIPTS_DIR}/{script.name}"


def _spec(
    engine: DockerEngine,
    tmp_path: Path,
    commands: list[str],
    labels: dict[str, str],
    image: str | None = None,
    env: tuple[str, ...] = (),
) -> ContainerSpec:
    workspace, script = _workspace(tmp_path, commands)
    return ContainerSpec(
        image=image or engine.image,
        script_path=script,
        workspace_dir=str(workspace),
        env=env,
        name=f"executor-test-{uuid.uuid4().hex[:12]}",
        labels=labels,
    )


def _runtime(engine: DockerEngine, **kwargs: Any) -> DockerRuntime:
    kwargs.setdefault("stop_timeout", 5.0)
    return DockerRuntime(executor_name="test-executor", env=engine.env, **kwargs)


def _inspect(engine: DockerEngine, name: str) -> dict[str, Any] | None:
    out = subprocess.run(
        ["docker", "container", "inspect", name],
        capture_output=True,
        text=True,
        env=engine.env,
        check=False,
    )
    if out.returncode != 0:
        return None
    data: list[dict[str, Any]] = json.loads(out.stdout)
    return data[0]


async def _wait_running(engine: DockerEngine, name: str) -> dict[str, Any]:
    for _ in range(200):
        info = await asyncio.to_thread(_inspect, engine, name)
        if info is not None and info["State"]["Running"]:
            return info
        await asyncio.sleep(0.05)
    raise AssertionError(f"container {name} never started")


pytestmark = pytest.mark.docker


def test_stdout_and_stderr_lines_in_order(
    docker_engine: DockerEngine, test_labels: dict[str, str], tmp_path: Path
) -> None:
    commands = [
        "echo one",
        "echo two >&2",
        "sleep 0.3",
        "echo three",
        "sleep 0.3",
        "echo four >&2",
        'echo "$GREETING"',
    ]
    spec = _spec(docker_engine, tmp_path, commands, test_labels, env=("GREETING=hello there",))
    sink = ListSink()
    code = asyncio.run(_runtime(docker_engine).run(spec, DockerOptions(), sink))
    assert code == 0
    assert sink.stream("stdout") == ["one", "three", "hello there"]
    assert sink.stream("stderr") == ["two", "four"]
    # Lines printed 0.3 s apart arrive in the order they were printed, across streams.
    untraced = [line for _, line in sink.lines if not line.startswith("+ ")]
    assert untraced.index("two") < untraced.index("three") < untraced.index("four")
    # The preamble's `set -x` traces the commands on stderr (no bash in busybox: sh ran it).
    assert "+ echo one" in sink.stream("stderr", traces=True)
    assert _inspect(docker_engine, spec.name) is None


@pytest.mark.parametrize("code", [0, 1, 7, 42])
def test_exit_codes(
    docker_engine: DockerEngine, test_labels: dict[str, str], tmp_path: Path, code: int
) -> None:
    spec = _spec(docker_engine, tmp_path, ["echo bye", f"exit {code}"], test_labels)
    assert asyncio.run(_runtime(docker_engine).run(spec, DockerOptions(), ListSink())) == code


def test_missing_image_fails_with_dockers_message(
    docker_engine: DockerEngine, test_labels: dict[str, str], tmp_path: Path
) -> None:
    image = f"executor-test-no-such-image-{uuid.uuid4().hex[:8]}:latest"
    runtime = _runtime(docker_engine)
    assert asyncio.run(runtime.image_exists(image)) is False
    spec = _spec(docker_engine, tmp_path, ["echo never"], test_labels, image=image)
    sink = ListSink()
    code = asyncio.run(runtime.run(spec, DockerOptions(), sink))
    assert code == 125
    stderr = "\n".join(sink.stream("stderr"))
    assert f"Unable to find image '{image}' locally" in stderr
    assert sink.stream("stdout") == []
    assert _inspect(docker_engine, spec.name) is None


def test_long_line_and_binary_output(
    docker_engine: DockerEngine, test_labels: dict[str, str], tmp_path: Path
) -> None:
    commands = [
        "head -c 1048576 /dev/zero | tr '\\000' x",
        "echo",
        "printf 'bad \\377\\376 bytes\\n'",
        "printf 'no newline at the end'",
    ]
    spec = _spec(docker_engine, tmp_path, commands, test_labels)
    sink = ListSink()
    assert asyncio.run(_runtime(docker_engine).run(spec, DockerOptions(), sink)) == 0
    out = sink.stream("stdout")
    assert out[0] == "x" * (1 << 20)
    assert out[1:] == ["bad \ufffd\ufffd bytes", "no newline at the end"]


def test_limits_name_and_labels_are_applied(
    docker_engine: DockerEngine, test_labels: dict[str, str], tmp_path: Path
) -> None:
    labels = {
        **test_labels,
        **container_labels(executor_name="test-executor", job_id=42, host="test-host"),
    }
    spec = _spec(docker_engine, tmp_path, ["sleep 30"], labels)
    options = DockerOptions(cpus=1.5, memory="256m", pids_limit=64)
    runtime = _runtime(docker_engine)

    async def scenario() -> tuple[dict[str, Any], list[Any]]:
        task = asyncio.create_task(runtime.run(spec, options, ListSink()))
        try:
            info = await _wait_running(docker_engine, spec.name)
            listed = await runtime.list_containers({**test_labels, "executor.job": "42"})
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        return info, listed

    info, listed = asyncio.run(scenario())
    host = info["HostConfig"]
    assert info["Name"] == f"/{spec.name}"
    assert host["NanoCpus"] == 1_500_000_000
    assert host["Memory"] == 256 * 1024 * 1024
    assert host["PidsLimit"] == 64
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Init"] is True
    assert host["AutoRemove"] is True
    assert info["Config"]["Labels"] == labels
    assert [(c.name, c.state, dict(c.labels)) for c in listed] == [(spec.name, "running", labels)]
    assert _inspect(docker_engine, spec.name) is None


def test_cancel_stops_and_removes_the_container(
    docker_engine: DockerEngine, test_labels: dict[str, str], tmp_path: Path
) -> None:
    spec = _spec(docker_engine, tmp_path, ["echo started", "sleep 1000"], test_labels)
    latencies: list[float] = []
    runtime = _runtime(docker_engine, on_cancel_latency=latencies.append)
    sink = ListSink()

    async def scenario() -> float:
        task = asyncio.create_task(runtime.run(spec, DockerOptions(), sink))
        await _wait_running(docker_engine, spec.name)
        # The container runs before its first line reaches us; cancel once the step is busy.
        for _ in range(200):
            if "started" in sink.stream("stdout"):
                break
            await asyncio.sleep(0.05)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    elapsed = asyncio.run(scenario())
    assert _inspect(docker_engine, spec.name) is None
    assert elapsed < 5.0
    assert runtime.last_cancel_latency is not None
    assert latencies == [runtime.last_cancel_latency]
    assert 0 < runtime.last_cancel_latency <= elapsed
    assert "started" in sink.stream("stdout")


def test_deadline_and_repeated_cancel_still_remove_the_container(
    docker_engine: DockerEngine, test_labels: dict[str, str], tmp_path: Path
) -> None:
    """asyncio.timeout (the per-job deadline) cancels the run; a second cancel during cleanup
    does not cut it short. Without --init the shell ignores SIGTERM, so stop must escalate."""
    spec = _spec(docker_engine, tmp_path, ["sleep 1000"], test_labels)
    runtime = _runtime(docker_engine, stop_timeout=1.0)

    async def scenario() -> None:
        async def run_with_deadline() -> int:
            async with asyncio.timeout(1.5):
                return await runtime.run(spec, DockerOptions(hardening=False), ListSink())

        task = asyncio.create_task(run_with_deadline())
        await _wait_running(docker_engine, spec.name)
        await asyncio.sleep(1.3)  # the deadline fires while we wait here
        task.cancel()  # a second cancel arrives during cleanup
        with pytest.raises((TimeoutError, asyncio.CancelledError)):
            await task

    asyncio.run(scenario())
    assert _inspect(docker_engine, spec.name) is None
    assert runtime.last_cancel_latency is not None
    # docker stop waited the 1 s grace (sh as PID 1 ignores SIGTERM) before SIGKILL.
    assert runtime.last_cancel_latency >= 0.9


def test_sdk_helpers(docker_engine: DockerEngine, test_labels: dict[str, str]) -> None:
    runtime = _runtime(docker_engine)
    name = f"executor-test-{uuid.uuid4().hex[:12]}"
    label_args = [a for k, v in test_labels.items() for a in ("--label", f"{k}={v}")]
    subprocess.run(
        ["docker", "create", "--name", name, *label_args, docker_engine.image, "true"],
        check=True,
        capture_output=True,
        env=docker_engine.env,
    )

    async def scenario() -> None:
        # The listing goes over the engine's socket with httpx: docker-py is not loaded for it,
        # and it finds what docker-py's own listing finds.
        over_socket = await runtime.list_containers(test_labels)
        assert runtime._client is None
        assert await runtime.image_exists(docker_engine.image) is True
        by_sdk = runtime._client.containers.list(
            all=True, sparse=True, filters={"label": [f"{k}={v}" for k, v in test_labels.items()]}
        )
        assert name in [c.name for c in over_socket]
        assert [c.state for c in over_socket if c.name == name] == ["created"]
        assert sorted(c.id for c in over_socket) == sorted(c.attrs["Id"] for c in by_sdk)
        inspected = _inspect(docker_engine, name)
        assert inspected is not None
        assert [c.labels for c in over_socket if c.name == name] == [inspected["Config"]["Labels"]]
        listed = await runtime.list_containers(test_labels)
        assert listed == over_socket
        assert await runtime.remove_container(name) is True
        assert await runtime.remove_container(name) is False
        assert name not in [c.name for c in await runtime.list_containers(test_labels)]

    try:
        asyncio.run(scenario())
    finally:
        runtime.close()


def test_cli_gets_only_the_forwarded_environment(tmp_path: Path) -> None:
    """The docker CLI process sees HOME, PATH, USER and DOCKER_HOST, nothing else.

    A stand-in `docker` binary prints its environment; no engine is needed.
    """
    fake = tmp_path / "fake-docker"
    fake.write_text("#!/bin/sh\nenv\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    environ = {
        "HOME": "/home/x",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "USER": "x",
        "DOCKER_HOST": "unix:///nowhere.sock",
        "EXECUTOR_FRONTEND_PASSWORD": "hunter2",
    }
    runtime = DockerRuntime(executor_name="e", env=environ, docker_bin=str(fake))
    spec = ContainerSpec(image="img", script_path="s.sh", workspace_dir=str(tmp_path), name="n")
    sink = ListSink()
    code = asyncio.run(runtime.run(spec, DockerOptions(), sink))
    assert code == 3
    seen = dict(line.split("=", 1) for line in sink.stream("stdout") if "=" in line)
    seen.pop("PWD", None)  # set by the shell itself
    seen.pop("SHLVL", None)
    seen.pop("_", None)
    assert seen == {k: v for k, v in environ.items() if k != "EXECUTOR_FRONTEND_PASSWORD"}
