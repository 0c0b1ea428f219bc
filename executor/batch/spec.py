"""Batch spec models, YAML parsing and validation (classic ``version`` 1/2 specs).

Owns: the pydantic models of a batch spec (``name``, ``on``, ``workspaces``, ``steps``,
``transformChanges``, ``importChangesets``, ``changesetTemplate``), :func:`parse_batch_spec`
and the Go JSON form of a step (:func:`step_to_go`) used by cache keys and ``input.json``.

Must not know: templates, docker, git, the queue API.

Facts (sourcegraph/src-cli ``lib/batches/batch_spec.go``, ``lib/batches/yaml/validate.go``,
``lib/batches/jsonschema/jsonschema.go``):

* YAML is decoded with yaml.v3 (YAML 1.2 booleans: ``on:`` stays a string key), converted
  to JSON, validated against the schema; every schema error is reported, ``(root): ``
  stripped; ``name: Does not match pattern ...`` becomes :data:`NAME_PATTERN_MESSAGE`.
* Then: ``batch spec includes steps but no changesetTemplate``; per step i (1-based)
  ``step %d mount path contains invalid characters`` / ``... mount mountpoint ...`` /
  ``... files target path ...`` when the value contains one of ``,"\\n\\r`` (docker parses
  ``--mount`` as CSV).
* Several errors print as ``N errors occurred:\\n\\t* e1\\n\\t* e2``.
* ``Step`` JSON tags: ``run``, ``container``, ``files``, ``outputs``, ``mount``, ``if`` are
  ``omitempty``; ``env`` is always written; ``if`` keeps its type (``true`` != ``"true"``).
"""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from executor.batch.env import Environment
from executor.batch.gojson import GoStruct, format_float
from executor.batch.jsonschema import validate
from executor.batch.spec_schema import BATCH_SPEC_SCHEMA

__all__ = [
    "NAME_PATTERN_MESSAGE",
    "BatchSpec",
    "BatchSpecValidationError",
    "ChangesetTemplate",
    "ExpandedGitCommitDescription",
    "GitCommitAuthor",
    "ImportChangeset",
    "Mount",
    "OnQueryOrRepository",
    "Output",
    "Step",
    "StepEnv",
    "TransformChanges",
    "TransformChangesGroup",
    "WorkspaceConfiguration",
    "load_yaml",
    "parse_batch_spec",
    "parse_batch_spec_once",
    "step_to_go",
]

NAME_PATTERN_MESSAGE = (
    "The batch change name can only contain word characters, dots and dashes. "
    "No whitespace or newlines allowed."
)
_INVALID_MOUNT_CHARACTERS = ',"\n\r'


class BatchSpecValidationError(ValueError):
    """The spec is invalid; ``errors`` holds every message, each naming its field path."""

    def __init__(self, errors: list[str]) -> None:
        self.errors: list[str] = list(errors)
        if len(self.errors) == 1:
            text = self.errors[0]
        else:
            lines = "".join(f"\n\t* {e}" for e in self.errors)
            text = f"{len(self.errors)} errors occurred:{lines}"
        super().__init__(text)


StepEnv = Annotated[
    Environment,
    PlainValidator(Environment.parse),
    PlainSerializer(lambda env: env.to_go(), return_type=Any),
]

_MODEL = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


class OnQueryOrRepository(BaseModel):
    model_config = _MODEL

    repositories_matching_query: str = Field("", alias="repositoriesMatchingQuery")
    repository: str = Field("", alias="repository")
    branch: str = Field("", alias="branch")
    branches: list[str] | None = Field(None, alias="branches")

    def get_branches(self) -> list[str] | None:
        """``GetBranches``: ``branch`` wins; both set is ``both branch and branches specified``."""
        if self.branch:
            if self.branches:
                raise BatchSpecValidationError(["both branch and branches specified"])
            return [self.branch]
        return self.branches


class WorkspaceConfiguration(BaseModel):
    model_config = _MODEL

    root_at_location_of: str = Field("", alias="rootAtLocationOf")
    in_: str = Field("", alias="in")
    only_fetch_workspace: bool = Field(False, alias="onlyFetchWorkspace")


class Output(BaseModel):
    model_config = _MODEL

    value: str = Field("", alias="value")
    format: str = Field("", alias="format")


class Mount(BaseModel):
    model_config = _MODEL

    mountpoint: str = Field("", alias="mountpoint")
    path: str = Field("", alias="path")


class Step(BaseModel):
    """One step; also the shape of ``input.json``'s ``steps`` items."""

    model_config = _MODEL

    run: str = Field("", alias="run")
    container: str = Field("", alias="container")
    env: StepEnv = Field(default_factory=Environment, alias="env")
    files: dict[str, str] | None = Field(None, alias="files")
    outputs: dict[str, Output] | None = Field(None, alias="outputs")
    mount: list[Mount] | None = Field(None, alias="mount")
    if_: bool | str | None = Field(None, alias="if")

    def if_condition(self) -> str:
        """``IfCondition``: ``true``/``false`` for booleans, the string, else ``""``."""
        if isinstance(self.if_, bool):
            return "true" if self.if_ else "false"
        return self.if_ if isinstance(self.if_, str) else ""


class GitCommitAuthor(BaseModel):
    model_config = _MODEL

    name: str = Field("", alias="name")
    email: str = Field("", alias="email")


class ExpandedGitCommitDescription(BaseModel):
    model_config = _MODEL

    message: str = Field("", alias="message")
    author: GitCommitAuthor | None = Field(None, alias="author")


class ChangesetTemplate(BaseModel):
    model_config = _MODEL

    title: str = Field("", alias="title")
    body: str = Field("", alias="body")
    branch: str = Field("", alias="branch")
    fork: bool | None = Field(None, alias="fork")
    commit: ExpandedGitCommitDescription = Field(
        default_factory=ExpandedGitCommitDescription, alias="commit"
    )
    # null, true/false, "draft", or [{"<glob>[@<branch>]": true|false|"draft"}, ...].
    published: bool | str | list[dict[str, bool | str]] | None = Field(None, alias="published")


class TransformChangesGroup(BaseModel):
    model_config = _MODEL

    directory: str = Field("", alias="directory")
    branch: str = Field("", alias="branch")
    repository: str = Field("", alias="repository")


class TransformChanges(BaseModel):
    model_config = _MODEL

    group: list[TransformChangesGroup] | None = Field(None, alias="group")


class ImportChangeset(BaseModel):
    model_config = _MODEL

    repository: str = Field("", alias="repository")
    external_ids: list[str | int] | None = Field(None, alias="externalIDs")


class BatchSpec(BaseModel):
    model_config = _MODEL

    version: int = Field(0, alias="version")
    name: str = Field("", alias="name")
    description: str = Field("", alias="description")
    on: list[OnQueryOrRepository] | None = Field(None, alias="on")
    workspaces: list[WorkspaceConfiguration] | None = Field(None, alias="workspaces")
    steps: list[Step] | None = Field(None, alias="steps")
    transform_changes: TransformChanges | None = Field(None, alias="transformChanges")
    import_changesets: list[ImportChangeset] | None = Field(None, alias="importChangesets")
    changeset_template: ChangesetTemplate | None = Field(None, alias="changesetTemplate")

    def required_env_vars(self) -> list[str]:
        """``RequiredEnvVars``: pass-through env names of all steps, deduplicated, in order."""
        seen: dict[str, None] = {}
        for step in self.steps or []:
            for name in step.env.outer_vars():
                seen.setdefault(name, None)
        return list(seen)


def step_to_go(step: Step) -> GoStruct:
    """The step as Go's ``json.Marshal(batches.Step)`` orders and omits its fields."""
    fields: list[tuple[str, Any]] = []
    if step.run:
        fields.append(("run", step.run))
    if step.container:
        fields.append(("container", step.container))
    fields.append(("env", step.env.to_go()))
    if step.files:
        fields.append(("files", dict(step.files)))
    if step.outputs:
        outputs = {}
        for name, out in step.outputs.items():
            pairs = [(k, v) for k, v in (("value", out.value), ("format", out.format)) if v]
            outputs[name] = GoStruct.of(pairs)
        fields.append(("outputs", outputs))
    if step.mount:
        mounts = [GoStruct.of([("mountpoint", m.mountpoint), ("path", m.path)]) for m in step.mount]
        fields.append(("mount", mounts))
    if step.if_ is not None:
        fields.append(("if", step.if_))
    return GoStruct.of(fields)


def _json_key(key: Any) -> str:
    # ghodss/yaml turns non-string keys into their JSON text.
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float):
        return format_float(key)
    return "null" if key is None else str(key)


def _normalize(node: Any) -> Any:
    """Turn loaded YAML into JSON values: str keys, integral floats as ints (Go's ``1``)."""
    if isinstance(node, dict):
        return {_json_key(k): _normalize(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_normalize(v) for v in node]
    if isinstance(node, float) and node.is_integer() and abs(node) < 1e21:
        return int(node)
    if isinstance(node, _dt.datetime | _dt.date):
        return node.isoformat()
    return node


def load_yaml(text: str) -> Any:
    """Load YAML 1.2 (``on``/``yes`` stay strings) into plain JSON-shaped values."""
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    try:
        return _normalize(yaml.load(text))
    except YAMLError as exc:
        raise BatchSpecValidationError([f"failed to normalize JSON: {exc}"]) from exc


def _semantic_errors(spec: BatchSpec) -> list[str]:
    errors: list[str] = []
    if spec.steps and spec.changeset_template is None:
        errors.append("batch spec includes steps but no changesetTemplate")
    for number, step in enumerate(spec.steps or [], start=1):
        for mount in step.mount or []:
            if any(c in mount.path for c in _INVALID_MOUNT_CHARACTERS):
                errors.append(f"step {number} mount path contains invalid characters")
            if any(c in mount.mountpoint for c in _INVALID_MOUNT_CHARACTERS):
                errors.append(f"step {number} mount mountpoint contains invalid characters")
        for target in step.files or {}:
            if any(c in target for c in _INVALID_MOUNT_CHARACTERS):
                errors.append(f"step {number} files target path contains invalid characters")
    return errors


def parse_batch_spec(text: str) -> BatchSpec:
    """Parse and validate a batch spec; raise :class:`BatchSpecValidationError` with all errors."""
    document = load_yaml(text)
    problems = validate(BATCH_SPEC_SCHEMA, document)
    if problems:
        messages = []
        for problem in problems:
            message = str(problem)
            if "name: Does not match pattern" in message:
                message = NAME_PATTERN_MESSAGE
            messages.append(message)
        raise BatchSpecValidationError(messages)
    spec = BatchSpec.model_validate(document)
    errors = _semantic_errors(spec)
    if errors:
        raise BatchSpecValidationError(errors)
    return spec


@lru_cache(maxsize=8)
def parse_batch_spec_once(text: str) -> BatchSpec:
    """`parse_batch_spec`, remembered for the last few texts: the sandbox's mark hook needs a
    batch change's spec for each of its jobs, and a spec over 20,000 repositories is 1 MB of
    YAML that took seconds to parse each time (`bench.batch20k`). Keyed by the text itself, so
    no other spec can be served; the caller must not modify the result."""
    return parse_batch_spec(text)
