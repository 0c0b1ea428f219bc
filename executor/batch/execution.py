"""The execution wire shapes: ``input.json``, ``AfterStepResult`` and JSON log events.

Owns: :class:`WorkspacesExecutionInput` (what the server writes as ``input.json``),
:class:`AfterStepResult` (the cached unit, v1 and v2), the ``LogEvent`` lines ``src batch
exec`` and batcheshelper print on stdout, their Go-exact serialisation and the parser the
server applies to a log entry's ``out``.

Must not know: how steps run, git, docker, templates, the queue client.

Facts:

* ``lib/batches/workspaces_execution_input.go`` (src-cli): ``BatchChangeAttributes`` has
  no JSON tag and its struct (``template.BatchChangeAttributes``) has none either, so the
  wire keys are ``BatchChangeAttributes`` / ``Name`` / ``Description`` (Go's decoder also
  accepts ``name``/``description``, so do we). ``skippedSteps`` is ``map[int]struct{}``.
* ``lib/batches/execution/results.go``: v2 = ``version, changedFiles, stdout, stderr,
  stepIndex, diff ([]byte: base64, nil → null), artifacts (omitempty), outputs, skipped``;
  v1 = no ``version``/``skipped`` and ``diff`` as a plain string. ``lib/batches/git/changes.go``:
  ``changedFiles`` = ``{modified, added, deleted, renamed}``, nil lists → ``null``.
* ``lib/batches/json_logs.go`` + ``internal/batches/ui/json_lines.go`` (src-cli) and
  batcheshelper ``log.go``: an event is ``json.NewEncoder(stdout).Encode(LogEvent{operation,
  timestamp: time.Now().UTC().Truncate(time.Millisecond), status, metadata (omitempty)})``.
  ``TaskStepMetadata`` v2 = ``version, taskID, step, runScript, env, out, diff (base64),
  outputs, exitCode, error``, all ``omitempty``; v1 has no ``version`` and a string diff.
  ``src batch exec`` logs ``TASK_STEP`` STARTED ``{taskID, step, env}``, PROGRESS ``{out}``,
  SUCCESS ``{diff, outputs}``, FAILURE ``{error, exitCode}``; ``TASK_STEP_SKIPPED`` PROGRESS
  ``{taskID, step}``; ``CACHE_AFTER_STEP_RESULT`` SUCCESS ``{key, value}``.
* ``ParseJSONLogsFromOutput`` (sourcegraph ``internal/batches/types``): split ``out`` on
  ``\\n``, keep lines starting with ``stdout: ``, decode, silently drop undecodable lines.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import time
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from executor.batch.gojson import GoStruct, GoTime, marshal
from executor.batch.spec import Step, step_to_go

__all__ = [
    "KNOWN_OPERATIONS",
    "AfterStepResult",
    "BatchChangeAttributes",
    "Changes",
    "Commit",
    "LogEvent",
    "LogEventStatus",
    "WorkspaceBranch",
    "WorkspaceRepo",
    "WorkspacesExecutionInput",
    "cache_after_step_result_metadata",
    "cache_entries",
    "format_event",
    "parse_log_events",
    "task_step_metadata",
    "task_step_skipped_metadata",
]

LogEventStatus = Literal["STARTED", "SUCCESS", "FAILURE", "PROGRESS"]

KNOWN_OPERATIONS = frozenset(
    {
        "PARSING_BATCH_SPEC", "RESOLVING_NAMESPACE", "PREPARING_DOCKER_IMAGES",
        "DETERMINING_WORKSPACE_TYPE", "DETERMINING_WORKSPACES", "CHECKING_CACHE",
        "EXECUTING_TASKS", "LOG_FILE_KEPT", "UPLOADING_CHANGESET_SPECS", "CREATING_BATCH_SPEC",
        "APPLYING_BATCH_SPEC", "BATCH_SPEC_EXECUTION", "EXECUTING_TASK",
        "TASK_BUILD_CHANGESET_SPECS", "TASK_SKIPPING_STEPS", "TASK_STEP_SKIPPED",
        "TASK_PREPARING_STEP", "TASK_STEP", "CACHE_AFTER_STEP_RESULT", "DOCKER_WATCH_DOG",
    }
)  # fmt: skip

_MODEL = ConfigDict(populate_by_name=True, extra="ignore")


class BatchChangeAttributes(BaseModel):
    model_config = _MODEL

    name: str = Field("", alias="Name", validation_alias=AliasChoices("Name", "name"))
    description: str = Field(
        "", alias="Description", validation_alias=AliasChoices("Description", "description")
    )

    def to_go(self) -> GoStruct:
        return GoStruct.of([("Name", self.name), ("Description", self.description)])


class WorkspaceRepo(BaseModel):
    model_config = _MODEL

    id: str = Field("", alias="id")
    name: str = Field("", alias="name")


class Commit(BaseModel):
    model_config = _MODEL

    oid: str = Field("", alias="oid")


class WorkspaceBranch(BaseModel):
    model_config = _MODEL

    name: str = Field("", alias="name")
    target: Commit = Field(default_factory=Commit, alias="target")


class Changes(BaseModel):
    model_config = _MODEL

    modified: list[str] | None = Field(None, alias="modified")
    added: list[str] | None = Field(None, alias="added")
    deleted: list[str] | None = Field(None, alias="deleted")
    renamed: list[str] | None = Field(None, alias="renamed")

    def to_go(self) -> GoStruct:
        return GoStruct.of(
            [
                ("modified", self.modified),
                ("added", self.added),
                ("deleted", self.deleted),
                ("renamed", self.renamed),
            ]
        )


class AfterStepResult(BaseModel):
    """The result after step ``step_index``; ``diff`` is the cumulative diff (bytes)."""

    model_config = _MODEL

    version: int = Field(0, alias="version")
    changed_files: Changes = Field(default_factory=Changes, alias="changedFiles")
    stdout: str = Field("", alias="stdout")
    stderr: str = Field("", alias="stderr")
    step_index: int = Field(0, alias="stepIndex")
    diff: bytes | None = Field(None, alias="diff")
    artifacts: dict[str, Any] | None = Field(None, alias="artifacts")
    outputs: dict[str, Any] | None = Field(None, alias="outputs")
    skipped: bool = Field(False, alias="skipped")

    @model_validator(mode="before")
    @classmethod
    def _decode_diff(cls, data: Any) -> Any:
        # v2 carries []byte (base64), v1 a plain string; decide on the wire `version`.
        if isinstance(data, Mapping) and isinstance(data.get("diff"), str):
            data = dict(data)
            if data.get("version") == 2:
                try:
                    data["diff"] = base64.b64decode(data["diff"], validate=True)
                except binascii.Error as exc:
                    raise ValueError(f"diff: illegal base64 data: {exc}") from exc
            else:
                data["diff"] = data["diff"].encode("utf-8", "surrogateescape")
        return data

    def to_go(self) -> GoStruct:
        fields: list[tuple[str, Any]] = []
        v2 = self.version == 2
        if v2:
            fields.append(("version", 2))
        fields += [
            ("changedFiles", self.changed_files.to_go()),
            ("stdout", self.stdout),
            ("stderr", self.stderr),
            ("stepIndex", self.step_index),
        ]
        if v2:
            fields.append(("diff", self.diff))
        else:
            fields.append(("diff", (self.diff or b"").decode("utf-8", "replace")))
        if self.artifacts:
            fields.append(("artifacts", self.artifacts))
        fields.append(("outputs", self.outputs))
        if v2:
            fields.append(("skipped", self.skipped))
        return GoStruct.of(fields)

    def to_json(self) -> str:
        """Exactly what Go's ``json.Marshal(AfterStepResult)`` prints."""
        return marshal(self.to_go())


class WorkspacesExecutionInput(BaseModel):
    """``input.json``: one workspace's job, as the server marshals it."""

    model_config = _MODEL

    batch_change_attributes: BatchChangeAttributes = Field(
        default_factory=BatchChangeAttributes, alias="BatchChangeAttributes"
    )
    repository: WorkspaceRepo = Field(default_factory=WorkspaceRepo, alias="repository")
    branch: WorkspaceBranch = Field(default_factory=WorkspaceBranch, alias="branch")
    path: str = Field("", alias="path")
    only_fetch_workspace: bool = Field(False, alias="onlyFetchWorkspace")
    steps: list[Step] | None = Field(None, alias="steps")
    search_result_paths: list[str] | None = Field(None, alias="searchResultPaths")
    cached_step_result_found: bool = Field(False, alias="cachedStepResultFound")
    cached_step_result: AfterStepResult = Field(
        default_factory=AfterStepResult, alias="cachedStepResult"
    )
    skipped_steps: dict[int, dict[str, Any]] | None = Field(None, alias="skippedSteps")

    def skipped_step_indices(self) -> frozenset[int]:
        return frozenset(self.skipped_steps or {})

    def to_json(self) -> str:
        """Go's ``json.Marshal`` of the struct (the server's bytes for ``input.json``)."""
        repo = self.repository
        branch = self.branch
        steps = None if self.steps is None else [step_to_go(s) for s in self.steps]
        skipped: dict[int, dict[str, Any]] | None = None
        if self.skipped_steps is not None:
            skipped = {k: {} for k in self.skipped_steps}
        return marshal(
            GoStruct.of(
                [
                    ("BatchChangeAttributes", self.batch_change_attributes.to_go()),
                    ("repository", GoStruct.of([("id", repo.id), ("name", repo.name)])),
                    (
                        "branch",
                        GoStruct.of(
                            [
                                ("name", branch.name),
                                ("target", GoStruct.of([("oid", branch.target.oid)])),
                            ]
                        ),
                    ),
                    ("path", self.path),
                    ("onlyFetchWorkspace", self.only_fetch_workspace),
                    ("steps", steps),
                    ("searchResultPaths", self.search_result_paths),
                    ("cachedStepResultFound", self.cached_step_result_found),
                    ("cachedStepResult", self.cached_step_result.to_go()),
                    ("skippedSteps", skipped),
                ]
            )
        )


def task_step_metadata(
    *,
    version: int = 2,
    task_id: str = "",
    step: int = 0,
    run_script: str = "",
    env: Mapping[str, str] | None = None,
    out: str = "",
    diff: bytes | None = None,
    outputs: Mapping[str, Any] | None = None,
    exit_code: int = 0,
    error: str = "",
) -> GoStruct:
    """``TaskStepMetadata`` as marshalled for ``version`` 2 (base64 diff) or 1 (string)."""
    candidates: list[tuple[str, Any]] = [
        ("version", version if version == 2 else 0),
        ("taskID", task_id),
        ("step", step),
        ("runScript", run_script),
        ("env", dict(env) if env else None),
        ("out", out),
        ("diff", (diff if version == 2 else diff.decode("utf-8", "replace")) if diff else None),
        ("outputs", dict(outputs) if outputs else None),
        ("exitCode", exit_code),
        ("error", error),
    ]
    # Every field is `omitempty`: zero numbers, empty strings, nil/empty maps vanish.
    return GoStruct.of([(k, v) for k, v in candidates if v])


def task_step_skipped_metadata(*, step: int, task_id: str = "") -> GoStruct:
    return GoStruct.of([(k, v) for k, v in (("taskID", task_id), ("step", step)) if v])


def cache_after_step_result_metadata(key: str, value: AfterStepResult) -> GoStruct:
    fields: list[tuple[str, Any]] = [("key", key)] if key else []
    return GoStruct.of([*fields, ("value", value.to_go())])


def format_event(
    operation: str,
    status: LogEventStatus,
    metadata: Any = None,
    *,
    now_ns: int | None = None,
) -> str:
    """One JSON log line (without the newline ``Encode`` appends), Go-exact.

    ``timestamp`` is UTC truncated to milliseconds and printed RFC3339Nano-style, so
    trailing zeros of the fraction are dropped (``...:01.12Z``, ``...:01Z``).
    """
    stamp = time.time_ns() if now_ns is None else now_ns
    stamp -= stamp % 1_000_000
    fields: list[tuple[str, Any]] = [
        ("operation", operation),
        ("timestamp", GoTime(stamp)),
        ("status", status),
    ]
    if metadata is not None and not (isinstance(metadata, Mapping) and not metadata):
        fields.append(("metadata", metadata))
    return marshal(GoStruct.of(fields))


class LogEvent(BaseModel):
    """A decoded log line; ``metadata`` stays JSON, see :func:`cache_entries`."""

    model_config = _MODEL

    operation: str = Field(alias="operation")
    timestamp: str = Field(alias="timestamp")
    status: str = Field(alias="status")
    metadata: dict[str, Any] | None = Field(None, alias="metadata")


_STDOUT_PREFIX = "stdout: "


def parse_log_events(out: str) -> list[LogEvent]:
    """Decode the ``stdout: {...}`` lines of a log entry's ``out``; skip everything else."""
    events: list[LogEvent] = []
    for line in out.split("\n"):
        if not line.startswith(_STDOUT_PREFIX):
            continue
        try:
            raw = json.loads(line[len(_STDOUT_PREFIX) :])
            event = LogEvent.model_validate(raw)
        except (ValueError, ValidationError):
            continue
        if event.operation not in KNOWN_OPERATIONS or not _is_rfc3339(event.timestamp):
            continue  # Go's LogEvent.UnmarshalJSON rejects these: the line is dropped.
        if event.operation == "CACHE_AFTER_STEP_RESULT":
            try:
                AfterStepResult.model_validate((event.metadata or {}).get("value") or {})
            except (ValueError, ValidationError):
                continue
        events.append(event)
    return events


def _is_rfc3339(text: str) -> bool:
    try:
        _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in text


def cache_entries(events: list[LogEvent]) -> list[tuple[str, AfterStepResult]]:
    """The ``(key, value)`` of every ``CACHE_AFTER_STEP_RESULT`` event, in order."""
    entries: list[tuple[str, AfterStepResult]] = []
    for event in events:
        if event.operation == "CACHE_AFTER_STEP_RESULT" and event.metadata is not None:
            value = AfterStepResult.model_validate(event.metadata.get("value") or {})
            entries.append((str(event.metadata.get("key", "")), value))
    return entries
