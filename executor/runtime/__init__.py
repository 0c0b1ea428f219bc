"""Container runtimes: where a step's container runs, and how it is found and removed again.

The handler, the batch engine and the janitor depend only on the `Runtime` Protocol below, never
on an implementation, so a second runtime plugs in beside `docker` (the Docker CLI and SDK).
Modules:

* `argv`: the pure `docker run` argv builder, container names and labels (Sourcegraph's
  `worker/command/docker.go` order);
* `stream`: pumping a child's output into an `OutputSink` with bounded memory;
* `auth`: the per-job Docker client config (registry credentials) outside every mount;
* `docker`: `DockerRuntime`, the implementation;
* `rootclean`: removing root-owned files a step left, through a short cleanup container;
* `janitor`: removing what a dead daemon left (containers, workspaces, config dirs);
* `kubernetes`: the Kubernetes runtime (a `JobRuntime`: every step of a job in one pod).

Importing this package does not import the Docker SDK (only `runtime.docker` does) nor the
Kubernetes client (only `runtime.kubernetes.client` does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from executor.runtime.argv import ContainerSpec, DockerOptions
from executor.runtime.stream import OutputSink, PieceSink
from executor.wire import Job

__all__ = [
    "FORWARDED_ENV_VARS",
    "ContainerInfo",
    "EntryOpener",
    "FileFetcher",
    "JobRuntime",
    "LogEntry",
    "Runtime",
    "finish_shielded",
    "forwarded_env",
]

#: The only host variables children see (Sourcegraph's `forwardedHostEnvVars`,
#: `worker/command/command.go`).
FORWARDED_ENV_VARS = ("HOME", "PATH", "USER", "DOCKER_HOST")


def forwarded_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The subset of `environ` that may reach a child process."""
    return {k: environ[k] for k in FORWARDED_ENV_VARS if k in environ}


@dataclass(frozen=True)
class ContainerInfo:
    """A container as the janitor sees it."""

    id: str
    name: str
    state: str
    labels: Mapping[str, str] = field(default_factory=dict)


class Runtime(Protocol):
    """What the handler, the batch engine and the janitor need from a container runtime."""

    async def run(self, spec: ContainerSpec, options: DockerOptions, sink: OutputSink) -> int:
        """Run one step to completion and return its exit code; on cancel, remove it first."""

    async def remove_container(self, name: str) -> bool:
        """Force-remove a container by name or ID; False if it did not exist."""

    async def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """All containers (running or not) carrying every one of `labels`."""

    async def image_exists(self, image: str) -> bool:
        """Whether `image` is present locally."""


class LogEntry(PieceSink, Protocol):
    """One log entry as a runtime writes it (`logstream.LogEntryHandle` is one)."""

    def write_text(self, text: str) -> None: ...

    def finalize(self, exit_code: int) -> None: ...


class EntryOpener(Protocol):
    """Opens a job's log entries (`logstream.ExecutionLogger` is one)."""

    def open(self, key: str, command: list[str] | None) -> LogEntry: ...


class FileFetcher(Protocol):
    """The files API, for job files stored as `bucket`/`key` (the queue client is one)."""

    async def get_file(self, job: Job, bucket: str, key: str) -> bytes: ...


class JobRuntime(Protocol):
    """A runtime that runs a whole job elsewhere (Sourcegraph's Kubernetes single-job pod),
    fetching the repository there too: it replaces the host-side workspace."""

    async def run_job(
        self,
        job: Job,
        files: FileFetcher,
        scripts: Sequence[tuple[str, str]],
        logger: EntryOpener,
    ) -> None:
        """Run every docker step of `job` (its files fetched with `files` when stored, the step
        scripts `(name, text)`), each streamed into its own entry; raise `JobError`
        (`StepFailed` for a step's exit code) on failure; remove what it created, also when
        cancelled."""


async def finish_shielded(
    work: Awaitable[None], *, on_error: Callable[[], None] | None = None
) -> None:
    """Run cleanup `work` to its end even if the caller is cancelled (again) meanwhile.

    A cancel that arrives meanwhile is held back and re-raised once `work` is over, so it is
    never lost. With `on_error` (called inside the `except`, e.g. a `log.exception`), an error of
    `work` is reported there and not raised: a runtime's teardown must not replace the error
    that triggered it. Without, the error propagates (the handler's cleanup, whose errors are
    the job's). The one helper for the handler, `runtime.docker` and `runtime.kubernetes`.
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True  # the caller's cancel (or the task's own): finish first
        except Exception:
            if on_error is None:
                raise
            on_error()
    if cancelled:
        raise asyncio.CancelledError
