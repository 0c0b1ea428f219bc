"""The dequeue request and the job payload (v1 and v2), as on the wire.

Part of `executor.wire`; see its docstring. Sources: `internal/executor/types/job.go`,
`internal/executor/types/http.go` (spec §2.5, §3).

Hygiene the Go types do not have (a hostile or broken payload must fail as a malformed payload,
naming its field, not deep inside a step):
- a NUL byte in any string (or map key) of the payload is refused, as
  `<location>: contains a NUL byte`; file content is exempt (it is data, and binary in v2);
- each `env` entry of a step must be `NAME=value` with a non-empty name free of newlines.
  Sourcegraph passes entries through as `docker run -e <entry>`
  (`cmd/executor/internal/worker/command/docker.go`, `dockerEnvFlags`), and `-e NAME` without
  `=` makes docker copy NAME from the executor's own environment into the step; here it is a
  malformed payload instead.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from pydantic import Field, field_validator, model_validator

from executor.wire.base import (
    ZERO_TIME,
    WireModel,
    fold_keys,
    format_go_time,
    none_to_empty_list,
)

__all__ = [
    "CliStep",
    "DequeueRequest",
    "DockerAuthConfig",
    "DockerAuthConfigAuth",
    "DockerStep",
    "Job",
    "VirtualMachineFile",
    "parse_record_uid",
    "record_uid",
]


class DequeueRequest(WireModel):
    """Body of `POST …/dequeue` (single- and multi-queue)."""

    _omitempty = frozenset({"queues", "numCPUs", "memory", "diskSpace"})

    queues: list[str] = Field(default_factory=list, alias="queues")
    executor_name: str = Field(alias="executorName")
    version: str = Field(default="", alias="version")
    num_cpus: int = Field(default=0, alias="numCPUs")
    memory: str = Field(default="", alias="memory")
    disk_space: str = Field(default="", alias="diskSpace")

    _lists = field_validator("queues", mode="before")(none_to_empty_list)


class VirtualMachineFile(WireModel):
    """A file to write into the workspace: inline `content`, or `bucket`/`key` of the files API."""

    _null_is_zero = True

    content: bytes = Field(default=b"", alias="content")
    bucket: str = Field(default="", alias="bucket")
    key: str = Field(default="", alias="key")
    modified_at: dt.datetime = Field(default=ZERO_TIME, alias="modifiedAt")

    @field_validator("content", mode="before")
    @classmethod
    def _content_bytes(cls, value: Any) -> Any:
        # Job.from_wire decodes v2 base64 before this runs; here text is v1's plain string.
        if value is None:
            return b""
        if isinstance(value, str):
            return value.encode("utf-8")
        return value

    def to_wire_versioned(self, version: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.content:
            out["content"] = (
                base64.b64encode(self.content).decode("ascii")
                if version == 2
                else self.content.decode("utf-8", errors="replace")
            )
        if self.bucket:
            out["bucket"] = self.bucket
        if self.key:
            out["key"] = self.key
        out["modifiedAt"] = format_go_time(self.modified_at)
        return out


def _check_env(env: list[str]) -> list[str]:
    """Each entry `NAME=value`; messages quote no value (an entry may hold a secret)."""
    for index, entry in enumerate(env):
        name, eq, _ = entry.partition("=")
        if not eq:
            raise ValueError(f"entry {index} is not NAME=value")
        if not name:
            raise ValueError(f"entry {index} has an empty name")
        if "\n" in name or "\r" in name:
            raise ValueError(f"entry {index} has a line break in its name")
    return env


def _find_nul(value: Any, loc: str = "", *, file_entry: bool = False) -> str | None:
    """Where the first NUL byte in a decoded JSON payload is (`None` if none). The location
    never quotes a `redactedValues` key (those are secrets) or a key holding the NUL."""
    if isinstance(value, str):
        return (loc or "payload") if "\0" in value else None
    if isinstance(value, list):
        for index, item in enumerate(value):
            if found := _find_nul(item, f"{loc}.{index}" if loc else str(index)):
                return found
        return None
    if not isinstance(value, dict):
        return None
    last = loc.rsplit(".", 1)[-1]
    for key, item in value.items():
        if isinstance(key, str) and "\0" in key:
            return f"{loc}: a key" if loc else "a key"
        if file_entry and str(key).lower() == "content":
            continue  # file content is data: NULs allowed
        child = loc if last == "redactedValues" else (f"{loc}.{key}" if loc else str(key))
        if found := _find_nul(item, child, file_entry=loc == "files"):
            return found
    return None


class DockerStep(WireModel):
    """A step run as `docker run … <image> <script>`; `commands` become the script's lines."""

    _null_is_zero = True

    _omitempty = frozenset({"key"})

    key: str = Field(default="", alias="key")
    image: str = Field(alias="image")
    commands: list[str] = Field(default_factory=list, alias="commands")
    dir: str = Field(default="", alias="dir")
    env: list[str] = Field(default_factory=list, alias="env")

    _env = field_validator("env", mode="after")(_check_env)


class CliStep(WireModel):
    """A `src` command run on the host; note the singular `command` on the wire."""

    _null_is_zero = True

    _omitempty = frozenset({"key"})

    key: str = Field(default="", alias="key")
    command: list[str] = Field(default_factory=list, alias="command")
    dir: str = Field(default="", alias="dir")
    env: list[str] = Field(default_factory=list, alias="env")

    _env = field_validator("env", mode="after")(_check_env)


class DockerAuthConfigAuth(WireModel):
    """One registry's credentials; `auth` is Go `[]byte`, i.e. base64 on the wire."""

    _null_is_zero = True

    auth: str = Field(default="", alias="auth")


class DockerAuthConfig(WireModel):
    """The subset of a docker CLI `config.json` that jobs may carry."""

    _null_is_zero = True

    _omitempty = frozenset({"auths"})

    auths: dict[str, DockerAuthConfigAuth] = Field(default_factory=dict, alias="auths")


class Job(WireModel):
    """A dequeued job (v1 or v2 payload; `version` 2 means base64 file content).

    Decoded as Go's `encoding/json` decodes `types.Job`: `null` leaves a field at its zero value
    (`""`, `false`, `0`, empty), and integers and booleans must be JSON numbers and booleans
    (`"id": true`, `"id": "42"`, `"fetchTags": "yes"` are refused, as Go refuses them). One
    deviation: `id` must be present and non-null; a job without an ID cannot be run or marked.
    """

    _null_is_zero = True
    _null_refused = frozenset({"id"})

    version: int = Field(default=1, alias="version", strict=True)
    id: int = Field(alias="id", strict=True)
    token: str = Field(default="", alias="token")
    queue: str = Field(default="", alias="queue")
    repository_name: str = Field(default="", alias="repositoryName")
    repository_directory: str = Field(default="", alias="repositoryDirectory")
    commit: str = Field(default="", alias="commit")
    fetch_tags: bool = Field(default=False, alias="fetchTags", strict=True)
    shallow_clone: bool = Field(default=False, alias="shallowClone", strict=True)
    sparse_checkout: list[str] = Field(default_factory=list, alias="sparseCheckout")
    files: dict[str, VirtualMachineFile] = Field(default_factory=dict, alias="files")
    docker_steps: list[DockerStep] = Field(default_factory=list, alias="dockerSteps")
    cli_steps: list[CliStep] = Field(default_factory=list, alias="cliSteps")
    redacted_values: dict[str, str] = Field(default_factory=dict, alias="redactedValues")
    docker_auth_config: DockerAuthConfig = Field(
        default_factory=DockerAuthConfig, alias="dockerAuthConfig"
    )

    @model_validator(mode="before")
    @classmethod
    def _decode_files(cls, data: Any) -> Any:
        """v2 file content is base64; 4.0 servers sent a bare string per file."""
        if not isinstance(data, dict):
            return data
        if where := _find_nul(data):
            raise ValueError(f"{where}: contains a NUL byte")
        data = fold_keys(cls, data)
        files = data.get("files")
        if not isinstance(files, dict):
            return data
        is_v2 = data.get("version") == 2
        decoded: dict[str, Any] = {}
        for path, entry in files.items():
            if isinstance(entry, str):
                entry = {"content": entry}
            if isinstance(entry, dict):
                entry = {k.lower() if k.lower() == "content" else k: v for k, v in entry.items()}
                content = entry.get("content")
                if is_v2 and isinstance(content, str):
                    try:
                        entry = {**entry, "content": base64.b64decode(content, validate=True)}
                    except (binascii.Error, ValueError) as err:
                        raise ValueError(f"files[{path!r}].content is not valid base64") from err
            decoded[path] = entry
        return {**data, "files": decoded}

    @property
    def record_uid(self) -> str:
        """`"42"` in single-queue mode, `"42-batches"` when the job came with a queue."""
        return record_uid(self.id, self.queue)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.version == 2:
            out["version"] = 2
        out["id"] = self.id
        out["token"] = self.token
        if self.queue:
            out["queue"] = self.queue
        out["repositoryName"] = self.repository_name
        out["repositoryDirectory"] = self.repository_directory
        out["commit"] = self.commit
        out["fetchTags"] = self.fetch_tags
        out["shallowClone"] = self.shallow_clone
        out["sparseCheckout"] = self.sparse_checkout or None
        out["files"] = {p: f.to_wire_versioned(self.version) for p, f in self.files.items()}
        out["dockerSteps"] = [s.to_wire() for s in self.docker_steps] or None
        out["cliSteps"] = [s.to_wire() for s in self.cli_steps] or None
        out["redactedValues"] = self.redacted_values or None
        if self.version == 2:
            out["dockerAuthConfig"] = self.docker_auth_config.to_wire()
        return out


def record_uid(job_id: int, queue: str) -> str:
    """Sourcegraph's RecordUID (§2.6)."""
    return f"{job_id}-{queue}" if queue else str(job_id)


def parse_record_uid(uid: str) -> tuple[int, str]:
    """Split `"42-batches"` into `(42, "batches")` and `"42"` into `(42, "")`."""
    head, _, queue = uid.partition("-")
    return int(head), queue
