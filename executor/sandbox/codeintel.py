"""Codeintel in the sandbox: the upload routes src-cli calls, and jobs of the codeintel shape.

Upload routes (`SPS:cmd/frontend/internal/executorqueue/queuehandler.go`): `POST
/.executors/lsif/upload`, `POST` and `HEAD /.executors/scip/upload` (the HEAD a no-op 200), all
behind the *executor-token* middleware (`token-executor <site token>`, the same checks as the
queue routes; no job token, no job-ID header: the upload step of a codeintel job carries
`SRC_HEADER_AUTHORIZATION=token-executor <token>`). The handler is Sourcegraph's
`internal/uploadhandler` (`upload_handler.go`, `upload_handler_state.go`,
`upload_handler_single.go`) with `internal/codeintel/uploads/transport/http/handler.go`'s
metadata: query `repository`, `commit` (must match `^[a-z0-9]{40}$`, else 400), `root`,
`indexerName`, `indexerVersion`, `associatedIndexId`; header `X-Uncompressed-Size` (an integer,
else 422). An unknown repository is 404 `unknown repository "<name>"`. Errors are `http.Error`
text `failed to enqueue payload: <reason>`. A single-payload upload is stored (the body as sent,
gzip by src-cli, in `<data_dir>/uploads/upload-<id>.lsif.gz`, one row in `codeintel_uploads`,
state `queued`) and answered 202 `{"id": "<id>"}` (a string: "older versions of src-cli
expect a string"). Not done here: multi-part uploads (`multiPart`, `uploadId`, `index`,
`done`): answered 400 saying so; and processing an upload (Sourcegraph's worker converts it).

Job shape (`SPS:cmd/frontend/internal/executorqueue/queues/codeintel/transform.go@699ef5b`,
spec §8.6): `pre-index.<i>` steps, an `indexer` step (commands = local steps + the shell-quoted
indexer arguments, dir = root), and an `upload` step running
`src code-intel upload -no-progress -repo … -commit … -root <root or .> -upload-route
/.executors/lsif/upload -file <outfile or dump.lsif> -associated-index-id <job id>` with
`SRC_ENDPOINT=<frontend URL>` and `SRC_HEADER_AUTHORIZATION=token-executor <token>`;
`shallowClone`, `fetchTags` for lsif-go indexers, the two redacted values. Difference: the
`VM_*` resource variables are computed at enqueue with Sourcegraph's defaults (12G memory, 20G
disk), not from the dequeue request. The frontend URL must be one the step containers reach
(the docker bridge's gateway, not loopback) and, with egress rules on, be allow-listed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from executor.sandbox.auth import check_executor_token
from executor.sandbox.compat import http_error, json_response
from executor.sandbox.db import Database
from executor.sandbox.state import get_state

__all__ = ["CodeintelStore", "Upload", "codeintel_job", "codeintel_routes"]

UPLOAD_ROUTE = "/.executors/lsif/upload"
#: Local images standing in for an indexer and for sourcegraph/src-cli (scripts/build-images.sh).
INDEXER_STANDIN = "executor-indexer-standin:latest"
SRC_CLI_STANDIN = "executor-src-cli-standin:latest"
DEFAULT_OUTFILE = "dump.lsif"
LSIF_GO_IMAGE = "sourcegraph/lsif-go"
#: Largest upload the sandbox stores (a test frontend, not a code-intel database).
MAX_UPLOAD = 256 << 20
_REVHASH = re.compile(r"^[a-z0-9]{40}$")


@dataclass(frozen=True)
class Upload:
    """One recorded upload, as `codeintel_uploads` holds it."""

    id: int
    route: str
    repository: str
    commit: str
    root: str
    indexer_name: str
    indexer_version: str
    associated_index_id: int
    uncompressed_size: int
    size: int
    sha256: str
    state: str
    uploaded_at: float

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class CodeintelStore(Database):
    """Uploads, and codeintel jobs (rows of the shared `jobs` table)."""

    def __init__(self, path: Path | str, data_dir: Path) -> None:
        super().__init__(path)
        self.uploads_dir = data_dir / "uploads"
        self.uploads_dir.mkdir(parents=True, exist_ok=True)

    def enqueue_index(self, repository: str, make_payload: Any) -> int:
        """Insert a codeintel job whose payload names its own ID (`-associated-index-id`)."""
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO jobs (queue, payload, repository, queued_at) VALUES (?, '{}', ?, ?)",
                ("codeintel", repository, self.clock()),
            )
            job_id = int(cur.lastrowid or 0)
            conn.execute("UPDATE jobs SET payload = ? WHERE id = ?", (make_payload(job_id), job_id))
        return job_id

    def add_upload(self, meta: dict[str, Any], body: Path) -> int:
        content = body.read_bytes()
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO codeintel_uploads (route, repository, commit_sha, root, indexer_name,"
                " indexer_version, associated_index_id, uncompressed_size, size, sha256, state,"
                " uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
                (
                    meta["route"],
                    meta["repository"],
                    meta["commit"],
                    meta["root"],
                    meta["indexer_name"],
                    meta["indexer_version"],
                    meta["associated_index_id"],
                    meta["uncompressed_size"],
                    len(content),
                    hashlib.sha256(content).hexdigest(),
                    self.clock(),
                ),
            )
            upload_id = int(cur.lastrowid or 0)
        body.rename(self.uploads_dir / f"upload-{upload_id}.lsif.gz")
        return upload_id

    def list_uploads(self, newest: int = 0) -> list[Upload]:
        """Every upload, oldest first; with `newest`, only that many of the latest."""
        sql = "SELECT * FROM codeintel_uploads ORDER BY id"
        if newest > 0:
            sql = f"SELECT * FROM ({sql} DESC LIMIT {int(newest)}) ORDER BY id"
        rows = self._conn().execute(sql).fetchall()
        return [
            Upload(
                id=r["id"],
                route=r["route"],
                repository=r["repository"],
                commit=r["commit_sha"],
                root=r["root"],
                indexer_name=r["indexer_name"],
                indexer_version=r["indexer_version"],
                associated_index_id=r["associated_index_id"],
                uncompressed_size=r["uncompressed_size"],
                size=r["size"],
                sha256=r["sha256"],
                state=r["state"],
                uploaded_at=r["uploaded_at"],
            )
            for r in rows
        ]

    def content(self, upload_id: int) -> bytes:
        return (self.uploads_dir / f"upload-{upload_id}.lsif.gz").read_bytes()


def codeintel_job(
    job_id: int,
    *,
    repository: str,
    commit: str,
    indexer: str,
    indexer_args: list[str],
    frontend_url: str,
    token: str,
    src_cli_image: str,
    local_steps: list[str] | None = None,
    pre_index: list[dict[str, Any]] | None = None,
    root: str = "",
    outfile: str = "",
) -> dict[str, Any]:
    """The Job wire body Sourcegraph's codeintel transform builds for one index record."""
    env = _resource_env("12G", "20G")
    steps: list[dict[str, Any]] = [
        {
            "key": f"pre-index.{i}",
            "image": s["image"],
            "commands": list(s.get("commands", [])),
            "dir": s.get("root", ""),
            "env": env,
        }
        for i, s in enumerate(pre_index or [])
    ]
    if indexer:
        steps.append(
            {
                "key": "indexer",
                "image": indexer,
                "commands": [*(local_steps or []), shlex.join(indexer_args)],
                "dir": root,
                "env": env,
            }
        )
    upload = [
        "src", "code-intel", "upload", "-no-progress", "-repo", repository, "-commit", commit,
        "-root", root or ".", "-upload-route", UPLOAD_ROUTE, "-file", outfile or DEFAULT_OUTFILE,
        "-associated-index-id", str(job_id),
    ]  # fmt: skip
    authorization = f"token-executor {token}"
    steps.append(
        {
            "key": "upload",
            "image": src_cli_image,
            "commands": [shlex.join(upload)],
            "dir": root,
            "env": [f"SRC_ENDPOINT={frontend_url}", f"SRC_HEADER_AUTHORIZATION={authorization}"],
        }
    )
    return {
        "commit": commit,
        "repositoryName": repository,
        "shallowClone": True,
        "fetchTags": indexer.startswith(LSIF_GO_IMAGE),
        "dockerSteps": steps,
        "redactedValues": {authorization: "token-executor REDACTED", token: "PASSWORD_REMOVED"},
    }


def _resource_env(memory: str, disk: str) -> list[str]:
    """`makeResourceEnvironment` for sizes given as `<n>G` (datasize's HumanReadable form)."""
    env: list[str] = []
    for prefix, value in (("VM_MEM", memory), ("VM_DISK", disk)):
        gib = int(value.rstrip("G"))
        env += [f"{prefix}={gib:.1f} GB", f"{prefix}_GB={gib}", f"{prefix}_MB={gib * 1024}"]
    return env


def _failed(reason: str, status: int) -> Response:
    return http_error(f"failed to enqueue payload: {reason}", status)


def _store(request: Request) -> CodeintelStore:
    store: CodeintelStore = request.app.state.codeintel
    return store


async def _upload(request: Request) -> Response:
    state = get_state(request)
    if denied := check_executor_token(request, state.settings.token):
        return denied
    if request.method == "HEAD":
        return Response(status_code=200)
    query = request.query_params
    if any(query.get(k) for k in ("multiPart", "uploadId", "index", "done")):
        return _failed("multi-part uploads are not supported by the sandbox", 400)
    size_header = request.headers.get("x-uncompressed-size", "")
    if size_header and not re.fullmatch(r"[+-]?[0-9]+", size_header):
        return _failed("the header `X-Uncompressed-Size` must be an integer", 422)
    commit = query.get("commit", "")
    if not _REVHASH.match(commit):
        return _failed("commit must be a 40-character revhash", 400)
    repository = query.get("repository", "")
    if state.store.repo_path(repository) is None:
        return _failed(f'unknown repository "{repository}"', 404)
    store = _store(request)
    partial = store.uploads_dir / f"incoming-{id(request)}-{math.floor(store.clock() * 1e6)}"
    try:
        if (problem := await _receive(request, partial)) is not None:
            return problem
        upload_id = store.add_upload(
            {
                "route": request.url.path.split("/")[2],  # lsif or scip
                "repository": repository,
                "commit": commit,
                "root": _sanitize_root(query.get("root", "")),
                "indexer_name": query.get("indexerName", ""),
                "indexer_version": query.get("indexerVersion", ""),
                "associated_index_id": _atoi(query.get("associatedIndexId", "")),
                "uncompressed_size": int(size_header or 0),
            },
            partial,
        )
    finally:
        partial.unlink(missing_ok=True)
    return json_response({"id": str(upload_id)}, 202)


async def _receive(request: Request, target: Path) -> Response | None:
    """Stream the body to `target`, at most `MAX_UPLOAD` bytes."""
    size = 0
    try:
        with target.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_UPLOAD:
                    return http_error(f"request body too large: more than {MAX_UPLOAD} bytes", 413)
                out.write(chunk)
    except ClientDisconnect:
        return Response(status_code=499)
    return None


def _sanitize_root(root: str) -> str:
    """`sanitizeRoot` of the upload handler: "" and "/" are ""; anything else ends in `/`."""
    if root in ("", "/"):
        return ""
    return root if root.endswith("/") else root + "/"


def _head(repo_path: str) -> str:
    done = subprocess.run(
        ["git", "-C", repo_path, "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def _atoi(text: str) -> int:
    return int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else 0


async def _admin_uploads(request: Request) -> Response:
    if denied := check_executor_token(request, get_state(request).settings.token):
        return denied
    return json_response([u.to_dict() for u in _store(request).list_uploads()])


async def _admin_enqueue(request: Request) -> Response:
    state = get_state(request)
    if denied := check_executor_token(request, state.settings.token):
        return denied
    try:
        data = await request.json()
        repository, commit = str(data["repository"]), str(data.get("commit", ""))
        indexer = str(data.get("indexer", INDEXER_STANDIN))
        args = [str(a) for a in data.get("indexerArgs", ["standin-index", DEFAULT_OUTFILE])]
        src_cli = str(data.get("srcCliImage", SRC_CLI_STANDIN))
        # What step containers reach: the docker host's gateway name (the executor then needs
        # EXECUTOR_DOCKER_ADD_HOST_GATEWAY=true) on the port this request came in on.
        default_url = f"http://host.docker.internal:{request.url.port or 80}"
        frontend_url = str(data.get("frontendURL") or default_url)
    except (ValueError, KeyError, TypeError) as err:
        return json_response({"error": f"bad request: {err}"}, 400)
    path = state.store.repo_path(repository)
    if path is None:
        return json_response({"error": f"unknown repository {repository!r}"}, 404)
    if not commit:
        commit = await asyncio.to_thread(_head, path)
    if not _REVHASH.match(commit):
        return json_response({"error": "commit must be a 40-character revhash"}, 400)
    token = state.settings.token

    def payload(job_id: int) -> str:
        body = codeintel_job(
            job_id,
            repository=repository,
            commit=commit,
            indexer=indexer,
            indexer_args=args,
            frontend_url=frontend_url,
            token=token,
            src_cli_image=src_cli,
            local_steps=[str(s) for s in data.get("localSteps", [])],
            root=str(data.get("root", "")),
            outfile=str(data.get("outfile", "")),
        )
        return json.dumps(body)

    job_id = _store(request).enqueue_index(repository, payload)
    return json_response({"id": job_id, "queue": "codeintel"}, 201)


def codeintel_routes() -> list[Route]:
    return [
        Route("/.executors/lsif/upload", _upload, methods=["POST"]),
        Route("/.executors/scip/upload", _upload, methods=["POST", "HEAD"]),
        Route("/.sandbox/codeintel/uploads", _admin_uploads, methods=["GET"]),
        Route("/.sandbox/codeintel/jobs", _admin_enqueue, methods=["POST"]),
    ]
