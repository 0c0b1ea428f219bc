"""The queue routes under `/.executors/queue/` (Sourcegraph's `executorqueue/handler`).

Single-queue: `/{queue}/dequeue`, `/{queue}/heartbeat` (executor token) and
`/{queue}/addExecutionLogEntry|updateExecutionLogEntry|markComplete|markErrored|markFailed`
(job token). Multi-queue: `/dequeue` and `/heartbeat` (§8.4).

Each handler behaves like the frontend's `wrapHandler`: a body that does not decode is
`400 Failed to unmarshal payload: …` (text), a handler error is `500 {"error":"…"}`, a 204 has
no body. Unknown queue names in the path are 404, as gorilla/mux answers unregistered routes.

Knows the wire models, the auth checks and the store; never a filesystem path.
"""

from __future__ import annotations

import json
import random
from typing import Any, TypeVar

from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from executor.sandbox.auth import check_executor_token, check_job_token
from executor.sandbox.compat import (
    InvalidVersion,
    go_json_error,
    go_json_type,
    go_quote,
    http_error,
    json_response,
    supports_v2,
)
from executor.sandbox.state import QUEUE_NAMES, QUEUE_WEIGHTS, SandboxState, get_state
from executor.sandbox.store import DequeuedJob, ExecutorInfo
from executor.wire import (
    AddExecutionLogEntryRequest,
    DequeueRequest,
    HeartbeatRequest,
    Job,
    MarkCompleteRequest,
    MarkErroredRequest,
    UpdateExecutionLogEntryRequest,
    WireModel,
)

__all__ = ["decode_body", "job_for_executor", "queue_routes"]

M = TypeVar("M", bound=WireModel)

_ZERO_TIME = "0001-01-01T00:00:00Z"
# Go zero values for the fields our models require but Go's decoder would leave empty.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "DequeueRequest": {"executorName": ""},
    "HeartbeatRequest": {"executorName": ""},
    "AddExecutionLogEntryRequest": {
        "executorName": "",
        "jobId": 0,
        "key": "",
        "startTime": _ZERO_TIME,
    },
    "UpdateExecutionLogEntryRequest": {
        "executorName": "",
        "jobId": 0,
        "entryId": 0,
        "key": "",
        "startTime": _ZERO_TIME,
    },
    "MarkCompleteRequest": {"executorName": "", "jobId": 0},
    "MarkErroredRequest": {"executorName": "", "jobId": 0},
}
_UNKNOWN_JOB = {"error": "unknown job"}
_CLIENT_CLOSED = 499

#: The largest request body any route reads (ours; Sourcegraph's frontend sets none): a log
#: entry is capped at 16 MiB by default and JSON-escaping can grow it several times.
MAX_BODY = 128 << 20


def _too_large() -> Response:
    return http_error(f"request body too large: more than {MAX_BODY} bytes", 413)


def _body_names_another_job(request: Request, body_job_id: int) -> Response | None:
    """A job token authenticates the header's job (`check_job_token`); its body must name that
    same job. Sourcegraph's handlers (`cmd/frontend/internal/executorqueue/handler/handler.go`)
    act on the body's `jobId` without comparing it, so one job's token could append logs to or
    mark another job; here that is refused with the middleware's own answer (403 `invalid
    token`, `queuehandler.go` `validateJobRequest`). The executor-token fallback may act on any
    job, as there."""
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return None
    if request.headers.get("x-sourcegraph-job-id", "") != str(body_job_id):
        return http_error("invalid token", 403)
    return None


_NOT_FOUND = "404 page not found"


def _unmarshal_error(message: str) -> Response:
    return http_error(f"Failed to unmarshal payload: {message}", 400)


async def decode_body(request: Request, model: type[M]) -> M | Response:
    """Decode the body as Go's `json.NewDecoder(r.Body).Decode(&payload)` would.

    A caller that went away before its body was read (a killed executor whose request was
    still queued) gets nothing done: on a Go frontend its request context is cancelled and
    the handler's transaction with it. Answered 499 (nginx's "client closed request"), which
    nobody receives, instead of an exception and a 500 in the log.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return _too_large()
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:  # read no further: a body past the cap is never buffered whole
                return _too_large()
            chunks.append(chunk)
    except ClientDisconnect:
        return Response(status_code=_CLIENT_CLOSED)
    body = b"".join(chunks)
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _unmarshal_error(go_json_error(body))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        go_type = f"types.{model.__name__}"
        return _unmarshal_error(
            f"json: cannot unmarshal {go_json_type(data)} into Go value of type {go_type}"
        )
    # Go leaves a null or absent field at its zero value; our models want a value.
    data = {k: v for k, v in data.items() if v is not None}
    present = {str(k).lower() for k in data}
    for key, value in _DEFAULTS.get(model.__name__, {}).items():
        if key.lower() not in present:
            data[key] = value
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "?"
        got = go_json_type(first.get("input"))
        return _unmarshal_error(
            f"json: cannot unmarshal {got} into Go struct field {model.__name__}.{field}"
        )


def _error(message: str) -> Response:
    return json_response({"error": message}, 500)


def job_for_executor(dequeued: DequeuedJob, version: int, queue: str = "") -> dict[str, Any]:
    """The Job body an executor receives: stored payload, id, fresh token, payload version."""
    job = Job.model_validate({**dequeued.payload, "id": dequeued.id, "token": dequeued.token})
    job.version = version
    job.queue = queue
    return job.to_wire()


def _check_dequeue(req: DequeueRequest) -> tuple[int, Response | None]:
    if not req.executor_name:
        return 1, _error("worker hostname cannot be empty")
    try:
        return (2 if supports_v2(req.version) else 1), None
    except InvalidVersion as err:
        return 1, _error(f"failed to check version {go_quote(req.version)}: {err}")


def _executor_info(req: HeartbeatRequest, queue_names: list[str]) -> ExecutorInfo:
    return ExecutorInfo(
        hostname=req.executor_name,
        queue_names=queue_names,
        os=req.os,
        architecture=req.architecture,
        docker_version=req.docker_version,
        executor_version=req.executor_version,
        git_version=req.git_version,
        ignite_version=req.ignite_version,
        src_cli_version=req.src_cli_version,
        prometheus_metrics=req.prometheus_metrics,
    )


async def _dequeue(request: Request) -> Response:
    state = get_state(request)
    queue = request.path_params["queue"]
    if queue not in QUEUE_NAMES:
        return http_error(_NOT_FOUND, 404)
    if denied := check_executor_token(request, state.settings.token):
        return denied
    req = await decode_body(request, DequeueRequest)
    if isinstance(req, Response):
        return req
    version, failed = _check_dequeue(req)
    if failed:
        return failed
    dequeued = state.store.dequeue(queue, req.executor_name)
    if dequeued is None:
        return json_response(None, 204)
    return json_response(job_for_executor(dequeued, version))


async def _heartbeat(request: Request) -> Response:
    state = get_state(request)
    queue = request.path_params["queue"]
    if queue not in QUEUE_NAMES:
        return http_error(_NOT_FOUND, 404)
    if denied := check_executor_token(request, state.settings.token):
        return denied
    req = await decode_body(request, HeartbeatRequest)
    if isinstance(req, Response):
        return req
    if not req.executor_name:
        return _error("worker hostname cannot be empty")
    state.store.upsert_executor(_executor_info(req, [queue]))
    known, cancel = state.store.heartbeat(queue, req.executor_name, req.job_ids)
    return json_response({"knownIds": known, "cancelIds": cancel})


async def _multi_dequeue(request: Request) -> Response:
    state = get_state(request)
    if denied := check_executor_token(request, state.settings.token):
        return denied
    req = await decode_body(request, DequeueRequest)
    if isinstance(req, Response):
        return req
    version, failed = _check_dequeue(req)
    if failed:
        return failed
    if not req.queues:
        return json_response(None, 204)
    invalid = [q for q in req.queues if q not in QUEUE_NAMES]
    if invalid:
        return _error(
            f"Invalid queue name(s) '{', '.join(invalid)}' found. "
            f"Supported queue names are '{', '.join(QUEUE_NAMES)}'."
        )
    selected = _select_queue(state, req.queues)
    if selected is None:
        return json_response(None, 204)
    dequeued = state.store.dequeue(selected, req.executor_name)
    if dequeued is None:
        # Another executor took the last job between the count and the dequeue.
        return json_response(None, 204)
    return json_response(job_for_executor(dequeued, version, queue=selected))


def _select_queue(state: SandboxState, queues: list[str]) -> str | None:
    """Among the non-empty queues, one at random by weight (§8.4; no dequeue-limit window)."""
    candidates = [q for q in dict.fromkeys(queues) if state.store.queued_count(q) > 0]
    if not candidates:
        return None
    weights = [QUEUE_WEIGHTS.get(q, 1) for q in candidates]
    return random.choices(candidates, weights=weights)[0]


async def _multi_heartbeat(request: Request) -> Response:
    state = get_state(request)
    if denied := check_executor_token(request, state.settings.token):
        return denied
    req = await decode_body(request, HeartbeatRequest)
    if isinstance(req, Response):
        return req
    if not req.executor_name:
        return _error("worker hostname cannot be empty")
    if not req.queue_names:
        return _error("queueNames must be set for multi-queue heartbeats")
    invalid = [q.queue_name for q in req.job_ids_by_queue if q.queue_name not in req.queue_names]
    if invalid:
        return _error(
            f"unsupported queue name(s) '{', '.join(invalid)}' submitted in queueJobIds, "
            f"executor is configured for queues '{', '.join(req.queue_names)}'"
        )
    state.store.upsert_executor(_executor_info(req, req.queue_names))
    known_all: list[str] | None = None
    cancel_all: list[str] | None = None
    for group in req.job_ids_by_queue:
        if group.queue_name not in QUEUE_NAMES:
            continue
        known, cancel = state.store.heartbeat(group.queue_name, req.executor_name, group.job_ids)
        if known:
            known_all = [*(known_all or []), *(f"{i}-{group.queue_name}" for i in known)]
        if cancel:
            cancel_all = [*(cancel_all or []), *(f"{i}-{group.queue_name}" for i in cancel)]
    return json_response({"knownIds": known_all, "cancelIds": cancel_all})


async def _job_route(request: Request) -> Response:
    """The five job-token operations, dispatched on the last path segment."""
    state = get_state(request)
    queue, op = request.path_params["queue"], request.path_params["op"]
    if queue not in QUEUE_NAMES or op not in _JOB_OPS:
        return http_error(_NOT_FOUND, 404)
    if denied := check_job_token(request, state.store, state.settings.token, "queue", queue=queue):
        return denied
    store = state.store
    if op == "addExecutionLogEntry":
        add = await decode_body(request, AddExecutionLogEntryRequest)
        if isinstance(add, Response):
            return add
        if wrong := _body_names_another_job(request, add.job_id):
            return wrong
        entry_id = store.add_log_entry(queue, add.job_id, add.executor_name, add.entry.to_wire())
        return _error("unknown job") if entry_id is None else json_response(entry_id)
    if op == "updateExecutionLogEntry":
        upd = await decode_body(request, UpdateExecutionLogEntryRequest)
        if isinstance(upd, Response):
            return upd
        if wrong := _body_names_another_job(request, upd.job_id):
            return wrong
        ok = store.update_log_entry(
            queue, upd.job_id, upd.executor_name, upd.entry_id, upd.entry.to_wire()
        )
        return json_response(None, 204) if ok else json_response(_UNKNOWN_JOB, 500)
    if op == "markComplete":
        done = await decode_body(request, MarkCompleteRequest)
        if isinstance(done, Response):
            return done
        if wrong := _body_names_another_job(request, done.job_id):
            return wrong
        ok = store.mark_complete(queue, done.job_id, done.executor_name)
    else:
        bad = await decode_body(request, MarkErroredRequest)
        if isinstance(bad, Response):
            return bad
        if wrong := _body_names_another_job(request, bad.job_id):
            return wrong
        mark = store.mark_errored if op == "markErrored" else store.mark_failed
        ok = mark(queue, bad.job_id, bad.executor_name, bad.error_message)
    return json_response(None, 204) if ok else json_response(None, 404)


_JOB_OPS = (
    "addExecutionLogEntry",
    "updateExecutionLogEntry",
    "markComplete",
    "markErrored",
    "markFailed",
)


def queue_routes() -> list[Route]:
    """Every queue route, relative to the site root."""
    prefix = "/.executors/queue"
    return [
        Route(f"{prefix}/dequeue", _multi_dequeue, methods=["POST"]),
        Route(f"{prefix}/heartbeat", _multi_heartbeat, methods=["POST"]),
        Route(f"{prefix}/{{queue}}/dequeue", _dequeue, methods=["POST"]),
        Route(f"{prefix}/{{queue}}/heartbeat", _heartbeat, methods=["POST"]),
        Route(f"{prefix}/{{queue}}/{{op}}", _job_route, methods=["POST"]),
    ]
