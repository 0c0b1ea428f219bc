"""The sandbox's admin surface under `/.sandbox/`, guarded by the site token (`token-executor`).

| method | path | does |
| --- | --- | --- |
| POST | `/.sandbox/repos` | host a local repository: `{"name", "path", "mode"}` |
| GET | `/.sandbox/repos` | `{name: path}` of every hosted repository |
| POST | `/.sandbox/jobs[?queue=Q]` | enqueue a Job wire body (id and token are assigned) |
| GET | `/.sandbox/jobs[?queue=Q&state=S]` | list jobs (without logs) |
| GET | `/.sandbox/jobs/{id}` | one job with its payload and execution logs |
| POST | `/.sandbox/jobs/{id}/cancel` | cancel (§8.3) |
| PUT | `/.sandbox/files/{bucket}/{key}` | store a file for the files API |
| GET | `/.sandbox/executors` | executors seen by heartbeat |

`mode` is `clone` (default: `git clone --mirror` into the data directory) or `register` (serve
the path as it is). Errors are `{"error": "…"}` with 400/404/500.
This API is ours, not Sourcegraph's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from executor.sandbox.auth import check_executor_token
from executor.sandbox.compat import json_response
from executor.sandbox.state import QUEUE_NAMES, get_state
from executor.sandbox.store import STATES, JobRecord
from executor.wire import Job, format_go_time

__all__ = ["admin_routes", "job_summary", "valid_repo_name"]

_REPO_SEGMENT = re.compile(r"[A-Za-z0-9._@+-]+")


def valid_repo_name(name: str) -> bool:
    """A repository name is `/`-separated plain segments: no `..`, no empty parts."""
    segments = name.split("/")
    return bool(name) and all(_REPO_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments)


def _bad(message: str, status: int = 400) -> Response:
    return json_response({"error": message}, status)


def _time(value: float | None) -> str | None:
    if value is None:
        return None
    return format_go_time(dt.datetime.fromtimestamp(value, tz=dt.UTC))


def job_summary(record: JobRecord, *, with_logs: bool = False) -> dict[str, Any]:
    """A job as the admin API shows it (times as RFC 3339 text)."""
    out = record.to_dict()
    for key in ("queued_at", "started_at", "last_heartbeat_at", "finished_at"):
        out[key] = _time(out[key])
    if not with_logs:
        out.pop("execution_logs")
        out.pop("payload")
    return out


async def _json_object(request: Request) -> dict[str, Any] | Response:
    try:
        data = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return _bad(f"body is not JSON: {err}")
    if not isinstance(data, dict):
        return _bad("body must be a JSON object")
    return data


def _guard(request: Request) -> Response | None:
    return check_executor_token(request, get_state(request).settings.token)


async def _add_repo(request: Request) -> Response:
    if denied := _guard(request):
        return denied
    data = await _json_object(request)
    if isinstance(data, Response):
        return data
    name, path, mode = data.get("name"), data.get("path"), data.get("mode", "clone")
    if not isinstance(name, str) or not valid_repo_name(name):
        return _bad(f"invalid repository name: {name!r}")
    if not isinstance(path, str) or not Path(path).exists():
        return _bad(f"no such local path: {path!r}")
    if mode not in ("clone", "register"):
        return _bad("mode must be 'clone' or 'register'")
    state = get_state(request)
    source = Path(path).resolve()
    if mode == "register":
        hosted = source
    else:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        hosted = state.settings.repos_dir / f"{safe}-{digest}.git"
        if hosted.exists():
            shutil.rmtree(hosted)
        proc = await asyncio.create_subprocess_exec(
            "git",
            "clone",
            "--mirror",
            "--quiet",
            str(source),
            str(hosted),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            return _bad(f"git clone failed: {err.decode(errors='replace').strip()}", 500)
    state.store.add_repo(name, str(hosted))
    return json_response({"name": name, "path": str(hosted)}, 201)


async def _list_repos(request: Request) -> Response:
    if denied := _guard(request):
        return denied
    return json_response(get_state(request).store.list_repos())


async def _enqueue(request: Request) -> Response:
    if denied := _guard(request):
        return denied
    data = await _json_object(request)
    if isinstance(data, Response):
        return data
    queue = request.query_params.get("queue") or data.get("queue") or "batches"
    if queue not in QUEUE_NAMES:
        return _bad(f"unknown queue {queue!r}; queues are {', '.join(QUEUE_NAMES)}")
    try:
        job = Job.model_validate({**data, "id": 0, "token": "", "queue": ""})
    except ValidationError as err:
        return _bad(f"not a job: {err}")
    job.version = 2  # store file content as base64 so any bytes survive
    payload = job.to_wire()
    for key in ("id", "token"):
        payload.pop(key, None)
    store = get_state(request).store
    job_id = store.enqueue(queue, payload, job.repository_name)
    return json_response({"id": job_id, "queue": queue}, 201)


async def _list_jobs(request: Request) -> Response:
    if denied := _guard(request):
        return denied
    queue = request.query_params.get("queue")
    state = request.query_params.get("state")
    if state and state not in STATES:
        return _bad(f"unknown state {state!r}")
    records = get_state(request).store.list_jobs(queue=queue, state=state)
    return json_response([job_summary(r) for r in records])


def _job_id(request: Request) -> int | None:
    text: str = request.path_params["id"]
    return int(text) if text.isdigit() else None


async def _get_job(request: Request) -> Response:
    if denied := _guard(request):
        return denied
    job_id = _job_id(request)
    record = None if job_id is None else get_state(request).store.get_job(job_id)
    if record is None:
        return _bad("no such job", 404)
    return json_response(job_summary(record, with_logs=True))


async def _cancel(request: Request) -> Response:
    if denied := _guard(request):
        return denied
    job_id = _job_id(request)
    state = None if job_id is None else get_state(request).store.cancel(job_id)
    if state is None:
        return _bad("no such job", 404)
    return json_response({"id": job_id, "state": state})


async def _put_file(request: Request) -> Response:
    if denied := _guard(request):
        return denied
    bucket, key = request.path_params["bucket"], request.path_params["key"]
    content = await request.body()
    get_state(request).store.put_file(bucket, key, content)
    return json_response({"bucket": bucket, "key": key, "size": len(content)}, 201)


async def _executors(request: Request) -> Response:
    if denied := _guard(request):
        return denied
    rows = get_state(request).store.list_executors()
    return json_response([{**asdict(r), "last_seen_at": _time(r.last_seen_at)} for r in rows])


def admin_routes() -> list[Route]:
    """Every admin route, relative to the site root."""
    p = "/.sandbox"
    return [
        Route(f"{p}/repos", _add_repo, methods=["POST"]),
        Route(f"{p}/repos", _list_repos, methods=["GET"]),
        Route(f"{p}/jobs", _enqueue, methods=["POST"]),
        Route(f"{p}/jobs", _list_jobs, methods=["GET"]),
        Route(f"{p}/jobs/{{id}}", _get_job, methods=["GET"]),
        Route(f"{p}/jobs/{{id}}/cancel", _cancel, methods=["POST"]),
        Route(f"{p}/files/{{bucket}}/{{key:path}}", _put_file, methods=["PUT"]),
        Route(f"{p}/executors", _executors, methods=["GET"]),
    ]
