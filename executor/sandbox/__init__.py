"""The sandbox: a small, real reference frontend for Sourcegraph's executor queue API.

It serves the frontend's side of the queue API (Sourcegraph's
`enterprise/cmd/frontend/internal/executorqueue`) over a SQLite store, so the
executor, its tests, the benchmarks and a newcomer's first run have something real to talk to.

Modules: `store` (SQL only), `compat` (Go-compatible texts and checks), `auth` (the two auth
middlewares), `queue` (the queue routes), `gitproxy` (git smart HTTP and files),
`admin` (the `/.sandbox/` surface), `app` (assembly), `server` (running it), `cli`.

The sandbox imports `executor.wire` and `executor.errors` only; nothing in the executor imports
the sandbox.
"""

from __future__ import annotations

__all__: list[str] = []
