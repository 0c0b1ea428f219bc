"""`runtime.argv`'s optional fields for non-Sourcegraph containers (batch steps, root cleanup).

Sourcegraph's own argv (every `docker_test.go` fixture) is pinned in `tests/test_runtime.py`;
here: that the new fields change nothing while unset, and exactly what they add when set.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from executor.runtime.argv import ContainerSpec, DockerOptions, docker_argv
from executor.runtime.rootclean import CLEANUP_COMMAND, cleanup_spec

BASE = ContainerSpec(
    image="img", script_path=".sourcegraph-executor/s.sh", workspace_dir="/ws", dir="d"
)
PLAIN = DockerOptions(hardening=False)


def test_defaults_are_sourcegraphs_argv() -> None:
    explicit = replace(BASE, mount_target="/data", mount_subdir="", user="", network="", args=())
    expected = [
        "docker", "run", "--rm", "-v", "/ws:/data", "-w", "/data/d",
        "--entrypoint", "/bin/sh", "img", "/data/.sourcegraph-executor/s.sh",
    ]  # fmt: skip
    assert docker_argv(BASE, PLAIN) == expected
    assert docker_argv(explicit, PLAIN) == expected


def test_batch_step_fields() -> None:
    spec = replace(
        BASE,
        dir="sub/dir",
        mount_target="/work",
        mount_subdir="repository",
        user="0:0",
        args=("/.src-batch-exec/run.sh",),
        name="n",
    )
    assert docker_argv(spec, PLAIN) == [
        "docker", "run", "--rm", "--name", "n", "--user", "0:0",
        "-v", "/ws/repository:/work", "-w", "/work/sub/dir",
        "--entrypoint", "/bin/sh", "img", "/.src-batch-exec/run.sh",
    ]  # fmt: skip


def test_subdir_under_docker_in_docker_host_path() -> None:
    spec = replace(BASE, workspace_dir="/tmp/workspace-1-x", mount_subdir="./repository/")
    argv = docker_argv(spec, replace(PLAIN, host_mount_path="/host/root"))
    assert argv[argv.index("-v") + 1] == "/host/root/workspace-1-x/repository:/data"


@pytest.mark.parametrize("subdir", ["..", "../x", "a/../../b", "/../x"])
def test_subdir_may_not_leave_the_workspace(subdir: str) -> None:
    with pytest.raises(ValueError, match="leaves the workspace"):
        docker_argv(replace(BASE, mount_subdir=subdir), PLAIN)


def test_relative_mount_target_is_refused() -> None:
    with pytest.raises(ValueError, match="not absolute"):
        docker_argv(replace(BASE, mount_target="work"), PLAIN)


def test_cleanup_container_argv() -> None:
    labels = {"executor.name": "e", "executor.job": "7", "executor.host": "h"}
    spec = cleanup_spec("/root/workspace-7-a", image="busybox", name="c", labels=labels)
    argv = docker_argv(spec, DockerOptions(cpus=1, memory="1G", pids_limit=64))
    assert argv == [
        "docker", "run", "--rm", "--name", "c",
        "--label", "executor.host=h", "--label", "executor.job=7", "--label", "executor.name=e",
        "--user", "0:0", "--network", "none",
        "--init", "--security-opt", "no-new-privileges", "--pids-limit", "64",
        "--cpus", "1", "--memory", "1G",
        "-v", "/root/workspace-7-a:/data", "-w", "/data",
        "--entrypoint", "/bin/sh", "busybox", "-c", CLEANUP_COMMAND,
    ]  # fmt: skip
    assert CLEANUP_COMMAND == "rm -rf -- /data/..?* /data/.[!.]* /data/*"


def test_step_network_setting_adds_network_in_its_place() -> None:
    """EXECUTOR_STEP_NETWORK (`DockerOptions.network`): `--network N` right after `--user`,
    before the hardening flags; a spec's own network (the cleanup container's `none`) wins."""
    options = DockerOptions(network="executor-steps", pids_limit=5)
    spec = replace(BASE, name="c", user="1:1")
    assert docker_argv(spec, options)[3:13] == [
        "--name", "c", "--user", "1:1", "--network", "executor-steps",
        "--init", "--security-opt", "no-new-privileges", "--pids-limit",
    ]  # fmt: skip
    assert docker_argv(replace(spec, network="none"), options).count("--network") == 1
    assert "none" in docker_argv(replace(spec, network="none"), options)
    assert "executor-steps" not in docker_argv(replace(spec, network="none"), options)
    cleanup = cleanup_spec("/root/workspace-7-a", image="busybox", name="c", labels={})
    assert docker_argv(cleanup, options)[docker_argv(cleanup, options).index("--network") + 1] == (
        "none"
    )
    # Unset: exactly Sourcegraph's argv, no --network at all.
    assert "--network" not in docker_argv(BASE, PLAIN)


def test_docker_config_dir_is_only_given_to_the_cli_never_mounted() -> None:
    """The registry credentials directory goes to `docker --config`; no `-v`/`--mount` of the
    step reaches it (it lives beside the workspaces, under the root no step sees)."""
    spec = replace(BASE, workspace_dir="/root/workspace-1-x", docker_config_dir="/root/cfg-1")
    argv = docker_argv(spec, DockerOptions(additional_mounts=["type=tmpfs,target=/t"]))
    assert argv[:3] == ["docker", "--config", "/root/cfg-1"]
    assert [a for a in argv[3:] if "/root/cfg-1" in a] == []
    assert argv[argv.index("-v") + 1] == "/root/workspace-1-x:/data"
