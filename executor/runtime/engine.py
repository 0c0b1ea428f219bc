"""Is the Docker engine fit to take a job? A probe the worker's admission consults.

A Docker engine can wedge while its socket still accepts connections: a container's `runc init`
blocks, dockerd then holds that container's lock, and every request that touches containers
(`docker info`, `docker inspect`, `docker run`) waits forever (seen on this project's CI host;
moby/moby#41986 and its duplicates). Sourcegraph's executor has no check for it: each job it
dequeues then hangs until `EXECUTOR_MAXIMUM_RUNTIME_PER_JOB`, and with no deadline, for ever,
while the frontend sees healthy heartbeats and keeps handing this host work.

`EngineProbe` asks `GET /info` over the engine's Unix socket (the request `docker info`
sends; it counts containers, so it waits on the same locks a wedge holds, where `GET /_ping`
would still answer) every `interval` with a `timeout`. While the last answer is missing, late
or an error, `reason` names it: the worker's admission then stops dequeuing (jobs stay queued
for healthy hosts), `/healthz` shows it under `refusing`, the `executor_docker_engine_up` gauge
is 0 (the heartbeat's `prometheusMetrics` carries it to the frontend), and the change is logged
once each way. Running jobs are left alone: the runtime's own deadlines and cancel apply.

Only a local engine is probed (`DOCKER_HOST` unset or `unix://`); a `tcp://` or `ssh://` engine
is not (its transport and TLS are docker-py's to speak). About 2 ms of CPU every 30 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import structlog

__all__ = ["EngineProbe", "engine_socket"]

_log = structlog.get_logger(__name__)


def engine_socket(docker_host: str) -> str | None:
    """The socket path of a local engine (docker-py's default when `DOCKER_HOST` is unset)."""
    if not docker_host:
        return "/var/run/docker.sock"
    if docker_host.startswith("unix://"):
        return docker_host.removeprefix("unix://") or None
    return None


def engine_message(response: httpx.Response) -> str:
    """The engine's `{"message": ...}` error text, else the start of its body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:200]
    return response.text[:200]


def engine_client(socket_path: str, timeout: float) -> httpx.AsyncClient:
    """An httpx client for the Engine API on `socket_path` (the URL's host is never resolved).

    No TLS on a Unix socket: `verify=False` spares loading the CA bundle into a fresh SSL
    context every call (20 ms of CPU and 1 MiB, for a context never used)."""
    transport = httpx.AsyncHTTPTransport(uds=socket_path, verify=False)
    return httpx.AsyncClient(transport=transport, base_url="http://docker", timeout=timeout)


class EngineProbe:
    """Asks the engine `GET /info` every `interval`; `reason` says why it is unfit, or None."""

    def __init__(
        self,
        socket_path: str,
        *,
        interval: float = 30.0,
        timeout: float = 10.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        """`on_change(up)` is called with the first verdict and with every change after it."""
        self.socket_path = socket_path
        self.interval = interval
        self.timeout = timeout
        self.on_change = on_change
        #: Why the engine is unfit for a job now (None: it answered the last probe in time).
        self.reason: str | None = None
        self._judged = False

    async def check(self) -> None:
        """Probe once and record the verdict (before the first dequeue, then every interval)."""
        self._record(await self.probe_once())

    async def run_forever(self) -> None:
        """`check` every `interval`, the first one `interval` from now."""
        while True:
            await asyncio.sleep(self.interval)
            await self.check()

    async def probe_once(self) -> str | None:
        """One `GET /info`: None if it answered 200 within `timeout`, else what went wrong."""
        try:
            async with engine_client(self.socket_path, self.timeout) as client:
                response = await client.get("/info")
        except httpx.TimeoutException:
            return (
                f"the Docker engine did not answer GET /info within {self.timeout:g}s "
                f"({self.socket_path}): it may be wedged"
            )
        except httpx.TransportError as err:
            return f"cannot reach the Docker engine at {self.socket_path}: {err}"
        if response.status_code != 200:
            return (
                f"the Docker engine answered {response.status_code} to GET /info: "
                f"{engine_message(response)}"
            )
        return None

    def _record(self, reason: str | None) -> None:
        if reason and reason != self.reason:
            _log.warning("Docker engine unfit for jobs", reason=reason)
        elif self.reason and not reason:
            _log.info("Docker engine answers again", was=self.reason)
        was_up = None if not self._judged else self.reason is None
        self.reason, self._judged = reason, True
        if self.on_change is not None and was_up is not (reason is None):
            self.on_change(reason is None)
