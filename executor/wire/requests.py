"""Log entries, marks and heartbeats, as on the wire.

Part of `executor.wire`; see its docstring. Sources: `internal/executor/store.go`,
`internal/executor/types/http.go` (spec §2.5, §3.2).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from executor.wire.base import WireModel, fold_keys, format_go_time, none_to_empty_list, reorder

__all__ = [
    "AddExecutionLogEntryRequest",
    "ExecutionLogEntry",
    "HeartbeatRequest",
    "HeartbeatRequestV1",
    "HeartbeatResponse",
    "MarkCompleteRequest",
    "MarkErroredRequest",
    "OutputPieces",
    "QueueJobIDs",
    "UpdateExecutionLogEntryRequest",
]


class OutputPieces:
    """`out` in `ExecutionLogEntry.to_wire` when the entry holds its output in pieces: one JSON
    string to the API client, which streams it. Not a str, list or tuple, so `json` refuses it
    instead of writing something else."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[str, ...]) -> None:
        self.parts = parts


class ExecutionLogEntry(WireModel):
    """One command's log as stored by the frontend (`internal/executor/store.go`)."""

    _omitempty = frozenset({"exitCode", "out", "durationMs"})

    key: str = Field(alias="key")
    command: list[str] | None = Field(default=None, alias="command")
    start_time: dt.datetime = Field(alias="startTime")
    exit_code: int | None = Field(default=None, alias="exitCode")
    out: str = Field(default="", alias="out")
    duration_ms: int | None = Field(default=None, alias="durationMs")
    # (ours) `out` as pieces, never joined: see `with_output_parts`. Not a field, so no
    # payload can set it.
    _out_parts: tuple[str, ...] | None = PrivateAttr(default=None)

    @classmethod
    def with_output_parts(cls, parts: Iterable[str], **fields: Any) -> ExecutionLogEntry:
        """An entry whose output is the concatenation of `parts`, kept as they are.

        The execution log keeps a large entry's output (up to 16 MiB) in pieces; joining them
        for every update would hold a second copy of it (twice its size as soon as one
        character is not Latin-1). `to_wire` then gives `out` as `OutputPieces`, which the
        API client sends as one JSON string; `out` itself stays empty.
        """
        entry = cls(**fields)
        entry._out_parts = tuple(parts)
        return entry

    @property
    def output_parts(self) -> tuple[str, ...]:
        """The output as pieces: the parts given, or `(out,)`."""
        return self._out_parts if self._out_parts is not None else (self.out,)

    @property
    def output(self) -> str:
        """The whole output as one string (joins the pieces, if the entry has them)."""
        return "".join(self._out_parts) if self._out_parts is not None else self.out

    def to_wire(self) -> dict[str, Any]:
        out = super().to_wire()
        if self._out_parts is not None and any(self._out_parts):
            out["out"] = OutputPieces(self._out_parts)
        out["startTime"] = format_go_time(self.start_time)
        # exitCode 0 is a real value: Go's *int omits only nil.
        if self.exit_code is not None:
            out["exitCode"] = self.exit_code
        if self.duration_ms is not None:
            out["durationMs"] = self.duration_ms
        return reorder(out, ["key", "command", "startTime", "exitCode", "out", "durationMs"])


class AddExecutionLogEntryRequest(WireModel):
    """Body of `addExecutionLogEntry`: the operation fields, then the entry flattened."""

    executor_name: str = Field(alias="executorName")
    job_id: int = Field(alias="jobId")
    entry: ExecutionLogEntry

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        if isinstance(data, dict) and "entry" not in data:
            data = fold_keys(cls, data)
            return {
                "executorName": data.get("executorName"),
                "jobId": data.get("jobId"),
                "entry": data,
            }
        return data

    def to_wire(self) -> dict[str, Any]:
        return {"executorName": self.executor_name, "jobId": self.job_id, **self.entry.to_wire()}


class UpdateExecutionLogEntryRequest(WireModel):
    """Body of `updateExecutionLogEntry`: operation fields, `entryId`, the entry flattened."""

    executor_name: str = Field(alias="executorName")
    job_id: int = Field(alias="jobId")
    entry_id: int = Field(alias="entryId")
    entry: ExecutionLogEntry

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        if isinstance(data, dict) and "entry" not in data:
            data = fold_keys(cls, data)
            return {
                "executorName": data.get("executorName"),
                "jobId": data.get("jobId"),
                "entryId": data.get("entryId"),
                "entry": data,
            }
        return data

    def to_wire(self) -> dict[str, Any]:
        return {
            "executorName": self.executor_name,
            "jobId": self.job_id,
            "entryId": self.entry_id,
            **self.entry.to_wire(),
        }


class MarkCompleteRequest(WireModel):
    """Body of `markComplete`."""

    executor_name: str = Field(alias="executorName")
    job_id: int = Field(alias="jobId")


class MarkErroredRequest(WireModel):
    """Body of `markErrored` and `markFailed`."""

    executor_name: str = Field(alias="executorName")
    job_id: int = Field(alias="jobId")
    error_message: str = Field(default="", alias="errorMessage")


def _ids_as_strings(value: Any) -> Any:
    # The server accepts ints, floats or strings in any mix; normalise to strings.
    if value is None:
        return []
    if isinstance(value, list):
        return [
            str(int(v)) if isinstance(v, int | float) and not isinstance(v, bool) else v
            for v in value
        ]
    return value


class QueueJobIDs(WireModel):
    """One queue's running job IDs in a multi-queue heartbeat."""

    queue_name: str = Field(alias="queueName")
    job_ids: list[str] = Field(default_factory=list, alias="jobIds")

    _ids = field_validator("job_ids", mode="before")(_ids_as_strings)


class _Telemetry(WireModel):
    os: str = Field(default="", alias="os")
    architecture: str = Field(default="", alias="architecture")
    docker_version: str = Field(default="", alias="dockerVersion")
    executor_version: str = Field(default="", alias="executorVersion")
    git_version: str = Field(default="", alias="gitVersion")
    ignite_version: str = Field(default="", alias="igniteVersion")
    src_cli_version: str = Field(default="", alias="srcCliVersion")
    prometheus_metrics: str = Field(default="", alias="prometheusMetrics")


class HeartbeatRequest(_Telemetry):
    """Multi-queue heartbeat and the startup ping (string job IDs)."""

    _omitempty = frozenset({"jobIds", "jobIdsByQueue", "queueNames"})

    version: str = Field(default="", alias="version")
    executor_name: str = Field(alias="executorName")
    job_ids: list[str] = Field(default_factory=list, alias="jobIds")
    job_ids_by_queue: list[QueueJobIDs] = Field(default_factory=list, alias="jobIdsByQueue")
    queue_names: list[str] = Field(default_factory=list, alias="queueNames")

    _ids = field_validator("job_ids", mode="before")(_ids_as_strings)
    _lists = field_validator("job_ids_by_queue", "queue_names", mode="before")(none_to_empty_list)

    def to_wire(self) -> dict[str, Any]:
        out = super().to_wire()
        head = ["version", "executorName", "jobIds", "jobIdsByQueue", "queueNames"]
        return reorder(out, head + [k for k in out if k not in head])


class HeartbeatRequestV1(_Telemetry):
    """Single-queue heartbeat: integer `jobIds`, `null` when nothing runs, version `V2`."""

    version: str = Field(default="V2", alias="version")
    executor_name: str = Field(alias="executorName")
    job_ids: list[int] | None = Field(default=None, alias="jobIds")

    @field_validator("job_ids", mode="before")
    @classmethod
    def _int_ids(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [int(v) for v in value]
        return value

    def to_wire(self) -> dict[str, Any]:
        out = super().to_wire()
        head = ["version", "executorName", "jobIds"]
        return reorder(out, head + [k for k in out if k not in head])


class HeartbeatResponse(WireModel):
    """`{"knownIds": […], "cancelIds": […]}`; `null` means empty, numbers become strings."""

    known_ids: list[str] = Field(default_factory=list, alias="knownIds")
    cancel_ids: list[str] = Field(default_factory=list, alias="cancelIds")

    _ids = field_validator("known_ids", "cancel_ids", mode="before")(_ids_as_strings)

    def to_wire(self) -> dict[str, Any]:
        return {"knownIds": self.known_ids or None, "cancelIds": self.cancel_ids or None}
