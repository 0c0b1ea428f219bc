"""A read-only web page over the sandbox, under `/sandbox/ui/`, for anyone with the site token.

Same port and same token as the admin routes (`executor.sandbox.admin`): a request is let in
with `Authorization: token-executor TOKEN` (checked by `check_executor_token`) or with the
HttpOnly, SameSite=Strict cookie the login form sets after checking the token the same way.
Without the token, or with a wrong one, every page answers 401 with the login form and nothing
else. The one write is the cancel button (POST), the sandbox's own cancel (§8.3); a cross-origin
POST is refused.

Pages are rendered on the server with Jinja2 (autoescaping on); the job page polls
`/sandbox/ui/jobs/{id}/data` every second while the job runs. Log output and diffs longer than
`DISPLAY_LIMIT` bytes are cut for display, with a note; each log entry's full output is a plain
text download (`/sandbox/ui/jobs/{id}/logs/{n}`, n from 1). A batch spec page shows its counts
and `WORKSPACES_PER_PAGE` workspaces and `CHANGESETS_PER_PAGE` changeset specs at a time
(`?page=N`, `?cpage=N`), so a spec over thousands of repositories stays a small page. This
page is ours, not Sourcegraph's.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from executor.sandbox.admin import job_summary
from executor.sandbox.auth import check_executor_token, site_token_matches
from executor.sandbox.batches import BatchService
from executor.sandbox.compat import json_response
from executor.sandbox.state import QUEUE_NAMES, get_state
from executor.sandbox.store import STATES, JobRecord

__all__ = ["CHANGESETS_PER_PAGE", "DISPLAY_LIMIT", "WORKSPACES_PER_PAGE", "web_routes"]

PREFIX = "/sandbox/ui"
COOKIE = "sandbox_ui_token"
DISPLAY_LIMIT = 256 * 1024
MAX_JOBS_SHOWN = 500
WORKSPACES_PER_PAGE = 100
CHANGESETS_PER_PAGE = 20
TERMINAL = ("completed", "failed", "canceled")

_env = Environment(
    loader=PackageLoader("executor.sandbox", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def _render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(name).render(prefix=PREFIX, **context)
    return HTMLResponse(html, status_code=status)


def _denied(request: Request) -> Response | None:
    """None when the request carries the site token (header or cookie), else the login page."""
    token = get_state(request).settings.token
    if request.headers.get("authorization"):
        if check_executor_token(request, token) is None:
            return None
        return _render("login.html", 401, problem="The token in the Authorization header is wrong.")
    cookie = request.cookies.get(COOKIE)
    if cookie is None:
        return _render("login.html", 401, problem="This page needs the site token.")
    if token and site_token_matches(cookie, token):
        return None
    return _render("login.html", 401, problem="The token is wrong.")


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host", "")


def _when(value: float | None) -> str:
    if value is None:
        return ""
    return dt.datetime.fromtimestamp(value, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _took(start: float | None, end: float | None) -> str:
    return "" if start is None or end is None else f"{end - start:.1f}s"


def _clip(text: str) -> tuple[str, str]:
    """The text to show (its last `DISPLAY_LIMIT` bytes) and a note when it was cut."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= DISPLAY_LIMIT:
        return text, ""
    shown = raw[-DISPLAY_LIMIT:].decode("utf-8", "ignore")
    note = f"Output is {len(raw):,} bytes; only the last {DISPLAY_LIMIT:,} bytes are shown here."
    return shown, note


def _entries(record: JobRecord) -> list[dict[str, Any]]:
    out = []
    for number, entry in enumerate(record.execution_logs, start=1):
        text, note = _clip(str(entry.get("out") or ""))
        command = entry.get("command") or []
        out.append(
            {
                "id": number,
                "key": str(entry.get("key", "")),
                "command": " ".join(str(c) for c in command),
                "start_time": str(entry.get("startTime", "")),
                "exit_code": entry.get("exitCode"),
                "duration_ms": entry.get("durationMs"),
                "out": text,
                "note": note,
                "raw_url": f"{PREFIX}/jobs/{record.id}/logs/{number}",
            }
        )
    return out


def _job_data(record: JobRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "state": record.state,
        "cancel_requested": record.cancel,
        "failure_message": record.failure_message or "",
        "finished": record.state in TERMINAL,
        "entries": _entries(record),
    }


def _job_row(record: JobRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "queue": record.queue,
        "state": record.state,
        "repository": record.repository,
        "executor": record.worker_hostname,
        "queued_at": _when(record.queued_at),
        "started_at": _when(record.started_at),
        "finished_at": _when(record.finished_at),
        "took": _took(record.started_at, record.finished_at),
        "failure_message": record.failure_message or "",
    }


def _service(request: Request) -> BatchService:
    service: BatchService = request.app.state.batches
    return service


async def _index(request: Request) -> Response:
    if denied := _denied(request):
        return denied
    store = get_state(request).store
    executors = [{**vars(e), "last_seen": _when(e.last_seen_at)} for e in store.list_executors()]
    by_state, running, newest = store.job_overview(MAX_JOBS_SHOWN)
    counts = {q: dict.fromkeys(STATES, 0) for q in QUEUE_NAMES}
    for (queue, state), count in by_state.items():
        counts.setdefault(queue, dict.fromkeys(STATES, 0))[state] = count
    shown = [_job_row(r) for r in newest]
    return _render(
        "index.html",
        executors=executors,
        running=running,
        counts=counts,
        states=STATES,
        jobs=shown,
        hidden=sum(by_state.values()) - len(shown),
        batch_specs=_service(request).store.list_batch_specs(),
        uploads=[
            {**u.to_dict(), "uploaded": _when(u.uploaded_at)}
            for u in request.app.state.codeintel.list_uploads(newest=MAX_JOBS_SHOWN)
        ],
    )


def _record(request: Request) -> JobRecord | None:
    text: str = request.path_params["id"]
    return get_state(request).store.get_job(int(text)) if text.isdigit() else None


async def _job(request: Request) -> Response:
    if denied := _denied(request):
        return denied
    record = _record(request)
    if record is None:
        return _render("missing.html", 404, what="job")
    return _render("job.html", job=_job_row(record), data=_job_data(record))


async def _job_json(request: Request) -> Response:
    if denied := _denied(request):
        return denied
    record = _record(request)
    if record is None:
        return json_response({"error": "no such job"}, 404)
    return json_response({**_job_data(record), "job": job_summary(record)})


async def _raw_log(request: Request) -> Response:
    """One log entry's whole output as a text download."""
    if denied := _denied(request):
        return denied
    record, number = _record(request), str(request.path_params["n"])
    entries = record.execution_logs if record is not None else []
    if record is None or not number.isdigit() or not 1 <= int(number) <= len(entries):
        return _render("missing.html", 404, what="log entry")
    out = str(entries[int(number) - 1].get("out") or "")
    name = f"job-{record.id}-entry-{number}.log"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return PlainTextResponse(out, headers=headers)


async def _cancel(request: Request) -> Response:
    if denied := _denied(request):
        return denied
    if not _same_origin(request):
        return _render("missing.html", 403, what="cross-origin request")
    text: str = request.path_params["id"]
    state = get_state(request).store.cancel(int(text)) if text.isdigit() else None
    if state is None:
        return _render("missing.html", 404, what="job")
    return RedirectResponse(f"{PREFIX}/jobs/{text}", status_code=303)


def _diff_lines(diff: str) -> list[tuple[str, str]]:
    kinds = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---", "diff --git", "index ")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = ""
        kinds.append((kind, line))
    return kinds


def _page_number(request: Request, name: str) -> int:
    text = request.query_params.get(name, "1")
    return max(int(text), 1) if text.isdigit() else 1


def _pages(page: int, per_page: int, total: int) -> dict[str, int]:
    last = max((total + per_page - 1) // per_page, 1)
    page = min(page, last)
    return {"page": page, "last": last, "first_row": (page - 1) * per_page, "total": total}


async def _batch(request: Request) -> Response:
    if denied := _denied(request):
        return denied
    text: str = request.path_params["id"]
    service = _service(request)
    summary = service.summary(int(text)) if text.isdigit() else None
    if summary is None:
        return _render("missing.html", 404, what="batch spec")
    spec_id = summary["id"]
    total = sum(summary["states"].values())
    wpages = _pages(_page_number(request, "page"), WORKSPACES_PER_PAGE, total)
    cpages = _pages(_page_number(request, "cpage"), CHANGESETS_PER_PAGE, summary["changeset_specs"])
    status = service.status(spec_id, WORKSPACES_PER_PAGE, wpages["first_row"]) or {}
    changesets = []
    rows = service.store.changeset_specs(spec_id, CHANGESETS_PER_PAGE, cpages["first_row"])
    for cid, _, repository, spec in rows:
        commits = spec.get("commits") or [{}]
        raw = base64.b64decode(commits[0].get("diff", "")).decode("utf-8", "replace")
        diff, note = _clip(raw)
        changesets.append(
            {
                "id": cid,
                "repository": repository,
                "title": spec.get("title", ""),
                "branch": str(spec.get("headRef", "")).removeprefix("refs/heads/"),
                "base": spec.get("baseRef", ""),
                "message": commits[0].get("message", ""),
                "lines": _diff_lines(diff),
                "note": note,
            }
        )
    return _render(
        "batch.html",
        batch=status,
        summary=summary,
        wpages=wpages,
        cpages=cpages,
        changesets=changesets,
    )


async def _login_form(request: Request) -> Response:
    return _render("login.html", problem="")


async def _login(request: Request) -> Response:
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    given = (fields.get("token") or [""])[0]
    token = get_state(request).settings.token
    if not token or not site_token_matches(given, token):
        return _render("login.html", 401, problem="The token is wrong.")
    response = RedirectResponse(f"{PREFIX}/", status_code=303)
    response.set_cookie(COOKIE, given, httponly=True, samesite="strict", path=PREFIX)
    return response


def web_routes() -> list[Route]:
    """Every page route, relative to the site root."""
    return [
        Route(f"{PREFIX}/", _index, methods=["GET"]),
        Route(f"{PREFIX}/login", _login_form, methods=["GET"]),
        Route(f"{PREFIX}/login", _login, methods=["POST"]),
        Route(f"{PREFIX}/jobs/{{id}}", _job, methods=["GET"]),
        Route(f"{PREFIX}/jobs/{{id}}/data", _job_json, methods=["GET"]),
        Route(f"{PREFIX}/jobs/{{id}}/cancel", _cancel, methods=["POST"]),
        Route(f"{PREFIX}/jobs/{{id}}/logs/{{n}}", _raw_log, methods=["GET"]),
        Route(f"{PREFIX}/batches/{{id}}", _batch, methods=["GET"]),
    ]
