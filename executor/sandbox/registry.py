"""The sandbox's registry tables: executors seen by heartbeat, hosted repositories, files.

Job-token auth asks `executor_exists` (Sourcegraph refuses job tokens from executors that never
sent a heartbeat); the git route asks `repo_path`; the files API asks `get_file`.

Knows SQL only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from executor.sandbox.db import Database

__all__ = ["ExecutorInfo", "Registry"]


@dataclass(frozen=True)
class ExecutorInfo:
    """One row of the executor heartbeat table."""

    hostname: str
    queue_names: list[str]
    os: str = ""
    architecture: str = ""
    docker_version: str = ""
    executor_version: str = ""
    git_version: str = ""
    ignite_version: str = ""
    src_cli_version: str = ""
    last_seen_at: float = 0.0
    #: The last heartbeat's `prometheusMetrics` text, as received.
    prometheus_metrics: str = ""


class Registry(Database):
    """Executors, repositories and files."""

    def upsert_executor(self, info: ExecutorInfo) -> None:
        now = self.clock()
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO executor_heartbeats VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (hostname) DO UPDATE SET queue_names = excluded.queue_names,"
                " os = excluded.os, architecture = excluded.architecture,"
                " docker_version = excluded.docker_version,"
                " executor_version = excluded.executor_version,"
                " git_version = excluded.git_version, ignite_version = excluded.ignite_version,"
                " src_cli_version = excluded.src_cli_version, last_seen_at = excluded.last_seen_at,"
                " prometheus_metrics = excluded.prometheus_metrics",
                (
                    info.hostname,
                    json.dumps(info.queue_names),
                    info.os,
                    info.architecture,
                    info.docker_version,
                    info.executor_version,
                    info.git_version,
                    info.ignite_version,
                    info.src_cli_version,
                    now,
                    now,
                    info.prometheus_metrics,
                ),
            )

    def executor_exists(self, hostname: str) -> bool:
        row = (
            self._conn()
            .execute("SELECT 1 FROM executor_heartbeats WHERE hostname = ?", (hostname,))
            .fetchone()
        )
        return row is not None

    def list_executors(self) -> list[ExecutorInfo]:
        rows = self._conn().execute("SELECT * FROM executor_heartbeats ORDER BY hostname")
        return [
            ExecutorInfo(
                hostname=r["hostname"],
                queue_names=json.loads(r["queue_names"]),
                os=r["os"],
                architecture=r["architecture"],
                docker_version=r["docker_version"],
                executor_version=r["executor_version"],
                git_version=r["git_version"],
                ignite_version=r["ignite_version"],
                src_cli_version=r["src_cli_version"],
                last_seen_at=r["last_seen_at"],
                prometheus_metrics=r["prometheus_metrics"],
            )
            for r in rows
        ]

    def add_repo(self, name: str, path: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO repositories VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET path = excluded.path",
                (name, path, self.clock()),
            )

    def repo_path(self, name: str) -> str | None:
        row = (
            self._conn().execute("SELECT path FROM repositories WHERE name = ?", (name,)).fetchone()
        )
        return None if row is None else str(row[0])

    def list_repos(self) -> dict[str, str]:
        rows = self._conn().execute("SELECT name, path FROM repositories ORDER BY name")
        return {str(r[0]): str(r[1]) for r in rows}

    def put_file(self, bucket: str, key: str, content: bytes) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO files VALUES (?, ?, ?, ?) ON CONFLICT (bucket, key)"
                " DO UPDATE SET content = excluded.content, modified_at = excluded.modified_at",
                (bucket, key, content, self.clock()),
            )

    def get_file(self, bucket: str, key: str) -> bytes | None:
        row = (
            self._conn()
            .execute("SELECT content FROM files WHERE bucket = ? AND key = ?", (bucket, key))
            .fetchone()
        )
        return None if row is None else bytes(row[0])
