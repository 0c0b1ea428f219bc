"""SQLite plumbing shared by the sandbox stores: the schema, per-thread connections, and
write transactions.

Every connection is per thread (`threading.local`), in WAL mode with a busy timeout, so the
server's event loop, the resetter and test threads can share one database file. Write
transactions start with `BEGIN IMMEDIATE`, which takes SQLite's write lock before the first
read: a read-then-update inside one is atomic against every other writer.

Knows SQL only.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Database"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    payload TEXT NOT NULL,
    repository TEXT NOT NULL DEFAULT '',
    queued_at REAL NOT NULL,
    started_at REAL,
    last_heartbeat_at REAL,
    finished_at REAL,
    num_resets INTEGER NOT NULL DEFAULT 0,
    num_failures INTEGER NOT NULL DEFAULT 0,
    failure_message TEXT,
    worker_hostname TEXT NOT NULL DEFAULT '',
    cancel INTEGER NOT NULL DEFAULT 0,
    execution_logs TEXT
);
CREATE INDEX IF NOT EXISTS jobs_fifo ON jobs (queue, state, queued_at, id);
CREATE TABLE IF NOT EXISTS job_tokens (
    value_sha256 BLOB PRIMARY KEY,
    job_id INTEGER NOT NULL,
    queue TEXT NOT NULL,
    repo TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (job_id, queue)
);
CREATE TABLE IF NOT EXISTS executor_heartbeats (
    hostname TEXT PRIMARY KEY,
    queue_names TEXT NOT NULL,
    os TEXT NOT NULL,
    architecture TEXT NOT NULL,
    docker_version TEXT NOT NULL,
    executor_version TEXT NOT NULL,
    git_version TEXT NOT NULL,
    ignite_version TEXT NOT NULL,
    src_cli_version TEXT NOT NULL,
    first_seen_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    prometheus_metrics TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS repositories (
    name TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS codeintel_uploads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    route TEXT NOT NULL,
    repository TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    root TEXT NOT NULL,
    indexer_name TEXT NOT NULL,
    indexer_version TEXT NOT NULL,
    associated_index_id INTEGER NOT NULL,
    uncompressed_size INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    uploaded_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    content BLOB NOT NULL,
    modified_at REAL NOT NULL,
    PRIMARY KEY (bucket, key)
);
"""


class Database:
    """One SQLite file with the sandbox schema."""

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self.clock = clock
        self._local = threading.local()
        self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; `BEGIN IMMEDIATE` takes the write lock before the first read."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
