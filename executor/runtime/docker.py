"""The Docker runtime: run one step container, stream its output, and make sure it goes away.

The Docker implementation of `executor.runtime.Runtime` (the Protocol the handler, the batch
engine and the janitor use). It must not know the queue API, what a job means, or templating:
it receives a `ContainerSpec` and `DockerOptions` (built by the pure functions in
`executor.runtime.argv`), and an `OutputSink` (`executor.runtime.stream`; a sink that also
takes raw blocks of lines, as the execution log does, gets those instead of one call per line).

Two ways of talking to Docker, each where it fits:

* The step itself and its cancellation use the **docker CLI** (`docker run`, `docker stop`,
  `docker rm -f`, `docker container inspect`), so the argv is Sourcegraph's byte for byte and the
  cleanup goes through the same binary, `--config` and environment (`DOCKER_HOST`, CLI contexts)
  as the run it undoes: it cannot address a different engine.
* Inspection and cleanup (`remove_container`, `image_exists`, and `list_containers` on an
  engine that is not a local socket) use the **docker SDK (docker-py)**, which talks to the
  Engine API directly: structured results and errors (`NotFound`, 409 "in progress") instead
  of parsing CLI text. docker-py is blocking, so every call runs in `asyncio.to_thread`, off
  the event loop. It is imported when a container is first removed or an image checked, which
  an idle daemon never does: docker-py with requests and urllib3 is ~4 MiB of resident memory.
* The janitor's listing, once a minute also on an idle daemon, is the Engine API's
  `GET /containers/json?all=1&filters=...` (the request docker-py's `containers.list(all=True,
  sparse=True, filters=...)` sends) sent with **httpx** over the engine's Unix socket
  (`DOCKER_HOST=unix://...`, or docker-py's default `/var/run/docker.sock`): the daemon already
  loads httpx for the queue API, and the call costs about 2 ms. It used to run docker-py in a
  short-lived child process so as not to load it idle; that child cost 0.15-0.2 s of CPU a
  sweep, a third of an idle daemon's CPU (`bench.idle`). Any other engine address (`tcp://`,
  `ssh://`, with TLS variables) is listed through docker-py, which implements them.

Cancellation reaches the container. Sourcegraph's executor only killed the CLI, which leaves a
`docker run` container running. Here, when the task awaiting `run` is cancelled (job cancel,
deadline, second signal), a shielded cleanup runs `docker stop -t <grace>`, `docker rm -f`,
terminates the CLI, polls `docker container inspect` until the container is gone, records how long
that took (`last_cancel_latency`, `on_cancel_latency`), and only then re-raises CancelledError.
Containers run with `--init` (see `runtime.argv`), so SIGTERM reaches the script and `docker stop`
returns in milliseconds. The CLI is started in its own session so a terminal's Ctrl-C reaches the
daemon's two-stage shutdown instead of being proxied straight into the container.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import structlog

from executor.runtime import ContainerInfo, finish_shielded, forwarded_env
from executor.runtime.argv import (
    ContainerSpec,
    DockerOptions,
    docker_argv,
)
from executor.runtime.engine import engine_client, engine_message, engine_socket
from executor.runtime.stream import READ_CHUNK, OutputSink, pump

__all__ = ["DockerRuntime"]

_log = structlog.get_logger(__name__)

# The SDK, imported by name: to mypy and ruff the repository's top-level `docker/` directory
# (Dockerfiles, no __init__.py) looks like a namespace package that shadows it. At run time the
# installed regular package always wins. docker-py ships no type hints, so it is `Any` anyway.


def _sdk(name: str = "") -> Any:
    """docker-py (`docker`, or its submodule `name`), imported when first used.

    docker-py pulls in requests and urllib3 (~4 MiB resident), needed in this process only once
    a container is removed or an image checked (or an engine that is not a local socket listed).
    """
    return importlib.import_module(f"docker.{name}" if name else "docker")


class DockerRuntime:
    """Runs steps with the docker CLI; inspects and cleans up with docker-py."""

    def __init__(
        self,
        *,
        executor_name: str,
        stop_timeout: float = 5.0,
        env: Mapping[str, str],
        docker_bin: str = "docker",
        on_cancel_latency: Callable[[float], None] | None = None,
        verify_timeout: float = 15.0,
        list_timeout: float = 120.0,
    ) -> None:
        """`env` is filtered to `FORWARDED_ENV_VARS`; the daemon's own environment is never used.

        `stop_timeout` is the grace between `docker stop`'s SIGTERM and its SIGKILL;
        `verify_timeout` bounds how long a cancel waits for the container to disappear;
        `list_timeout` how long a listing over the engine's socket may take.
        """
        self.executor_name = executor_name
        self.stop_timeout = stop_timeout
        self.verify_timeout = verify_timeout
        self.list_timeout = list_timeout
        self.docker_bin = docker_bin
        self.on_cancel_latency = on_cancel_latency
        #: Seconds the last cancel took from `docker stop` until the container was gone.
        self.last_cancel_latency: float | None = None
        self._env = forwarded_env(env)
        self._client: Any = None
        #: The engine's Unix socket when it is one (the janitor lists over it with httpx).
        self._socket = engine_socket(self._env.get("DOCKER_HOST", ""))

    # --- running a step -------------------------------------------------------------------------

    async def run(self, spec: ContainerSpec, options: DockerOptions, sink: OutputSink) -> int:
        """Run `docker run` for `spec`, stream each output line to `sink`, return the exit code.

        Exit code 125 means Docker itself failed (e.g. the image does not exist); its message is
        in the stderr lines. Cancelling the caller stops and removes the container before
        CancelledError propagates; so does an exception raised by `sink`.
        """
        if not spec.name:
            raise ValueError("a step container needs a name, or cancel could not reach it")
        argv = docker_argv(spec, options)
        argv[0] = self.docker_bin
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(self._env),
            start_new_session=True,
            # Let a busy step's output queue up to a chunk before the pipe stops being read.
            limit=READ_CHUNK,
        )
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            asyncio.create_task(pump(proc.stdout, "stdout", sink)),
            asyncio.create_task(pump(proc.stderr, "stderr", sink)),
        ]
        try:
            # asyncio.wait (unlike gather) leaves the pumps running when we are cancelled, so
            # the step's last words still reach the sink while the container is stopped.
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
            returncode = await proc.wait()
        except BaseException:
            await finish_shielded(
                self._reap(spec.name, proc, pumps),
                on_error=lambda: _log.exception("container cleanup failed"),
            )
            raise
        # A CLI killed by a signal reports -N; report it the way a shell would.
        return 128 - returncode if returncode < 0 else returncode

    async def _reap(
        self, name: str, proc: asyncio.subprocess.Process, pumps: list[asyncio.Task[None]]
    ) -> None:
        """Stop, remove and verify the container is gone; then stop the CLI and the pumps."""
        started = time.monotonic()
        grace = max(0, math.ceil(self.stop_timeout))
        await self._cli("stop", "-t", str(grace), name, timeout=grace + 30)
        # `--rm` may already be removing it; rm -f covers a stop that failed or timed out.
        await self._cli("rm", "-f", name, timeout=30)
        await _terminate(proc)
        # Once the CLI has exited nothing can create the container any more; make sure of it.
        gone = False
        deadline = time.monotonic() + self.verify_timeout
        while time.monotonic() < deadline:
            if not await self._container_present(name):
                gone = True
                break
            await self._cli("rm", "-f", name, timeout=30)
            await asyncio.sleep(0.1)
        latency = time.monotonic() - started
        self.last_cancel_latency = latency
        if self.on_cancel_latency is not None:
            self.on_cancel_latency(latency)
        if gone:
            _log.info("step container removed after cancel", container=name, seconds=latency)
        else:
            _log.error("step container still present after cancel", container=name)
        _, pending = await asyncio.wait(pumps, timeout=2.0)
        for task in pending:
            task.cancel()

    async def _container_present(self, name: str) -> bool:
        code, out = await self._cli("container", "inspect", "--format", "{{.Id}}", name, timeout=30)
        # Any failure other than "No such container" (engine unreachable …) counts as present.
        return code == 0 or "no such container" not in out.lower()

    async def _cli(self, *args: str, timeout: float, stderr: bool = True) -> tuple[int, str]:
        """Run a short docker CLI command; return its exit code and output (stdout, and
        stderr with it unless `stderr` is False: then it is dropped)."""
        try:
            proc = await asyncio.create_subprocess_exec(
                self.docker_bin,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT if stderr else asyncio.subprocess.DEVNULL,
                env=dict(self._env),
                start_new_session=True,
            )
        except OSError as err:
            return -1, str(err)
        try:
            async with asyncio.timeout(timeout):
                out, _ = await proc.communicate()
        except TimeoutError:
            await _terminate(proc, grace=0)
            return -1, f"docker {args[0]} timed out after {timeout}s"
        return proc.returncode or 0, out.decode("utf-8", errors="replace")

    # --- inspection and cleanup (docker-py) -----------------------------------------------------

    async def remove_container(self, name: str) -> bool:
        """Force-remove a container; False if it did not exist (or is already being removed)."""

        def remove() -> bool:
            errors = _sdk("errors")
            try:
                self._docker(f"remove {name}").containers.get(name).remove(force=True)
            except errors.NotFound:
                return False
            except errors.APIError as err:
                if err.status_code == 409 and "in progress" in str(err):
                    return False
                raise
            return True

        return await asyncio.to_thread(remove)

    async def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """All containers, running or not, that carry every label in `labels`.

        Over the engine's Unix socket with httpx when it is one (no docker-py loaded, no
        thread); otherwise through docker-py in a worker thread.
        """
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        if self._socket is not None:
            return [_info(attrs) for attrs in await self._list_over_socket(self._socket, filters)]

        def listing() -> list[ContainerInfo]:
            found = self._docker("list").containers.list(all=True, sparse=True, filters=filters)
            return [_info(c.attrs) for c in found]

        return await asyncio.to_thread(listing)

    async def _list_over_socket(
        self, socket_path: str, filters: dict[str, list[str]]
    ) -> list[dict[str, Any]]:
        params = {"all": "1", "filters": json.dumps(filters)}
        try:
            async with engine_client(socket_path, self.list_timeout) as client:
                response = await client.get("/containers/json", params=params)
        except httpx.TimeoutException:
            raise RuntimeError(
                f"container listing timed out after {self.list_timeout}s ({socket_path})"
            ) from None
        except httpx.TransportError as err:
            raise RuntimeError(f"container listing failed: {socket_path}: {err}") from None
        if response.status_code != 200:
            message = engine_message(response)
            raise RuntimeError(
                f"container listing failed: the engine answered {response.status_code}: {message}"
            )
        found = response.json()
        if not isinstance(found, list):
            raise RuntimeError("container listing failed: the engine's answer is not a list")
        return [entry for entry in found if isinstance(entry, dict)]

    async def image_exists(self, image: str) -> bool:
        """Whether `image` is present locally (nothing is pulled)."""

        def exists() -> bool:
            errors = _sdk("errors")
            try:
                self._docker(f"image check {image}").images.get(image)
            except errors.ImageNotFound:
                return False
            return True

        return await asyncio.to_thread(exists)

    def close(self) -> None:
        """Close the docker-py connection pool, if one was opened."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _docker(self, why: str) -> Any:
        # Created lazily (in a worker thread) so constructing the runtime needs no engine.
        if self._client is None:
            # Logged: the one step up of an idle daemon's memory (`bench.idle` counts it).
            _log.info("docker SDK loaded in the daemon", reason=why)
            self._client = _engine_client(dict(self._env))
        return self._client


def _engine_client(environment: dict[str, str]) -> Any:
    """docker-py's client from the environment, keeping one idle connection to the engine.

    Over a Unix socket docker-py caches one connection pool per request *URL* (up to 25, and
    its `num_pools` argument is ignored there), each holding its connection open: every
    container looked up or removed by ID left a socket behind, and a long-running daemon's
    descriptors crept up by 25 (found by `bench.soak`). Remounting the adapter with a single
    pool closes the previous connection whenever the URL changes.
    """
    client = _sdk().from_env(environment=environment)
    unixconn = _sdk("transport.unixconn")
    adapter = client.api.adapters.get("http+docker://")
    if isinstance(adapter, unixconn.UnixHTTPAdapter):
        single = unixconn.UnixHTTPAdapter(
            f"http+unix://{adapter.socket_path}",
            adapter.timeout,
            pool_connections=1,
            max_pool_size=adapter.max_pool_size,
        )
        client.api.mount("http+docker://", single)
        adapter.close()
    return client


def _info(attrs: Mapping[str, Any]) -> ContainerInfo:
    """A container from the Engine API's sparse list entry."""
    names = attrs.get("Names") or [""]
    return ContainerInfo(
        id=str(attrs.get("Id", "")),
        name=str(names[0]).lstrip("/"),
        state=str(attrs.get("State", "")),
        labels=dict(attrs.get("Labels") or {}),
    )


async def _terminate(proc: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    """SIGTERM, wait up to `grace`, then SIGKILL; always reaps the process."""
    if proc.returncode is None:
        try:
            proc.send_signal(signal.SIGTERM if grace > 0 else signal.SIGKILL)
            async with asyncio.timeout(grace or None):
                await proc.wait()
        except ProcessLookupError:
            pass
        except TimeoutError:
            proc.kill()
    await proc.wait()
