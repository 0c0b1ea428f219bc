"""The batch changes part of the admin surface, guarded by the site token like the rest.

| method | path | does |
| --- | --- | --- |
| POST | `/.sandbox/batches` | apply `{"spec": YAML, "namespace", "secrets": {NAME: value}}` |
| GET | `/.sandbox/batches/{id}` | the batch spec's workspaces, job states and changeset specs |
| PUT | `/.sandbox/secrets/{name}` | store an executor secret: `{"value": "…"}` |
| GET | `/.sandbox/secrets` | secret names (never values) |
| POST | `/.sandbox/repos/samples` | generate and host the sample repositories |

An invalid spec is 422 `{"error": "<src-cli text>", "errors": [...]}`; a spec that cannot be
applied (unknown repository, missing secret, unsupported query) is 400 `{"error": "…"}`.
This API is ours, not Sourcegraph's.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from executor.sandbox.auth import check_executor_token
from executor.sandbox.batches import ApplyError, BatchService, BatchSpecValidationError
from executor.sandbox.compat import json_response
from executor.sandbox.samples import create_sample_repos
from executor.sandbox.state import SandboxState, get_state
from executor.sandbox.workspaces import WorkspaceResolutionError

__all__ = ["batch_routes", "install_batches"]

_SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def install_batches(state: SandboxState) -> BatchService:
    """Create the batch service over the sandbox database and hook it into mark calls."""
    settings = state.settings
    service = BatchService(
        str(settings.db_path),
        native_execution=settings.native_server_side_execution,
        helper_image=settings.batcheshelper_image,
    )
    state.store.add_finish_hook(service.on_finish)
    return service


def _service(request: Request) -> BatchService:
    service: BatchService = request.app.state.batches
    return service


def _bad(message: str, status: int = 400, **extra: Any) -> Response:
    return json_response({"error": message, **extra}, status)


async def _body(request: Request) -> dict[str, Any] | Response:
    try:
        data = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return _bad(f"body is not JSON: {err}")
    return data if isinstance(data, dict) else _bad("body must be a JSON object")


async def _apply(request: Request) -> Response:
    if denied := check_executor_token(request, get_state(request).settings.token):
        return denied
    data = await _body(request)
    if isinstance(data, Response):
        return data
    raw, namespace, secrets = data.get("spec"), data.get("namespace", ""), data.get("secrets", {})
    if not isinstance(raw, str) or not isinstance(namespace, str) or not isinstance(secrets, dict):
        return _bad('expected {"spec": "<yaml>", "namespace": "...", "secrets": {...}}')
    service = _service(request)
    try:
        status = await asyncio.to_thread(
            service.apply, raw, namespace=namespace, secrets={k: str(v) for k, v in secrets.items()}
        )
    except BatchSpecValidationError as err:
        return _bad(str(err), 422, errors=err.errors)
    except (ApplyError, WorkspaceResolutionError) as err:
        return _bad(str(err))
    return json_response(status, 201)


async def _status(request: Request) -> Response:
    if denied := check_executor_token(request, get_state(request).settings.token):
        return denied
    text: str = request.path_params["id"]
    status = _service(request).status(int(text)) if text.isdigit() else None
    return _bad("no such batch spec", 404) if status is None else json_response(status)


async def _set_secret(request: Request) -> Response:
    if denied := check_executor_token(request, get_state(request).settings.token):
        return denied
    name: str = request.path_params["name"]
    data = await _body(request)
    if isinstance(data, Response):
        return data
    if not _SECRET_NAME.fullmatch(name) or not isinstance(data.get("value"), str):
        return _bad('expected PUT /.sandbox/secrets/NAME with {"value": "..."}')
    _service(request).store.set_secret(name, data["value"])
    return json_response({"name": name}, 201)


async def _list_secrets(request: Request) -> Response:
    if denied := check_executor_token(request, get_state(request).settings.token):
        return denied
    return json_response(sorted(_service(request).store.secrets()))


async def _samples(request: Request) -> Response:
    state = get_state(request)
    if denied := check_executor_token(request, state.settings.token):
        return denied
    root = state.settings.data_dir / "samples"
    created = await asyncio.to_thread(create_sample_repos, root)
    for name, path in created.items():
        state.store.add_repo(name, str(path))
    return json_response({name: str(path) for name, path in created.items()}, 201)


def batch_routes() -> list[Route]:
    """Every batch route, relative to the site root."""
    p = "/.sandbox"
    return [
        Route(f"{p}/batches", _apply, methods=["POST"]),
        Route(f"{p}/batches/{{id}}", _status, methods=["GET"]),
        Route(f"{p}/secrets", _list_secrets, methods=["GET"]),
        Route(f"{p}/secrets/{{name}}", _set_secret, methods=["PUT"]),
        Route(f"{p}/repos/samples", _samples, methods=["POST"]),
    ]
