"""The Docker Engine API for the three calls the daemon makes outside a step's `docker run`.

Listing containers by label (the janitor, every sweep, the first one at start), removing one
(an orphan) and asking whether an image is present (the root cleanup's image choice) are three
HTTP requests to the engine: `GET /containers/json`, `DELETE /containers/{id}` and
`GET /images/{name}/json`. They go over the HTTP client the daemon already has (httpx), on the
engine's Unix socket or a plain `tcp://` address, as `DOCKER_HOST` says: structured JSON and
status codes, as docker-py gives them, without docker-py. docker-py (with requests, urllib3
and its own JSON and auth helpers: ~90 modules) cost an idle daemon ~6 MiB of its RSS just to
list nothing at start (`bench.idle`); it is still used, imported when first needed, for any
other `DOCKER_HOST` scheme (`ssh://`, `npipe://`), see `executor.runtime.docker`.

Only `HOME`, `PATH`, `USER` and `DOCKER_HOST` reach the runtime (`forwarded_env`), so TLS
settings (`DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`) never did: a `tcp://` engine was plain HTTP
for docker-py too.

The API version is the engine's own (`GET /version`, `ApiVersion`), asked once per process, as
docker-py's `version="auto"` does; unversioned paths are deprecated by Docker. Each call opens
its own connection and closes it: a sweep a minute needs no pool, and an idle daemon holds no
socket to the engine (`bench.soak` counts its descriptors).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

__all__ = ["DEFAULT_SOCKET", "EngineAPI", "EngineError"]

DEFAULT_SOCKET = "/var/run/docker.sock"


class EngineError(RuntimeError):
    """The engine answered with an error status (the message is the engine's)."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"docker engine: {method} {path}: {status} {message}")
        self.status = status
        self.message = message


def _no_tls() -> ssl.SSLContext:
    """The context handed to httpx instead of its default, which loads the whole CA bundle
    (~2 MiB and 15-25 ms). These URLs are never https; if one were, this context trusts no
    certificate at all, so the connection fails instead of going unverified."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class EngineAPI:
    """The engine at one address: a Unix socket path, or a `tcp://host:port`."""

    def __init__(self, *, socket_path: str | None = None, base_url: str = "http://docker") -> None:
        self.socket_path = socket_path
        self.base_url = base_url.rstrip("/")
        self._version: str | None = None
        self._tls = _no_tls()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EngineAPI | None:
        """The engine `DOCKER_HOST` names (default: the standard socket), or None when it is
        a scheme this client does not speak (then docker-py is used)."""
        host = env.get("DOCKER_HOST", "") or f"unix://{DEFAULT_SOCKET}"
        parts = urlsplit(host)
        if parts.scheme == "unix" and parts.path:
            return cls(socket_path=parts.path)
        if parts.scheme == "tcp" and parts.hostname:
            netloc = parts.netloc if parts.port else f"{parts.netloc}:2375"  # docker-py's default
            return cls(base_url=f"http://{netloc}{parts.path}")
        return None

    async def containers(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every container, running or not, carrying every label (the list entries)."""
        filters = json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})
        found = await self._call("GET", "/containers/json", {"all": "1", "filters": filters})
        return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []

    async def remove(self, name: str) -> bool:
        """Force-remove a container; False if it did not exist or is already being removed."""
        try:
            await self._call("DELETE", f"/containers/{quote(name, safe='')}", {"force": "1"})
        except EngineError as err:
            if err.status == 404 or (err.status == 409 and "in progress" in err.message):
                return False
            raise
        return True

    async def image_exists(self, image: str) -> bool:
        """Whether `image` is present locally (nothing is pulled)."""
        try:
            await self._call("GET", f"/images/{quote(image, safe='/:@')}/json", {})
        except EngineError as err:
            if err.status == 404:
                return False
            raise
        return True

    async def _call(self, method: str, path: str, params: Mapping[str, str]) -> Any:
        async with httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=self.socket_path, verify=self._tls),
            base_url=self.base_url,
            trust_env=False,  # no proxy variables: the engine is local
            timeout=httpx.Timeout(60.0, connect=10.0),
        ) as client:
            if self._version is None:
                self._version = str((await _request(client, "GET", "/version", {}))["ApiVersion"])
            return await _request(client, method, f"/v{self._version}{path}", params)


async def _request(
    client: httpx.AsyncClient, method: str, path: str, params: Mapping[str, str]
) -> Any:
    response = await client.request(method, path, params=params)
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        message = str(body.get("message", "")) if isinstance(body, dict) else response.text[:300]
        raise EngineError(method, path, response.status_code, message)
    return response.json() if response.content else None
