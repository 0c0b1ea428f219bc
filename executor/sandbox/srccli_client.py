"""What the src-cli commands (`executor.sandbox.srccli`) share: reading a spec file with
src-cli's errors, validating it locally, and calls to the sandbox with src-cli's error texts.

Facts from src-cli: `batchOpenFileFlag` and `parseBatchSpec` (`cmd/src/batch_common.go`):
`cannot open file F: open F: no such file or directory`, `reading batch spec: read F: is a
directory`, and with no file on a terminal stdin `-f specified, but no input was detected on
stdin; did you forget to pipe a batch spec in?` (after 250 ms); `internal/api/api.go`: a
non-200 answer is `error: 401 Unauthorized` + blank line + the body. A workspace resolution
error is the server's GraphQL error, wrapped as src-cli wraps it: `resolving repositories:
GraphQL errors: …`.

The site token comes from `-token`, else `SANDBOX_TOKEN`, else `EXECUTOR_FRONTEND_PASSWORD`;
src-cli's `SRC_ACCESS_TOKEN`/`SRC_ENDPOINT` are never read (they point at a real instance, and
its token must not be sent to the sandbox). No message shows the token.
"""

from __future__ import annotations

import errno
import os
import select
import sys
from http import HTTPStatus
from typing import Any

import httpx

from executor.batch.spec import BatchSpecValidationError, parse_batch_spec

__all__ = ["DEFAULT_URL", "Client", "Failed", "read_spec", "spec_errors"]

DEFAULT_URL = "http://127.0.0.1:3080"
UI_PREFIX = "/sandbox/ui"


class Failed(Exception):
    """An error src-cli would print (in its `Error:` block, or via `log.Fatal`)."""


def _go_strerror(err: OSError) -> str:
    """Go's lower-case text for an errno (`no such file or directory`)."""
    text = os.strerror(err.errno) if err.errno else str(err)
    return text[:1].lower() + text[1:]


def read_spec(file: str) -> str:
    """The spec's text from `file`, or stdin for `""` and `-`."""
    if file in ("", "-"):
        if file == "" and sys.stdin.isatty():
            ready, _, _ = select.select([sys.stdin], [], [], 0.25)
            if not ready:
                raise Failed(
                    "-f specified, but no input was detected on stdin; did you forget to"
                    " pipe a batch spec in?"
                )
        return sys.stdin.read()
    try:
        with open(file, "rb") as handle:
            data = handle.read()
    except IsADirectoryError:
        raise Failed(f"reading batch spec: read {file}: is a directory") from None
    except OSError as err:
        raise Failed(f"cannot open file {file}: open {file}: {_go_strerror(err)}") from None
    return data.decode("utf-8", "replace")


def spec_errors(raw: str) -> list[str]:
    """Every validation error of the spec (src-cli's texts), [] when it is valid here."""
    try:
        spec = parse_batch_spec(raw)
    except BatchSpecValidationError as err:
        return list(err.errors)
    return [
        f"step {n} mount: mounting files is not supported by the sandbox"
        for n, step in enumerate(spec.steps or [], start=1)
        if step.mount
    ]


def _token(opts: dict[str, Any]) -> str:
    token: str = (
        opts.get("token")
        or os.environ.get("SANDBOX_TOKEN")
        or os.environ.get("EXECUTOR_FRONTEND_PASSWORD")
        or ""
    )
    return token


class Client:
    """The sandbox's admin API with the site token; errors as `Failed` with src-cli's texts."""

    def __init__(self, opts: dict[str, Any]) -> None:
        self.base = str(opts.get("url") or os.environ.get("SANDBOX_URL") or DEFAULT_URL)
        self.base = self.base.rstrip("/")
        token = _token(opts)
        if not token:
            raise Failed("no token: pass -token or set SANDBOX_TOKEN")
        self._http = httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"token-executor {token}"},
            timeout=300.0,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def page(self, path: str) -> str:
        """The address of a sandbox web page (`/sandbox/ui` + path)."""
        return f"{self.base}{UI_PREFIX}{path}"

    def call(self, method: str, path: str, *, wrap: str = "", **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            reason = _transport_reason(err)
            raise Failed(f'{method.title()} "{self.base}{path}": {reason}') from None
        if response.status_code < 400:
            return response.json()
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code in (400, 422) and isinstance(data, dict) and "error" in data:
            message = str(data["error"])
            if data.get("kind") == "resolution" and wrap:
                raise Failed(f"{wrap}: GraphQL errors: {message}")
            raise Failed(message)
        phrase = HTTPStatus(response.status_code).phrase
        raise Failed(f"error: {response.status_code} {phrase}\n\n{response.text}")


def _transport_reason(err: httpx.TransportError) -> str:
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED:
            return "connect: connection refused"
        cause = cause.__cause__ or cause.__context__
    return str(err) or type(err).__name__
