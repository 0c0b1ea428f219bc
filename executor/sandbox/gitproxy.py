"""Git smart HTTP and the files API, both behind job-token auth (§2.8, §4.2, §8.1).

Git: `GET /.executors/git/<repo>/info/refs?service=git-upload-pack` and
`POST /.executors/git/<repo>/git-upload-pack` run `git upload-pack --stateless-rpc` on the
hosted bare repository. `Git-Protocol` is forwarded as `GIT_PROTOCOL`, so protocol v2 works;
a gzip request body is inflated; the response is streamed from the subprocess. Upload-pack
runs with `allowAnySHA1InWant`, `allowReachableSHA1InWant` and `allowFilter`, so
`git fetch origin <sha>` and `--filter=blob:none` work.

SECURITY: the URL never becomes a filesystem path. `<repo>` is looked up by exact name in the
store's repository table; anything else is 404, so `../../etc` cannot escape.

Files: `GET`/`HEAD /.executors/files/batch-changes/<spec>/<file>` serve bytes stored under
bucket `batch-changes`, key `<spec>/<file>`; the token must belong to queue `batches`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import zlib
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from executor.sandbox.auth import check_job_token
from executor.sandbox.compat import http_error
from executor.sandbox.state import get_state

__all__ = ["FILES_BUCKET", "git_routes", "upload_pack_argv"]

FILES_BUCKET = "batch-changes"
_MAX_REQUEST_BYTES = 256 * 1024 * 1024
_GIT_PROTOCOL = re.compile(r"[A-Za-z0-9=:._-]{1,200}")
_ADVERTISEMENT = "application/x-git-upload-pack-advertisement"
_RESULT = "application/x-git-upload-pack-result"
_SERVICE_LINE = b"001e# service=git-upload-pack\n0000"


def upload_pack_argv(repo_path: str, *, advertise: bool) -> list[str]:
    """The upload-pack command line for one hosted repository."""
    argv = [
        "git",
        "-c",
        "uploadpack.allowAnySHA1InWant=true",
        "-c",
        "uploadpack.allowReachableSHA1InWant=true",
        "-c",
        "uploadpack.allowFilter=true",
        "-c",
        "safe.directory=*",
        "upload-pack",
        "--stateless-rpc",
    ]
    if advertise:
        argv.append("--advertise-refs")
    return [*argv, repo_path]


def _git_env(request: Request) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(get_state(request).settings.data_dir),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    protocol = request.headers.get("git-protocol", "")
    if _GIT_PROTOCOL.fullmatch(protocol):
        env["GIT_PROTOCOL"] = protocol
    return env


async def _stream(proc: asyncio.subprocess.Process, body: bytes | None) -> AsyncIterator[bytes]:
    """Yield upload-pack's stdout while feeding it `body`; kill it if the client goes away."""
    assert proc.stdout is not None

    async def feed() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if body:
                proc.stdin.write(body)
                await proc.stdin.drain()
            proc.stdin.close()

    feeder = asyncio.create_task(feed())
    try:
        while chunk := await proc.stdout.read(65536):
            yield chunk
        await feeder
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        feeder.cancel()


async def _read_body(request: Request) -> bytes | Response:
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > _MAX_REQUEST_BYTES:
            return http_error("request body too large", 413)
    if request.headers.get("content-encoding", "").lower() in ("gzip", "x-gzip"):
        try:
            return zlib.decompress(bytes(raw), 16 + zlib.MAX_WBITS)
        except zlib.error:
            return http_error("could not decode gzip request body", 400)
    return bytes(raw)


async def _git(request: Request) -> Response:
    state = get_state(request)
    rest: str = request.path_params["rest"]
    if rest.endswith("/info/refs"):
        repo, kind = rest.removesuffix("/info/refs"), "refs"
    elif rest.endswith("/git-upload-pack"):
        repo, kind = rest.removesuffix("/git-upload-pack"), "upload"
    else:
        return http_error("404 page not found", 404)
    denied = check_job_token(request, state.store, state.settings.token, "git", repo=repo)
    if denied:
        return denied
    repo_path = state.store.repo_path(repo)
    if repo_path is None:
        return http_error(f"repository not found: {repo}", 404)

    env = _git_env(request)
    headers = {"Cache-Control": "no-cache"}
    if kind == "refs":
        if request.query_params.get("service") != "git-upload-pack":
            return http_error("only smart HTTP with git-upload-pack is supported", 403)
        proc = await asyncio.create_subprocess_exec(
            *upload_pack_argv(repo_path, advertise=True),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            return http_error("git upload-pack failed", 500)
        if "version=2" not in env.get("GIT_PROTOCOL", ""):
            # v0/v1 clients expect the service announcement first; v2 does not (http-backend).
            out = _SERVICE_LINE + out
        return Response(out, media_type=_ADVERTISEMENT, headers=headers)

    if request.method != "POST":
        return http_error("method not allowed", 405)
    body = await _read_body(request)
    if isinstance(body, Response):
        return body
    proc = await asyncio.create_subprocess_exec(
        *upload_pack_argv(repo_path, advertise=False),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    return StreamingResponse(_stream(proc, body), media_type=_RESULT, headers=headers)


async def _files(request: Request) -> Response:
    state = get_state(request)
    if denied := check_job_token(request, state.store, state.settings.token, "files"):
        return denied
    key = f"{request.path_params['spec']}/{request.path_params['file']}"
    content = state.store.get_file(FILES_BUCKET, key)
    if content is None:
        return http_error("file does not exist", 404)
    if request.method == "HEAD":
        return Response(status_code=200, headers={"Content-Length": str(len(content))})
    return Response(content, media_type="application/octet-stream")


def git_routes() -> list[Route]:
    """The git and files routes, relative to the site root."""
    return [
        Route(
            "/.executors/git/{rest:path}",
            _git,
            methods=["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"],
        ),
        Route(
            f"/.executors/files/{FILES_BUCKET}/{{spec}}/{{file}}", _files, methods=["GET", "HEAD"]
        ),
    ]
