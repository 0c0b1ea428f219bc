"""The frontend's two auth middlewares (`executorqueue/auth.go`), check for check.

- `check_executor_token`: routes called with the shared access token (`token-executor …`).
- `check_job_token`: routes called with a per-job token (`Bearer …`) plus the job ID and
  executor name headers; the site token is accepted too, as Sourcegraph accepts it.

Each returns `None` when the request may proceed, or the exact refusal (status and body, in
the order of the table). Knows the store's token and executor lookups; no routes.
"""

from __future__ import annotations

import hmac
import re
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from executor.sandbox.compat import http_error
from executor.sandbox.store import SandboxStore

__all__ = ["JobRoute", "check_executor_token", "check_job_token", "site_token_matches"]

JobRoute = Literal["git", "queue", "files"]

_EXECUTOR_FORM = (
    "HTTP Authorization request header value must be of the following form: "
    "'token-executor \"TOKEN\"'"
)
_EXECUTOR_SCHEME = (
    'unrecognized HTTP Authorization request header scheme (supported values: "token-executor")'
)
_EXECUTOR_NO_TOKEN = (
    "no token value in the HTTP Authorization request header (recommended) "
    "or basic auth (deprecated)"
)
_JOB_FORM = (
    "HTTP Authorization request header value must be of the following form: "
    "'Bearer \"TOKEN\"' or 'token-executor TOKEN'"
)
_JOB_SCHEME = (
    "unrecognized HTTP Authorization request header scheme "
    '(supported values: "Bearer", "token-executor")'
)
_JOB_NO_TOKEN = "no token value in the HTTP Authorization request header"
_GO_ATOI = re.compile(r"[+-]?[0-9]+")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def site_token_matches(token: str, site_token: str) -> bool:
    """Whether `token` is the site token, compared in constant time (the web page's cookie)."""
    return _same(token, site_token)


def check_executor_token(request: Request, site_token: str) -> Response | None:
    """`executorAuthMiddleware`: the shared token, compared in constant time."""
    if not site_token:
        return http_error("Executors are not configured on this instance", 500)
    token = ""
    value = request.headers.get("authorization", "")
    if value:
        parts = value.split(" ")
        if len(parts) != 2:
            return http_error(_EXECUTOR_FORM, 401)
        if parts[0] != "token-executor":
            return http_error(_EXECUTOR_SCHEME, 401)
        token = parts[1]
    if not token:
        return http_error(_EXECUTOR_NO_TOKEN, 401)
    if not _same(token, site_token):
        return Response(status_code=401)
    return None


def check_job_token(
    request: Request,
    store: SandboxStore,
    site_token: str,
    route: JobRoute,
    *,
    queue: str = "",
    repo: str = "",
) -> Response | None:
    """`jobAuthMiddleware` for one route kind; `queue`/`repo` are what the URL names."""
    value = request.headers.get("authorization", "")
    if not value:
        return http_error(_JOB_NO_TOKEN, 401)
    parts = value.split(" ")
    if len(parts) != 2:
        return http_error(_JOB_FORM, 401)
    scheme, token = parts
    if scheme not in ("Bearer", "token-executor"):
        return http_error(_JOB_SCHEME, 401)
    if not token:
        return http_error(_JOB_NO_TOKEN, 401)
    if scheme == "token-executor":
        if site_token and _same(token, site_token):
            return None
        return Response(status_code=403)

    job_id_text = request.headers.get("x-sourcegraph-job-id", "")
    if not job_id_text:
        return http_error("job ID not provided in header 'X-Sourcegraph-Job-ID'", 400)
    if not _GO_ATOI.fullmatch(job_id_text):
        return http_error(
            f'failed to parse Job ID: strconv.Atoi: parsing "{job_id_text}": invalid syntax', 400
        )
    job_id = int(job_id_text)
    executor_name = request.headers.get("x-sourcegraph-executor-name", "")
    if not executor_name:
        return http_error("worker hostname cannot be empty", 400)

    job_token = store.get_token(token)
    if job_token is None:
        return http_error("invalid token", 401)
    if job_token.job_id != job_id:
        return http_error("invalid token", 403)
    if route == "git":
        if job_token.repo != repo:
            return http_error("invalid token", 403)
    else:
        expected_queue = "batches" if route == "files" else queue
        if job_token.queue != expected_queue:
            return http_error("invalid token", 403)
    if not store.executor_exists(executor_name):
        return http_error("invalid token", 401)
    return None
