"""Pure builders for Docker steps: the script text, its file name and the `docker run` argv.

Nothing here touches the file system, the environment or a process: every function maps values
to values, so the unit tests can compare whole argv lists against Sourcegraph's fixtures
(`cmd/executor/internal/worker/command/docker_test.go`).

The argv is Sourcegraph's, flag for flag (spec §4.5)::

    docker [--config DIR] run --rm
      <our additions>
      [--add-host=host.docker.internal:host-gateway] [--cpus N] [--memory M] [--mount SPEC]...
      -v HOST_DIR:/data -w /data/<dir> [-e K=V]... --entrypoint /bin/sh IMAGE /data/<script>

Our additions sit in one stable place, right after `--rm`, in this order:

    --name NAME                   when `ContainerSpec.name` is set (cancel and janitor need it)
    --label K=V ...               `ContainerSpec.labels`, sorted by key
    --user U                      when `ContainerSpec.user` is set
    --network N                   `ContainerSpec.network`, else `DockerOptions.network`, if set
    --init                        } only when `DockerOptions.hardening` is true: docker-init as
    --security-opt no-new-privileges }  PID 1 forwards SIGTERM to the script, so `docker stop`
    --pids-limit N                }  takes milliseconds instead of the whole grace period

With no name, no labels and `hardening=False` the argv is exactly Sourcegraph's.

Three more optional `ContainerSpec` fields serve containers that are not Sourcegraph's docker
steps, and keep their defaults on that path: `mount_target` (where the workspace appears, `/data`
by default; batch-spec steps use src-cli's `/work`), `mount_subdir` (mount only that part of the
workspace, e.g. `repository`) and `args` (what follows the image instead of the script path).

This module must not know the queue API, what a job means, or templating.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "LABEL_EXECUTOR",
    "LABEL_HOST",
    "LABEL_JOB",
    "LABEL_LOCK",
    "PREAMBLE",
    "ContainerSpec",
    "DockerOptions",
    "container_labels",
    "container_name",
    "docker_argv",
    "script_content",
    "script_name",
]

#: Label keys set on every step container; the janitor selects containers by them.
LABEL_EXECUTOR = "executor.name"
LABEL_JOB = "executor.job"
LABEL_HOST = "executor.host"
#: Absolute path of the owning daemon's liveness lock file (see `executor.runtime.janitor`).
LABEL_LOCK = "executor.lock"

#: Spec §4.4: starts with a newline, ends with `set -x` (the final newline comes from the join).
PREAMBLE = """
# Only on the first run, check if we can upgrade to bash.
if [ -z "$1" ]; then
  bash_path=$(command -p -v bash)
  set -e
  # Check if bash is present. If so, use bash. Otherwise just keep running with sh.
  if [ -n "$bash_path" ]; then
    exec "${bash_path}" "$0" skip-check
  else
    # If not in the path but still exists at /bin/bash, we can use that.
    if [ -f "/bin/bash" ]; then
      exec /bin/bash "$0" skip-check
    fi
  fi
fi

# Restore default shell behavior.
set +e
# From the actual script, log all commands.
set -x"""

_HOST_GATEWAY = "--add-host=host.docker.internal:host-gateway"
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")


@dataclass(frozen=True)
class ContainerSpec:
    """One step container: what runs, where, and how it is named and labelled."""

    #: The step image, e.g. `executor-busybox:latest`.
    image: str
    #: The script, relative to /data, e.g. `.sourcegraph-executor/42.0_@abc.sh` (unless `args`).
    script_path: str
    #: The job's workspace directory on this host (mounted at /data, see `mount_target`).
    workspace_dir: str
    #: The step's working directory relative to /data ("" for /data itself).
    dir: str = ""
    #: `K=V` strings passed with `-e`, in order. Never the daemon's environment.
    env: Sequence[str] = ()
    #: The container name (`--name`); empty to let Docker pick one (then cancel cannot stop it).
    name: str = ""
    #: Container labels (`--label`), emitted sorted by key.
    labels: Mapping[str, str] = field(default_factory=dict)
    #: A private directory holding `config.json` for `docker --config` (registry auth), or None.
    docker_config_dir: str | None = None
    #: Where the workspace is mounted; `dir` and `script_path` are relative to it.
    mount_target: str = "/data"
    #: Mount only this subdirectory of the workspace ("" = all of it); must stay inside it.
    mount_subdir: str = ""
    #: `--user` (e.g. "0:0"); "" leaves the image's user.
    user: str = ""
    #: `--network` (e.g. "none"); "" leaves Docker's default.
    network: str = ""
    #: Arguments after the image; when non-empty they replace `<mount_target>/<script_path>`.
    args: Sequence[str] = ()


@dataclass(frozen=True)
class DockerOptions:
    """Host-wide settings applied to every step container."""

    #: `--cpus`; 0 means unbounded (Sourcegraph: EXECUTOR_JOB_NUM_CPUS).
    cpus: float = 0
    #: `--memory`; "" or "0" means unbounded (EXECUTOR_JOB_MEMORY).
    memory: str = ""
    #: `--pids-limit` when > 0 and `hardening` is on (ours: EXECUTOR_JOB_PIDS_LIMIT).
    pids_limit: int = 0
    #: `--add-host=host.docker.internal:host-gateway` (EXECUTOR_DOCKER_ADD_HOST_GATEWAY).
    add_host_gateway: bool = False
    #: `--mount` specs such as `type=volume,source=foo,target=/bar`
    #: (EXECUTOR_DOCKER_ADDITIONAL_MOUNTS, split on ";").
    additional_mounts: Sequence[str] = ()
    #: Docker-in-Docker: the host path that holds the workspaces (EXECUTOR_DOCKER_HOST_MOUNT_PATH).
    host_mount_path: str = ""
    #: Our hardening flags (`--init`, `--security-opt no-new-privileges`, `--pids-limit`).
    hardening: bool = True
    #: `--network` for every step whose `ContainerSpec.network` is unset (ours:
    #: EXECUTOR_STEP_NETWORK, e.g. `executor-steps` with `executor-iptables.sh`'s egress
    #: rules); "" leaves Docker's default bridge.
    network: str = ""


def script_content(commands: list[str]) -> str:
    """The script file for a step: the §4.4 preamble, a blank line, one command per line."""
    return "\n".join([PREAMBLE, "", *commands]) + "\n"


def script_name(job_id: int | str, step_index: int, repo_name: str, commit: str) -> str:
    """`42.0_github.com_sourcegraph_sourcegraph@d34db33f.sh` (spec §4.3); `42.0_@c.sh` sans repo."""
    return f"{job_id}.{step_index}_{repo_name.replace('/', '_')}@{commit}.sh"


def container_name(executor_name: str, job_id: int | str, step: int | str) -> str:
    """A Docker-safe, per-daemon unique name: `executor-<executor>-<job>-<step>`.

    The executor name carries a UUID, job IDs are unique per queue and steps run one at a time,
    so two live containers never collide. Characters Docker refuses become `_`.
    """
    raw = f"executor-{executor_name}-{job_id}-{step}"
    return _NAME_UNSAFE.sub("_", raw)


def container_labels(
    *, executor_name: str, job_id: int | str, host: str, lock_path: str = ""
) -> dict[str, str]:
    """The labels the janitor relies on: owning executor, job, host and liveness lock file."""
    labels = {LABEL_EXECUTOR: executor_name, LABEL_JOB: str(job_id), LABEL_HOST: host}
    if lock_path:
        labels[LABEL_LOCK] = lock_path
    return labels


def docker_argv(spec: ContainerSpec, options: DockerOptions) -> list[str]:
    """The `docker run` argv for one step, in Sourcegraph's flag order plus our additions.

    `argv[0]` is the literal `docker` (it is also what the log entry shows); the runtime swaps in
    its configured binary when it spawns the process.
    """
    if not spec.image or spec.image.startswith("-"):
        # An image starting with "-" would be parsed as a flag by the docker CLI.
        raise ValueError(f"invalid step image {spec.image!r}")
    argv = ["docker"]
    if spec.docker_config_dir:
        argv += ["--config", spec.docker_config_dir]
    argv += ["run", "--rm"]
    argv += _additions(spec, options)
    if options.add_host_gateway:
        argv.append(_HOST_GATEWAY)
    if options.cpus:
        argv += ["--cpus", _format_cpus(options.cpus)]
    if options.memory not in ("", "0"):
        argv += ["--memory", options.memory]
    for mount in options.additional_mounts:
        argv += ["--mount", mount]
    target = spec.mount_target
    if not target.startswith("/"):
        raise ValueError(f"mount target {target!r} is not absolute")
    source = _host_dir(spec.workspace_dir, options.host_mount_path)
    if spec.mount_subdir:
        subdir = _go_clean(spec.mount_subdir.lstrip("/"))
        if subdir == ".." or subdir.startswith("../"):
            raise ValueError(f"mount subdirectory {spec.mount_subdir!r} leaves the workspace")
        source = _go_join(source, subdir)
    argv += ["-v", f"{source}:{target}"]
    argv += ["-w", _go_join(target, spec.dir)]
    for pair in spec.env:
        argv += ["-e", pair]
    argv += ["--entrypoint", "/bin/sh", spec.image]
    argv += list(spec.args) if spec.args else [_go_join(target, spec.script_path)]
    return argv


def _additions(spec: ContainerSpec, options: DockerOptions) -> list[str]:
    flags: list[str] = []
    if spec.name:
        flags += ["--name", spec.name]
    for key in sorted(spec.labels):
        flags += ["--label", f"{key}={spec.labels[key]}"]
    if spec.user:
        flags += ["--user", spec.user]
    if network := spec.network or options.network:
        flags += ["--network", network]
    if options.hardening:
        flags += ["--init", "--security-opt", "no-new-privileges"]
        if options.pids_limit > 0:
            flags += ["--pids-limit", str(options.pids_limit)]
    return flags


def _format_cpus(cpus: float) -> str:
    # Sourcegraph formats an int (strconv.Itoa); we also accept fractions such as 0.5.
    return str(int(cpus)) if float(cpus).is_integer() else repr(float(cpus))


def _host_dir(workspace_dir: str, host_mount_path: str) -> str:
    # Docker-in-Docker: the daemon sees the workspace under another parent directory.
    if not host_mount_path:
        return workspace_dir
    return _go_join(host_mount_path, posixpath.basename(_go_clean(workspace_dir)))


def _go_join(*parts: str) -> str:
    """Go's `filepath.Join`: join the non-empty parts with "/" and clean the result.

    Unlike `posixpath.join`, an absolute later part does not discard the earlier ones:
    `_go_join("/data", "/some/dir") == "/data/some/dir"`.
    """
    return _go_clean("/".join(p for p in parts if p))


def _go_clean(path: str) -> str:
    cleaned = posixpath.normpath(path)
    # POSIX keeps a leading "//"; Go's filepath.Clean does not.
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned
