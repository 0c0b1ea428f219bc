"""The batch tables of the sandbox: batch specs, workspaces, the step cache, changeset specs
and executor secrets, beside the job tables of `executor.sandbox.store` in the same file.

Sourcegraph's counterparts: `batch_specs`, `batch_spec_workspaces` (+ the execution job, here
a row of `jobs` whose id the workspace keeps), `batch_spec_execution_cache_entries` (per user;
here per namespace), `changeset_specs`, `executor_secrets`.

Writes that must happen in a caller's transaction (enqueueing a workspace's job, the
mark-call hook) take that transaction's connection; everything else opens its own.

Knows SQL and JSON only.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from executor.sandbox.db import Database

__all__ = ["BatchStore", "WorkspaceRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_specs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    namespace TEXT NOT NULL,
    raw TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_workspaces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_spec_id INTEGER NOT NULL,
    repository TEXT NOT NULL,
    repository_id TEXT NOT NULL,
    branch TEXT NOT NULL,
    commit_oid TEXT NOT NULL,
    path TEXT NOT NULL,
    only_fetch_workspace INTEGER NOT NULL,
    file_matches TEXT NOT NULL,
    skipped_steps TEXT NOT NULL,
    cache TEXT NOT NULL DEFAULT 'miss',
    job_id INTEGER,
    failure_message TEXT
);
CREATE INDEX IF NOT EXISTS batch_workspaces_job ON batch_workspaces (job_id);
CREATE INDEX IF NOT EXISTS batch_workspaces_spec ON batch_workspaces (batch_spec_id);
CREATE TABLE IF NOT EXISTS batch_cache_entries (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE TABLE IF NOT EXISTS changeset_specs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_spec_id INTEGER NOT NULL,
    workspace_id INTEGER NOT NULL,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL
);
-- The summary's count, polled while a batch runs: without it every poll read every changeset
-- spec row, diffs and all (a cost that grew with the batch: `bench.batch20k`).
CREATE INDEX IF NOT EXISTS changeset_specs_spec ON changeset_specs (batch_spec_id);
CREATE TABLE IF NOT EXISTS executor_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class WorkspaceRow:
    """A stored workspace; `cache` is `miss`, `partial` (job resumes) or `hit` (no job)."""

    id: int
    batch_spec_id: int
    repository: str
    repository_id: str
    branch: str
    commit: str
    path: str
    only_fetch_workspace: bool
    file_matches: list[str]
    skipped_steps: list[int]
    cache: str
    job_id: int | None
    failure_message: str | None


def _workspace(row: sqlite3.Row) -> WorkspaceRow:
    return WorkspaceRow(
        id=int(row["id"]),
        batch_spec_id=int(row["batch_spec_id"]),
        repository=row["repository"],
        repository_id=row["repository_id"],
        branch=row["branch"],
        commit=row["commit_oid"],
        path=row["path"],
        only_fetch_workspace=bool(row["only_fetch_workspace"]),
        file_matches=json.loads(row["file_matches"]),
        skipped_steps=json.loads(row["skipped_steps"]),
        cache=row["cache"],
        job_id=row["job_id"],
        failure_message=row["failure_message"],
    )


class BatchStore(Database):
    """Batch specs and everything hanging off them."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        conn = self._conn()
        conn.executescript(_SCHEMA)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(batch_specs)")}
        if "applied_at" not in columns:  # databases created before `batch apply` applied
            conn.execute("ALTER TABLE batch_specs ADD COLUMN applied_at REAL")

    # -- batch specs and workspaces --------------------------------------------------------

    def create_batch_spec(self, name: str, namespace: str, raw: str) -> int:
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO batch_specs (name, namespace, raw, created_at) VALUES (?, ?, ?, ?)",
                (name, namespace, raw, self.clock()),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def batch_spec(self, spec_id: int) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM batch_specs WHERE id = ?", (spec_id,)).fetchone()
        return None if row is None else dict(row)

    def list_batch_specs(self) -> list[dict[str, Any]]:
        """id, name, namespace and creation time of every batch spec, newest first."""
        rows = self._conn().execute(
            "SELECT id, name, namespace, created_at FROM batch_specs ORDER BY id DESC"
        )
        return [dict(r) for r in rows]

    def mark_applied(self, spec_id: int) -> bool:
        """Record that the batch spec was applied (`src batch apply`); False if unknown."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE batch_specs SET applied_at = coalesce(applied_at, ?) WHERE id = ?",
                (self.clock(), spec_id),
            )
            return cur.rowcount == 1

    def summary(self, spec_id: int) -> dict[str, Any]:
        """Workspace counts by state (all, and those with a job) and cache, and the
        changeset spec count: two
        aggregate queries, whatever the number of workspaces (what waiting clients poll)."""
        conn = self._conn()
        rows = conn.execute(
            "SELECT CASE WHEN w.job_id IS NULL THEN"
            "   CASE WHEN w.failure_message IS NULL THEN 'completed' ELSE 'failed' END"
            " ELSE coalesce(j.state, 'queued') END AS state, w.cache, w.job_id IS NOT NULL,"
            " count(*) FROM batch_workspaces w LEFT JOIN jobs j ON j.id = w.job_id"
            " WHERE w.batch_spec_id = ? GROUP BY 1, 2, 3",
            (spec_id,),
        )
        states: dict[str, int] = {}
        jobs: dict[str, int] = {}
        cache: dict[str, int] = {}
        for state, hit, has_job, count in rows:
            states[state] = states.get(state, 0) + count
            cache[hit] = cache.get(hit, 0) + count
            if has_job:
                jobs[state] = jobs.get(state, 0) + count
        specs = conn.execute(
            "SELECT count(*) FROM changeset_specs WHERE batch_spec_id = ?", (spec_id,)
        ).fetchone()[0]
        return {"states": states, "jobs": jobs, "cache": cache, "changeset_specs": int(specs)}

    def batch_spec_of_conn(self, conn: sqlite3.Connection, spec_id: int) -> dict[str, Any]:
        row = conn.execute("SELECT * FROM batch_specs WHERE id = ?", (spec_id,)).fetchone()
        return dict(row)

    def add_workspace(self, conn: sqlite3.Connection, ws: WorkspaceRow) -> int:
        """Insert `ws` (its `id` and `job_id` are ignored); the new ID."""
        cur = conn.execute(
            "INSERT INTO batch_workspaces (batch_spec_id, repository, repository_id, branch,"
            " commit_oid, path, only_fetch_workspace, file_matches, skipped_steps, cache)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ws.batch_spec_id,
                ws.repository,
                ws.repository_id,
                ws.branch,
                ws.commit,
                ws.path,
                int(ws.only_fetch_workspace),
                json.dumps(ws.file_matches),
                json.dumps(ws.skipped_steps),
                ws.cache,
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def enqueue_workspace_job(
        self, conn: sqlite3.Connection, workspace_id: int, payload: dict[str, Any], repo: str
    ) -> int:
        """Insert the workspace's `batches` job and link it, in the caller's transaction, so
        the job cannot finish before the workspace knows it (the same INSERT as
        `SandboxStore.enqueue`)."""
        cur = conn.execute(
            "INSERT INTO jobs (queue, payload, repository, queued_at) VALUES (?, ?, ?, ?)",
            ("batches", json.dumps(payload), repo, self.clock()),
        )
        job_id = cur.lastrowid
        assert job_id is not None
        conn.execute("UPDATE batch_workspaces SET job_id = ? WHERE id = ?", (job_id, workspace_id))
        return job_id

    def workspace_for_job(self, conn: sqlite3.Connection, job_id: int) -> WorkspaceRow | None:
        row = conn.execute("SELECT * FROM batch_workspaces WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else _workspace(row)

    def set_workspace_failure(self, conn: sqlite3.Connection, ws_id: int, message: str) -> None:
        conn.execute(
            "UPDATE batch_workspaces SET failure_message = ? WHERE id = ?", (message, ws_id)
        )

    def workspaces(
        self, spec_id: int, limit: int = -1, offset: int = 0
    ) -> list[tuple[WorkspaceRow, str | None, str | None]]:
        """Each workspace of a batch spec with its job's state and failure message
        (`limit` rows from `offset`; -1 = all)."""
        rows = self._conn().execute(
            "SELECT w.*, j.state AS job_state, j.failure_message AS job_failure"
            " FROM batch_workspaces w LEFT JOIN jobs j ON j.id = w.job_id"
            " WHERE w.batch_spec_id = ? ORDER BY w.id LIMIT ? OFFSET ?",
            (spec_id, limit, offset),
        )
        return [(_workspace(r), r["job_state"], r["job_failure"]) for r in rows]

    def hosted_repos(self) -> list[tuple[int, str, str]]:
        """(rowid, name, path) of every hosted repository."""
        rows = self._conn().execute("SELECT rowid, name, path FROM repositories ORDER BY name")
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    # -- cache -----------------------------------------------------------------------------

    def put_cache_entries(
        self, conn: sqlite3.Connection, namespace: str, entries: list[tuple[str, str]]
    ) -> None:
        for key, value in entries:
            conn.execute(
                "INSERT INTO batch_cache_entries VALUES (?, ?, ?, ?) ON CONFLICT (namespace, key)"
                " DO UPDATE SET value = excluded.value, created_at = excluded.created_at",
                (namespace, key, value, self.clock()),
            )

    def cache_entry(self, conn: sqlite3.Connection, namespace: str, key: str) -> str | None:
        row = conn.execute(
            "SELECT value FROM batch_cache_entries WHERE namespace = ? AND key = ?",
            (namespace, key),
        ).fetchone()
        return None if row is None else str(row[0])

    def cache_size(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM batch_cache_entries").fetchone()[0])

    # -- changeset specs -------------------------------------------------------------------

    def add_changeset_specs(
        self, conn: sqlite3.Connection, spec_id: int, ws_id: int, specs: list[dict[str, Any]]
    ) -> None:
        for spec in specs:
            conn.execute(
                "INSERT INTO changeset_specs (batch_spec_id, workspace_id, spec, created_at)"
                " VALUES (?, ?, ?, ?)",
                (spec_id, ws_id, json.dumps(spec), self.clock()),
            )

    def changeset_specs(
        self, spec_id: int, limit: int = -1, offset: int = 0
    ) -> list[tuple[int, int, str, dict[str, Any]]]:
        """(id, workspace id, repository, spec) of the changeset specs of a batch spec
        (`limit` from `offset`; -1 = all)."""
        rows = self._conn().execute(
            "SELECT c.id, c.workspace_id, w.repository, c.spec FROM changeset_specs c"
            " JOIN batch_workspaces w ON w.id = c.workspace_id WHERE c.batch_spec_id = ?"
            " ORDER BY c.id LIMIT ? OFFSET ?",
            (spec_id, limit, offset),
        )
        return [(int(r[0]), int(r[1]), str(r[2]), json.loads(r[3])) for r in rows]

    # -- secrets ---------------------------------------------------------------------------

    def set_secret(self, name: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO executor_secrets VALUES (?, ?, ?) ON CONFLICT (name)"
                " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (name, value, self.clock()),
            )

    def secrets(self) -> dict[str, str]:
        rows = self._conn().execute("SELECT name, value FROM executor_secrets")
        return {str(r[0]): str(r[1]) for r in rows}

    def transaction(self) -> Any:
        """A write transaction (`BEGIN IMMEDIATE`) on this thread's connection."""
        return self._tx()
