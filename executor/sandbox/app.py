"""The sandbox ASGI app: every route of §8.1 plus the admin surface, and the stalled-job resetter.

`create_app(settings)` opens the store under `settings.data_dir` and returns a Starlette app;
uvicorn serves it (`executor.sandbox.server`). Routes:
- `/.executors/queue/…` (`executor.sandbox.queue`), `/.executors/git/…` and
  `/.executors/files/batch-changes/…` (`executor.sandbox.gitproxy`);
- `GET /.executors/test/auth` → `ok` (executor token);
- `/.executors/lsif/upload`, `/.executors/scip/upload` and `/.sandbox/codeintel/…`
  (`executor.sandbox.codeintel`);
- `GET /.api/src-cli/version` → `{"version": "…"}` (public, as on a real instance);
- `/.sandbox/…` (`executor.sandbox.admin`; batch changes: `executor.sandbox.batch_routes`);
- `/sandbox/ui/…`: the read-only web page (`executor.sandbox.web`).

The resetter runs every `resetter_interval` seconds for the app's lifetime (§8.2 ResetStalled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from executor.sandbox.admin import admin_routes
from executor.sandbox.auth import check_executor_token
from executor.sandbox.batch_routes import batch_routes, install_batches
from executor.sandbox.codeintel import CodeintelStore, codeintel_routes
from executor.sandbox.compat import json_response
from executor.sandbox.gitproxy import git_routes
from executor.sandbox.queue import queue_routes
from executor.sandbox.state import SandboxSettings, SandboxState, get_state
from executor.sandbox.web import web_routes

__all__ = ["create_app"]

log = logging.getLogger("executor.sandbox")


async def _test_auth(request: Request) -> Response:
    if denied := check_executor_token(request, get_state(request).settings.token):
        return denied
    return PlainTextResponse("ok")


async def _src_cli_version(request: Request) -> Response:
    return json_response({"version": get_state(request).settings.src_cli_version})


async def _resetter(state: SandboxState) -> None:
    """Requeue or fail stalled jobs, forever (cancelled with the app)."""
    while True:
        await asyncio.sleep(state.settings.resetter_interval)
        try:
            reset, failed = state.store.reset_stalled()
        except Exception:  # the resetter must outlive a busy or broken database
            log.exception("resetting stalled jobs failed")
            continue
        if reset or failed:
            log.info("stalled jobs: reset %s, failed %s", reset, failed)


def create_app(settings: SandboxSettings) -> Starlette:
    """A ready-to-serve sandbox over the store in `settings.data_dir`."""
    state = SandboxState.open(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(_resetter(state))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    routes = [
        *queue_routes(),
        *git_routes(),
        *codeintel_routes(),
        Route("/.executors/test/auth", _test_auth, methods=["GET"]),
        Route("/.api/src-cli/version", _src_cli_version, methods=["GET"]),
        *admin_routes(),
        *batch_routes(),
        *web_routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = state
    app.state.batches = install_batches(state)
    app.state.codeintel = CodeintelStore(settings.db_path, settings.data_dir)
    return app
