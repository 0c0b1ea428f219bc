"""Running the sandbox with uvicorn: blocking (`serve`, for the CLI) or in a background thread
(`SandboxServer`, for tests and benchmarks; port 0 picks a free port, known once `start()`
returns).

uvicorn binds the socket itself: handing it a pre-bound socket made every keep-alive request
wait ~40 ms (delayed ACK), which a test suite of many small calls cannot afford.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn

from executor.sandbox.app import create_app
from executor.sandbox.faults import FaultMiddleware
from executor.sandbox.state import SandboxSettings
from executor.sandbox.timeouts import BodyTimeout, timed_protocol

__all__ = ["SandboxServer", "serve"]


def _config(settings: SandboxSettings, host: str, port: int, log_level: str) -> uvicorn.Config:
    app = create_app(settings)
    served = FaultMiddleware(app, settings.faults, settings.data_dir) if settings.faults else app
    return uvicorn.Config(
        BodyTimeout(served, settings.body_timeout),
        # h11 with a header timeout: a half-sent request is answered 408 and closed.
        http=timed_protocol(settings.header_timeout),
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
        lifespan="on",
        timeout_graceful_shutdown=2,
        # Bounded: at most this many connections at once (503 beyond), idle keep-alive
        # connections closed after 5 s, request heads and bodies timed (`timeouts`). Bodies
        # are capped per route (`queue.MAX_BODY`).
        limit_concurrency=256,
        timeout_keep_alive=5,
    )


def serve(settings: SandboxSettings, host: str, port: int, log_level: str = "info") -> None:
    """Serve until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    uvicorn.Server(_config(settings, host, port, log_level)).run()


class SandboxServer:
    """A sandbox served from a daemon thread; `url` is known once `start()` returns."""

    def __init__(self, settings: SandboxSettings, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings = settings
        self.host, self.port = host, port
        self._server = uvicorn.Server(_config(settings, host, port, "warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> SandboxServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
