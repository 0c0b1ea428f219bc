"""The batch changes part of the admin surface, guarded by the site token like the rest.

| method | path | does |
| --- | --- | --- |
| POST | `/.sandbox/batches` | create a batch spec (body below): workspaces, jobs |
| POST | `/.sandbox/batches/resolve` | `{"spec": YAML}`: its workspaces, creating nothing |
| GET | `/.sandbox/batches/{id}` | the batch spec's workspaces, job states and changeset specs |
| GET | `/.sandbox/batches/{id}/summary` | counts only (workspaces by state/cache, changesets) |
| POST | `/.sandbox/batches/{id}/apply` | mark the batch spec applied (`src batch apply`) |
| PUT | `/.sandbox/secrets/{name}` | store an executor secret: `{"value": "…"}` |
| GET | `/.sandbox/secrets` | secret names (never values) |
| POST | `/.sandbox/repos/samples` | generate and host the sample repositories |

The create body: `{"spec": YAML, "namespace": "", "secrets": {NAME: value}, "clear_cache":
false, "step_timeout": SECONDS}`. An invalid spec is 422 `{"error": "<src-cli text>",
"errors": [...]}`; a spec that cannot be applied is 400 `{"error": "…"}`, with `"kind":
"resolution"` when the workspaces cannot be resolved (unknown repository, a query Sourcegraph
would refuse).
`summary` is two aggregate queries whatever the spec's size: what `batch apply`/`preview`
poll while they wait, instead of the full status (issue 13). This API is ours, not
Sourcegraph's.
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


def _spec_body(data: dict[str, Any]) -> str | Response:
    raw = data.get("spec")
    return raw if isinstance(raw, str) else _bad('expected {"spec": "<yaml>", ...}')


async def _apply(request: Request) -> Response:
    if denied := check_executor_token(request, get_state(request).settings.token):
        return denied
    data = await _body(request)
    if isinstance(data, Response):
        return data
    raw = _spec_body(data)
    namespace, secrets = data.get("namespace", ""), data.get("secrets", {})
    clear_cache, timeout = data.get("clear_cache", False), data.get("step_timeout")
    if isinstance(raw, Response):
        return raw
    if (
        not isinstance(namespace, str)
        or not isinstance(secrets, dict)
        or not isinstance(clear_cache, bool)
        or not (timeout is None or (isinstance(timeout, int | float) and timeout > 0))
    ):
        return _bad(
            'expected {"spec": "<yaml>", "namespace": "...", "secrets": {...},'
            ' "clear_cache": false, "step_timeout": <seconds>}'
        )
    service = _service(request)
    try:
        status = await asyncio.to_thread(
            service.apply,
            raw,
            namespace=namespace,
            secrets={k: str(v) for k, v in secrets.items()},
            clear_cache=clear_cache,
            step_timeout=None if timeout is None else float(timeout),
        )
    except BatchSpecValidationError as err:
        return _bad(str(err), 422, errors=err.errors)
    except WorkspaceResolutionError as err:
        return _bad(str(err), kind="resolution")
    except ApplyError as err:
        return _bad(str(err))
    return json_response(status, 201)


async def _resolve(request: Request) -> Response:
    if denied := check_executor_token(request, get_state(request).settings.token):
        return denied
    data = await _body(request)
    if isinstance(data, Response):
        return data
    raw = _spec_body(data)
    if isinstance(raw, Response):
        return raw
    try:
        resolved = await asyncio.to_thread(_service(request).resolve, raw)
    except BatchSpecValidationError as err:
        return _bad(str(err), 422, errors=err.errors)
    except WorkspaceResolutionError as err:
        return _bad(str(err), kind="resolution")
    except ApplyError as err:
        return _bad(str(err))
    workspaces = [
        {
            "repository": {
                "id": ws.repo.graphql_id,
                "name": ws.repo.name,
                "url": "/" + ws.repo.name,
            },
            "branch": {"name": ws.branch, "target": {"oid": ws.commit}},
            "path": ws.path,
            "onlyFetchWorkspace": ws.only_fetch_workspace,
            "searchResultPaths": list(ws.file_matches),
        }
        for ws in resolved
    ]
    return json_response({"workspaces": workspaces})


def _spec_id(request: Request) -> int | None:
    text: str = request.path_params["id"]
    return int(text) if text.isdigit() else None


async def _status(request: Request) -> Response:
    if denied := check_executor_token(request, get_state(request).settings.token):
        return denied
    spec_id = _spec_id(request)
    status = None if spec_id is None else _service(request).status(spec_id)
    return _bad("no such batch spec", 404) if status is None else json_response(status)


async def _summary(request: Request) -> Response:
    if denied := check_executor_token(request, get_state(request).settings.token):
        return denied
    spec_id = _spec_id(request)
    summary = None if spec_id is None else _service(request).summary(spec_id)
    return _bad("no such batch spec", 404) if summary is None else json_response(summary)


async def _mark_applied(request: Request) -> Response:
    if denied := check_executor_token(request, get_state(request).settings.token):
        return denied
    spec_id = _spec_id(request)
    service = _service(request)
    if spec_id is None or not service.store.mark_applied(spec_id):
        return _bad("no such batch spec", 404)
    return json_response(service.summary(spec_id))


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
        Route(f"{p}/batches/resolve", _resolve, methods=["POST"]),
        Route(f"{p}/batches/{{id}}", _status, methods=["GET"]),
        Route(f"{p}/batches/{{id}}/summary", _summary, methods=["GET"]),
        Route(f"{p}/batches/{{id}}/apply", _mark_applied, methods=["POST"]),
        Route(f"{p}/secrets", _list_secrets, methods=["GET"]),
        Route(f"{p}/secrets/{{name}}", _set_secret, methods=["PUT"]),
        Route(f"{p}/repos/samples", _samples, methods=["POST"]),
    ]
