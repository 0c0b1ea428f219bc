"""The sandbox's job store: jobs and job tokens (registry tables come from `registry`).

It reproduces the semantics of Sourcegraph's dbworker store and executor tables
(`internal/database/dbworker/store`, `internal/executor/store`, `executor_job_tokens`):
- FIFO dequeue by `(queued_at, id)` inside `BEGIN IMMEDIATE`, so when several executors race,
  exactly one of them wins each job (SQLite's write lock plays `FOR UPDATE SKIP LOCKED`);
- heartbeat, log entries and mark calls only touch `processing` rows owned by the caller;
- stalled jobs go back to `queued` at most `max_num_resets` times, then fail;
- job tokens are 20 random bytes as hex; only the SHA-256 of the bytes is stored.

Connections and transactions: `executor.sandbox.db`.

Knows SQL and JSON; knows nothing of HTTP or of the executor.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from executor.sandbox.registry import ExecutorInfo, Registry

__all__ = [
    "MAX_RESETS_MESSAGE",
    "STATES",
    "DequeuedJob",
    "ExecutorInfo",
    "FinishHook",
    "JobRecord",
    "JobToken",
    "SandboxStore",
]

# (conn, queue, job_id, outcome, message) -> (outcome, message); see `add_finish_hook`.
FinishHook = Callable[[sqlite3.Connection, str, int, str, "str | None"], tuple[str, "str | None"]]

STATES = ("queued", "processing", "completed", "errored", "failed", "canceled")
MAX_RESETS_MESSAGE = "job processor died while handling this message too many times"


@dataclass(frozen=True)
class JobToken:
    """What a job token grants: one job of one queue, and one repository."""

    job_id: int
    queue: str
    repo: str


@dataclass(frozen=True)
class DequeuedJob:
    """A job just moved to `processing`: its stored payload and its fresh plain-text token."""

    id: int
    queue: str
    payload: dict[str, Any]
    token: str


@dataclass
class JobRecord:
    """A job row as the admin surface shows it."""

    id: int
    queue: str
    state: str
    payload: dict[str, Any]
    repository: str
    queued_at: float
    started_at: float | None
    last_heartbeat_at: float | None
    finished_at: float | None
    num_resets: int
    num_failures: int
    failure_message: str | None
    worker_hostname: str
    cancel: bool
    execution_logs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hash_token(token: str) -> bytes | None:
    try:
        raw = bytes.fromhex(token)
    except ValueError:
        return None
    return hashlib.sha256(raw).digest()


class SandboxStore(Registry):
    """All persistent state of the sandbox, in one SQLite file."""

    def __init__(
        self,
        path: Path | str,
        *,
        stalled_max_age: float = 25.0,
        max_num_resets: int = 3,
        max_num_retries: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(path, clock=clock)
        self.stalled_max_age = stalled_max_age
        self.max_num_resets = max_num_resets
        # 0 as in both Sourcegraph queues: markErrored ends in `failed`. Above 0, `errored`
        # rows are dequeued again (Sourcegraph's RetryAfter; here: at once).
        self.max_num_retries = max_num_retries
        self._finish_hooks: list[FinishHook] = []

    def add_finish_hook(self, hook: FinishHook) -> None:
        """Run `hook` inside the transaction of every mark call on an owned job.

        It gets `(conn, queue, job_id, outcome, message)` with outcome `complete`, `errored`
        or `failed`, and returns the `(outcome, message)` to record (e.g. the batches module
        turns a complete without step results into `failed`, as Sourcegraph's store does).
        """
        self._finish_hooks.append(hook)

    # -- jobs -------------------------------------------------------------------------------

    def enqueue(self, queue: str, payload: dict[str, Any], repository: str = "") -> int:
        """Add a queued job; `payload` is the Job wire body without id and token."""
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO jobs (queue, payload, repository, queued_at) VALUES (?, ?, ?, ?)",
                (queue, json.dumps(payload), repository, self.clock()),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def queued_count(self, queue: str) -> int:
        row = (
            self._conn()
            .execute("SELECT count(*) FROM jobs WHERE queue = ? AND state = 'queued'", (queue,))
            .fetchone()
        )
        return int(row[0])

    def dequeue(self, queue: str, executor_name: str) -> DequeuedJob | None:
        """Move the oldest queued job of `queue` to `processing` for this executor.

        The candidate is read and claimed under one write lock, so two dequeuers never get the
        same job. The job's token is (re)generated here, as the frontend does after dequeue.
        """
        states = "('queued', 'errored')" if self.max_num_retries > 0 else "('queued')"
        now = self.clock()
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT id, payload, repository FROM jobs WHERE queue = ? AND state IN {states}"
                " ORDER BY queued_at, id LIMIT 1",
                (queue,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET state = 'processing', started_at = ?, last_heartbeat_at = ?,"
                " finished_at = NULL, failure_message = NULL, execution_logs = NULL,"
                " worker_hostname = ? WHERE id = ?",
                (now, now, executor_name, row["id"]),
            )
            token = secrets.token_hex(20)
            conn.execute(
                "DELETE FROM job_tokens WHERE job_id = ? AND queue = ?", (row["id"], queue)
            )
            conn.execute(
                "INSERT INTO job_tokens (value_sha256, job_id, queue, repo, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (_hash_token(token), row["id"], queue, row["repository"], now),
            )
        return DequeuedJob(int(row["id"]), queue, json.loads(row["payload"]), token)

    def heartbeat(
        self, queue: str, executor_name: str, ids: list[str]
    ) -> tuple[list[str] | None, list[str] | None]:
        """Refresh the owned processing jobs among `ids`; return (known, cancel) IDs.

        An empty request gives two empty lists; otherwise a list with nothing in it is `None`,
        which the handler writes as `null`, as the Go store's nil slices are.
        """
        if not ids:
            return [], []
        numeric = [int(i) for i in ids if i.isdigit()]
        known: list[str] | None = None
        cancel: list[str] | None = None
        with self._tx() as conn:
            for job_id in numeric:
                row = conn.execute(
                    "SELECT cancel FROM jobs WHERE id = ? AND queue = ? AND state = 'processing'"
                    " AND worker_hostname = ?",
                    (job_id, queue, executor_name),
                ).fetchone()
                if row is None:
                    continue
                conn.execute(
                    "UPDATE jobs SET last_heartbeat_at = ? WHERE id = ?", (self.clock(), job_id)
                )
                known = [*(known or []), str(job_id)]
                if row["cancel"]:
                    cancel = [*(cancel or []), str(job_id)]
        return known, cancel

    def add_log_entry(
        self, queue: str, job_id: int, executor_name: str, entry: dict[str, Any]
    ) -> int | None:
        """Append an entry to an owned processing job; the 1-based entry ID, or None."""
        with self._tx() as conn:
            logs = self._owned_logs(conn, queue, job_id, executor_name)
            if logs is None:
                return None
            logs.append(entry)
            conn.execute(
                "UPDATE jobs SET execution_logs = ? WHERE id = ?", (json.dumps(logs), job_id)
            )
            return len(logs)

    def update_log_entry(
        self, queue: str, job_id: int, executor_name: str, entry_id: int, entry: dict[str, Any]
    ) -> bool:
        """Replace entry `entry_id` (1-based) of an owned processing job."""
        with self._tx() as conn:
            logs = self._owned_logs(conn, queue, job_id, executor_name)
            if logs is None or not 1 <= entry_id <= len(logs):
                return False
            logs[entry_id - 1] = entry
            conn.execute(
                "UPDATE jobs SET execution_logs = ? WHERE id = ?", (json.dumps(logs), job_id)
            )
            return True

    @staticmethod
    def _owned_logs(
        conn: sqlite3.Connection, queue: str, job_id: int, executor_name: str
    ) -> list[dict[str, Any]] | None:
        row = conn.execute(
            "SELECT execution_logs FROM jobs WHERE id = ? AND queue = ? AND state = 'processing'"
            " AND worker_hostname = ?",
            (job_id, queue, executor_name),
        ).fetchone()
        if row is None:
            return None
        logs: list[dict[str, Any]] = json.loads(row["execution_logs"] or "[]")
        return logs

    def mark_complete(self, queue: str, job_id: int, executor_name: str) -> bool:
        return self._mark(queue, job_id, executor_name, "complete", None)

    def mark_errored(self, queue: str, job_id: int, executor_name: str, message: str) -> bool:
        return self._mark(queue, job_id, executor_name, "errored", message)

    def mark_failed(self, queue: str, job_id: int, executor_name: str, message: str) -> bool:
        return self._mark(queue, job_id, executor_name, "failed", message)

    def _mark(
        self, queue: str, job_id: int, executor_name: str, outcome: str, message: str | None
    ) -> bool:
        """Finish an owned processing job (§8.2) and delete its token; False if not owned."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT cancel, num_failures FROM jobs WHERE id = ? AND queue = ?"
                " AND state = 'processing' AND worker_hostname = ?",
                (job_id, queue, executor_name),
            ).fetchone()
            if row is None:
                return False
            failures = int(row["num_failures"])
            for hook in self._finish_hooks:
                outcome, message = hook(conn, queue, job_id, outcome, message)
            if outcome == "complete":
                state = "completed"
            elif row["cancel"]:
                state = "canceled"
            else:
                failures += 1
                retry = outcome == "errored" and failures < self.max_num_retries
                state = "errored" if retry else "failed"
            conn.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, failure_message = ?,"
                " num_failures = ? WHERE id = ?",
                (state, self.clock(), message, failures, job_id),
            )
            conn.execute("DELETE FROM job_tokens WHERE job_id = ? AND queue = ?", (job_id, queue))
            return True

    def reset_stalled(self) -> tuple[list[int], list[int]]:
        """Requeue processing jobs without a heartbeat for `stalled_max_age`; fail the ones
        already reset `max_num_resets` times. Returns (reset IDs, failed IDs)."""
        now = self.clock()
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT id, queue, num_resets FROM jobs WHERE state = 'processing'"
                " AND ? - last_heartbeat_at > ?",
                (now, self.stalled_max_age),
            ).fetchall()
            reset: list[int] = []
            failed: list[int] = []
            for row in rows:
                if row["num_resets"] < self.max_num_resets:
                    conn.execute(
                        "UPDATE jobs SET state = 'queued', queued_at = ?, started_at = NULL,"
                        " num_resets = num_resets + 1 WHERE id = ?",
                        (now, row["id"]),
                    )
                    reset.append(int(row["id"]))
                else:
                    conn.execute(
                        "UPDATE jobs SET state = 'failed', finished_at = ?, failure_message = ?"
                        " WHERE id = ?",
                        (now, MAX_RESETS_MESSAGE, row["id"]),
                    )
                    conn.execute(
                        "DELETE FROM job_tokens WHERE job_id = ? AND queue = ?",
                        (row["id"], row["queue"]),
                    )
                    failed.append(int(row["id"]))
        return reset, failed

    def cancel(self, job_id: int) -> str | None:
        """Cancel a job (§8.3): flag a processing one, end a queued one. Its state, or None."""
        with self._tx() as conn:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            state = str(row["state"])
            if state == "processing":
                conn.execute("UPDATE jobs SET cancel = 1 WHERE id = ?", (job_id,))
            elif state in ("queued", "errored"):
                conn.execute(
                    "UPDATE jobs SET state = 'canceled', cancel = 1, finished_at = ? WHERE id = ?",
                    (self.clock(), job_id),
                )
                state = "canceled"
            return state

    def get_job(self, job_id: int) -> JobRecord | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _record(row)

    def list_jobs(self, queue: str | None = None, state: str | None = None) -> list[JobRecord]:
        sql, args = "SELECT * FROM jobs WHERE 1 = 1", list[str]()
        if queue:
            sql, args = sql + " AND queue = ?", [*args, queue]
        if state:
            sql, args = sql + " AND state = ?", [*args, state]
        return [_record(r) for r in self._conn().execute(sql + " ORDER BY id", args)]

    def job_overview(
        self, newest: int
    ) -> tuple[dict[tuple[str, str], int], dict[str, list[int]], list[JobRecord]]:
        """For the web page, without reading any payload or log: job counts by (queue,
        state), the processing job IDs by executor, and the `newest` jobs (newest first;
        `payload` and `execution_logs` left empty)."""
        conn = self._conn()
        counts = {
            (str(q), str(s)): int(n)
            for q, s, n in conn.execute("SELECT queue, state, count(*) FROM jobs GROUP BY 1, 2")
        }
        running: dict[str, list[int]] = {}
        for worker, job_id in conn.execute(
            "SELECT worker_hostname, id FROM jobs WHERE state = 'processing' ORDER BY id"
        ):
            running.setdefault(str(worker), []).append(int(job_id))
        rows = conn.execute(
            "SELECT id, queue, state, '{}' AS payload, repository, queued_at, started_at,"
            " last_heartbeat_at, finished_at, num_resets, num_failures, failure_message,"
            " worker_hostname, cancel, NULL AS execution_logs FROM jobs"
            " ORDER BY id DESC LIMIT ?",
            (newest,),
        )
        return counts, running, [_record(r) for r in rows]

    # -- job tokens -------------------------------------------------------------------------

    def get_token(self, token: str) -> JobToken | None:
        """Look a presented token up by the SHA-256 of its hex-decoded bytes."""
        digest = _hash_token(token)
        if digest is None:
            return None
        row = (
            self._conn()
            .execute("SELECT job_id, queue, repo FROM job_tokens WHERE value_sha256 = ?", (digest,))
            .fetchone()
        )
        return None if row is None else JobToken(int(row[0]), str(row[1]), str(row[2]))


def _record(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=int(row["id"]),
        queue=row["queue"],
        state=row["state"],
        payload=json.loads(row["payload"]),
        repository=row["repository"],
        queued_at=row["queued_at"],
        started_at=row["started_at"],
        last_heartbeat_at=row["last_heartbeat_at"],
        finished_at=row["finished_at"],
        num_resets=int(row["num_resets"]),
        num_failures=int(row["num_failures"]),
        failure_message=row["failure_message"],
        worker_hostname=row["worker_hostname"],
        cancel=bool(row["cancel"]),
        execution_logs=json.loads(row["execution_logs"] or "[]"),
    )
