"""Every payload of Sourcegraph's executor queue API, named and shaped as on the wire.

Sources: `internal/executor/types/http.go`,
`internal/executor/types/job.go`, `internal/executor/store.go`.

Decoding follows Go's `encoding/json` as the frontend and executor use it:
- keys match case-insensitively (the server sends `knownIds`, old clients read `knownIDs`);
- unknown keys are ignored; `null` is accepted wherever a list or map is expected, and in a job
  payload `null` leaves any field at its zero value (`""`, `false`, `0`), except the job `id`;
- a job payload's integers and booleans must be JSON numbers and booleans (`"id": true` and
  `"fetchTags": "yes"` are refused, as Go refuses them);
- job IDs in heartbeats may be numbers or strings.

Encoding follows Go's marshal order (field order below) and `omitempty` (listed per model in
`_omitempty`). Job file content is plain text in v1 payloads and base64 in v2 payloads.

The models live in `base`, `job` and `requests`, and `decode` decodes a
dequeued job (naming the bad field, and the job itself when a payload is malformed but still
identifies it); this module is their one import path. Imports nothing else from the project;
knows no HTTP and no Docker.
"""

from __future__ import annotations

from executor.wire.base import ZERO_TIME, WireModel, format_go_time
from executor.wire.decode import MalformedJob, decode_job, describe_job_error, job_identity
from executor.wire.job import (
    CliStep,
    DequeueRequest,
    DockerAuthConfig,
    DockerAuthConfigAuth,
    DockerStep,
    Job,
    VirtualMachineFile,
    parse_record_uid,
    record_uid,
)
from executor.wire.requests import (
    AddExecutionLogEntryRequest,
    ExecutionLogEntry,
    HeartbeatRequest,
    HeartbeatRequestV1,
    HeartbeatResponse,
    MarkCompleteRequest,
    MarkErroredRequest,
    OutputPieces,
    QueueJobIDs,
    UpdateExecutionLogEntryRequest,
)

__all__ = [
    "ZERO_TIME",
    "AddExecutionLogEntryRequest",
    "CliStep",
    "DequeueRequest",
    "DockerAuthConfig",
    "DockerAuthConfigAuth",
    "DockerStep",
    "ExecutionLogEntry",
    "HeartbeatRequest",
    "HeartbeatRequestV1",
    "HeartbeatResponse",
    "Job",
    "MalformedJob",
    "MarkCompleteRequest",
    "MarkErroredRequest",
    "OutputPieces",
    "QueueJobIDs",
    "UpdateExecutionLogEntryRequest",
    "VirtualMachineFile",
    "WireModel",
    "decode_job",
    "describe_job_error",
    "format_go_time",
    "job_identity",
    "parse_record_uid",
    "record_uid",
]
