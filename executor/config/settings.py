"""Every `EXECUTOR_*` setting: typed, defaulted as Sourcegraph does, described, validated at once.

Source: `cmd/executor/internal/config/config.go`.
Values parse the way Go parses them there: durations with `time.ParseDuration` (`1s`, `30m`),
booleans with `strconv.ParseBool`, integers with `strconv.Atoi`, sizes such as `12G`.
Every problem is collected and reported together, each naming its variable; secrets never
appear in a message (the token and the docker auth config are also scrubbed from every other
message, in case one was pasted into the wrong variable).

Every integer, duration and size setting has an accepted range (`ranges.RANGES`), checked
here: out-of-range values are reported with the rest, naming the range. `0` keeps the meaning
Sourcegraph gives it where it gives one (no CPU or memory bound, no job-count or active-time
limit, no per-job deadline); see `ranges` for each setting.

Deviations, on purpose:
- `EXECUTOR_USE_FIRECRACKER` defaults to false; switched on, it is one "not supported" error.
- The Kubernetes runtime's variables (`EXECUTOR_KUBERNETES_*`, `KUBERNETES_*`, the runtime
  selection) are parsed by `executor.config.kubernetes`, reported with the rest: `.kubernetes`.
- `EXECUTOR_FRONTEND_PASSWORD_FILE` may hold the token instead of the environment.
- Our additions are marked "(ours)" in their descriptions.

This is the only module that reads the process environment (it is handed a mapping); it knows
no other module of the project.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from executor.config.goparse import (
    TRUE_SPELLINGS,
    format_go_duration,
    parse_data_size,
    parse_go_bool,
    parse_go_duration,
    parse_go_int,
)
from executor.config.kubernetes import KubernetesSettings, kubernetes_help, load_kubernetes
from executor.config.ranges import RANGES, parse_min_free
from executor.errors import ConfigError
from executor.redaction import Redactor

__all__ = [
    "VALID_QUEUE_NAMES",
    "Settings",
    "format_go_duration",
    "help_text",
    "load_settings",
    "no_effect",
    "parse_data_size",
    "parse_go_bool",
    "parse_go_duration",
]

VALID_QUEUE_NAMES = ("batches", "codeintel")
PREFIX = "EXECUTOR_"


def _size(value: object) -> str:
    text = str(value)
    if text not in ("", "0"):
        parse_data_size(text)
    return text


GoDuration = Annotated[float, BeforeValidator(parse_go_duration)]
GoBool = Annotated[bool, BeforeValidator(parse_go_bool)]
GoInt = Annotated[int, BeforeValidator(parse_go_int)]
DataSize = Annotated[str, BeforeValidator(_size)]


class Settings(BaseModel):
    """The executor's configuration. Build it with `load_settings(os.environ)`.

    A plain pydantic model, not pydantic-settings' `BaseSettings`: `load_settings` reads the
    environment itself (Sourcegraph's fallback names, the token file, every problem at once),
    so a settings source had nothing left to do, and importing pydantic-settings (with
    python-dotenv and its sources: 30 modules) cost an idle daemon ~1 MiB (`bench.idle`).
    `validate_default` is what `BaseSettings` set: the defaults go through Go's parsing and
    the range checks too.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, validate_default=True)
    _kubernetes: KubernetesSettings = PrivateAttr(default_factory=KubernetesSettings)

    frontend_url: str = Field(default="", description="Base URL of the Sourcegraph instance.")
    frontend_password: SecretStr = Field(
        default=SecretStr(""),
        description="The shared executor access token (site config executors.accessToken).",
    )
    frontend_password_file: str = Field(
        default="", description="(ours) A file holding the access token instead of the env."
    )
    queue_name: str = Field(default="", description="The single queue to process.")
    queue_names: str = Field(default="", description="Comma-separated queues to process.")
    queue_poll_interval: GoDuration = Field(
        default=1.0, description="Delay between dequeues when the queue was empty."
    )
    maximum_num_jobs: GoInt = Field(default=1, description="Number of concurrent jobs.")
    use_firecracker: GoBool = Field(
        default=False, description="Firecracker isolation (not supported here; must be false)."
    )
    keep_workspaces: GoBool = Field(default=False, description="Keep workspaces after jobs.")
    docker_host_mount_path: str = Field(
        default="", description="Docker-in-Docker: host path that holds the workspaces."
    )
    docker_additional_mounts: str = Field(
        default="", description="Semicolon-separated docker --mount specs for every step."
    )
    job_num_cpus: GoInt = Field(default=4, description="CPUs per job (0 = unbounded).")
    job_memory: DataSize = Field(default="12G", description="Memory per job (0 = unbounded).")
    firecracker_disk_space: DataSize = Field(default="20G", description="Disk per job.")
    maximum_runtime_per_job: GoDuration = Field(
        default=1800.0, description="Per-job deadline (0 = none)."
    )
    cleanup_task_interval: GoDuration = Field(default=60.0, description="Janitor interval.")
    num_total_jobs: GoInt = Field(default=0, description="Exit 0 after this many jobs (0 = ∞).")
    max_active_time: GoDuration = Field(default=0.0, description="Exit 0 after this time (0 = ∞).")
    docker_registry_mirror_url: str = Field(
        default="", description="Comma-separated registry mirrors the engine must list."
    )
    docker_add_host_gateway: GoBool = Field(
        default=False, description="Add host.docker.internal:host-gateway to step containers."
    )
    docker_auth_config: str = Field(
        default="", description='Docker config JSON {"auths":{...}} for pulling step images.'
    )
    vm_prefix: str = Field(default="executor", description="Name prefix for VMs (Firecracker).")
    firecracker_image: str = Field(default="", description="VM base image (Firecracker).")
    firecracker_kernel_image: str = Field(default="", description="VM kernel image (Firecracker).")
    firecracker_sandbox_image: str = Field(
        default="", description="Ignite sandbox image (Firecracker)."
    )
    firecracker_bandwidth_ingress: GoInt = Field(
        default=524288000, description="VM ingress bytes/s (Firecracker)."
    )
    firecracker_bandwidth_egress: GoInt = Field(
        default=524288000, description="VM egress bytes/s (Firecracker)."
    )
    vm_startup_script_path: str = Field(
        default="", description="Script run in each VM before the job (Firecracker)."
    )
    health_server_addr: str = Field(
        default="",
        description=(
            "host:port of the health server (GET /healthz, /metrics), served from the event"
            " loop; Sourcegraph's Helm chart sets :8080 (default: off)."
        ),
    )
    min_free_disk: str = Field(
        default="5%",
        description=(
            "(ours) Dequeue only while the workspace filesystem has this much free space and"
            " inodes: a size (2G) or a percentage (5%) of the filesystem; 0 = no check."
        ),
    )
    heartbeat_interval: GoDuration = Field(default=5.0, description="(ours) Heartbeat period.")
    docker_stop_timeout: GoDuration = Field(
        default=5.0, description="(ours) Grace between docker stop's SIGTERM and SIGKILL."
    )
    step_network: str = Field(default="", description="(ours) docker --network for steps.")
    job_pids_limit: GoInt = Field(
        default=4096, description="(ours) --pids-limit per step container (0 = none)."
    )
    cleanup_image: str = Field(
        default="busybox:stable",
        description=(
            "(ours) Image for the root cleanup container that removes root-owned files a step"
            " left in a workspace; a local step image of the job is preferred (no pull)."
        ),
    )
    log_entry_max_bytes: DataSize = Field(
        default="16M", description="(ours) Output kept per log entry: head and tail past this."
    )
    repo_cache_size: DataSize = Field(
        default="5G",
        description=(
            "(ours) Bound of the host's repository cache (least recently used repositories go"
            " first); 0 turns it off."
        ),
    )
    repo_cache_dir: str = Field(
        default="",
        description="(ours) Repository cache directory (default <TMPDIR>/executor-repo-cache).",
    )
    metrics_port: GoInt = Field(default=0, description="(ours) Port for /metrics (0 = off).")
    metrics_host: str = Field(default="127.0.0.1", description="(ours) Address for /metrics.")
    log_format: str = Field(
        default="auto", description="(ours) auto (console on a TTY, else JSON), json or console."
    )

    @field_validator(*RANGES, mode="after")
    @classmethod
    def _in_range(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs after Go's parsing succeeded: the value is an int, seconds, or a size string.
        assert info.field_name is not None
        RANGES[info.field_name].check(value)
        return value

    @property
    def queues(self) -> list[str]:
        """The queues to poll, in configured order."""
        if self.queue_names:
            return self.queue_names.split(",")
        return [self.queue_name] if self.queue_name else []

    @property
    def token(self) -> str:
        """The executor access token (keep it out of logs: it is redacted everywhere)."""
        return self.frontend_password.get_secret_value()

    @property
    def min_free(self) -> tuple[float, int]:
        """`EXECUTOR_MIN_FREE_DISK` as (fraction of the filesystem, bytes): one is 0."""
        return parse_min_free(self.min_free_disk)

    @property
    def log_entry_max(self) -> int:
        return parse_data_size(self.log_entry_max_bytes)

    @property
    def repo_cache_bytes(self) -> int:
        return parse_data_size(self.repo_cache_size) if self.repo_cache_size else 0

    @property
    def kubernetes(self) -> KubernetesSettings:
        """The Kubernetes runtime's settings (`executor.config.kubernetes`)."""
        return self._kubernetes

    @property
    def runtime(self) -> str:
        """`docker` or `kubernetes` (`executor.config.kubernetes.select_runtime`)."""
        return self._kubernetes.runtime

    @property
    def executor_name(self) -> str:
        """`<hostname>-<uuid>`, fixed for the life of this Settings object."""
        return _executor_name()


_NAME_CACHE: dict[str, str] = {}


def _executor_name() -> str:
    if "name" not in _NAME_CACHE:
        _NAME_CACHE["name"] = f"{socket.gethostname()}-{uuid.uuid4()}"
    return _NAME_CACHE["name"]


#: Sourcegraph variables that only the Firecracker runtime reads (`config.go`): parsed as Go
#: parses them (a bad value is still an error), and when set, reported by `no_effect`.
FIRECRACKER_ONLY = (
    "vm_prefix",
    "firecracker_image",
    "firecracker_kernel_image",
    "firecracker_sandbox_image",
    "firecracker_bandwidth_ingress",
    "firecracker_bandwidth_egress",
    "vm_startup_script_path",
)


def no_effect(environ: Mapping[str, str]) -> list[str]:
    """A warning for each set variable that does nothing with the Docker runtime."""
    return [
        f"{PREFIX}{name.upper()} is set but has no effect with the docker runtime"
        for name in FIRECRACKER_ONLY
        if environ.get(PREFIX + name.upper())
    ]


# Sourcegraph's fallback names for two variables.
_FALLBACKS = {"JOB_NUM_CPUS": "FIRECRACKER_NUM_CPUS", "JOB_MEMORY": "FIRECRACKER_MEMORY"}
_SECRET_FIELDS = {"frontend_password", "docker_auth_config"}


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Parse and validate settings from `environ`; raise ConfigError listing every problem."""
    values: dict[str, Any] = {}
    variables: dict[str, str] = {}  # field → the variable that set it (a fallback name, maybe)
    for name in Settings.model_fields:
        key = PREFIX + name.upper()
        raw = environ.get(key)
        if raw is None and name.upper() in _FALLBACKS:
            key = PREFIX + _FALLBACKS[name.upper()]
            raw = environ.get(key)
        if raw is not None and raw != "":
            values[name] = raw
            variables[name] = key
    problems: list[str] = []
    problems += _token_from_file(values)
    problems += _unsupported(values)
    settings: Settings | None = None
    try:
        settings = Settings(**values)
    except ValidationError as err:
        for item in err.errors():
            field = str(item["loc"][0]) if item["loc"] else "?"
            message = str(item["msg"]).removeprefix("Value error, ")
            shown = "" if field in _SECRET_FIELDS else str(values.get(field, ""))
            variable = variables.get(field, PREFIX + field.upper())
            problems.append(f'invalid value "{shown}" for {variable}: {message}')
    problems += _cross_field(values)
    kubernetes, kube_problems = load_kubernetes(environ)
    problems += kube_problems
    if problems:
        raise ConfigError(_scrub(problems, values))
    assert settings is not None
    settings._kubernetes = kubernetes
    return settings


def _scrub(problems: list[str], values: Mapping[str, Any]) -> list[str]:
    """SECURITY: no message may carry a secret (in any form `executor.redaction` knows), even
    one set in the wrong variable. Secrets shorter than 4 characters are not scrubbed (they
    would garble every message)."""
    secrets = [str(values.get(name) or "") for name in sorted(_SECRET_FIELDS)]
    redactor = Redactor.for_secrets(secrets, "[REDACTED]", min_length=4)
    return [redactor.redact(p) for p in problems]


def _token_from_file(values: dict[str, Any]) -> list[str]:
    path = values.pop("frontend_password_file", "")
    if not path:
        if not values.get("frontend_password"):
            return [f'invalid value "" for {PREFIX}FRONTEND_PASSWORD: no value supplied']
        return []
    if values.get("frontend_password"):
        return [
            f"{PREFIX}FRONTEND_PASSWORD and {PREFIX}FRONTEND_PASSWORD_FILE are both set; "
            "set only one"
        ]
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        return [f"{PREFIX}FRONTEND_PASSWORD_FILE: cannot read {path}: {err.strerror}"]
    if not token:
        return [f"{PREFIX}FRONTEND_PASSWORD_FILE: {path} is empty"]
    values["frontend_password"] = token
    values["frontend_password_file"] = path
    return []


def _unsupported(values: dict[str, Any]) -> list[str]:
    if str(values.get("use_firecracker")) not in TRUE_SPELLINGS:
        return []
    return [
        f"{PREFIX}USE_FIRECRACKER=true: Firecracker is not supported by this executor; "
        "unset it or set it to false to run jobs in Docker"
    ]


def _cross_field(values: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    free = values.get("min_free_disk")
    if free is not None:
        try:
            parse_min_free(str(free))
        except ValueError as err:
            problems.append(f'invalid value "{free}" for {PREFIX}MIN_FREE_DISK: {err}')
    url = str(values.get("frontend_url", ""))
    if not url:
        problems.append(f'invalid value "" for {PREFIX}FRONTEND_URL: no value supplied')
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(
                f"{PREFIX}FRONTEND_URL must be in the format scheme://host (and optionally :port)"
            )
        elif parts.hostname == "host.docker.internal":
            gateway = str(values.get("docker_add_host_gateway", "false"))
            if gateway not in TRUE_SPELLINGS:
                problems.append(
                    "Making the executor talk to host.docker.internal but not allowing host "
                    f"gateway access using {PREFIX}DOCKER_ADD_HOST_GATEWAY can cause "
                    "connectivity problems"
                )
    single, multi = values.get("queue_name", ""), values.get("queue_names", "")
    if bool(single) == bool(multi):
        problems.append(f"exactly one of {PREFIX}QUEUE_NAME or {PREFIX}QUEUE_NAMES must be set")
    names = [str(single)] if single else str(multi).split(",")
    bad = [n for n in names if n and n not in VALID_QUEUE_NAMES] + [n for n in names if not n]
    if (single or multi) and bad:
        var = "QUEUE_NAME" if single else "QUEUE_NAMES"
        problems.append(
            f"invalid queue name(s) {', '.join(repr(b) for b in bad)} in {PREFIX}{var}; "
            f"supported queue names are {', '.join(VALID_QUEUE_NAMES)}"
        )
    auth = values.get("docker_auth_config")
    if auth:
        try:
            parsed = json.loads(str(auth))
            if not isinstance(parsed, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            # The message is json's own (a position), never the secret text itself.
            detail = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
            problems.append(f"invalid {PREFIX}DOCKER_AUTH_CONFIG, failed to parse: {detail}")
    for spec in filter(None, str(values.get("docker_additional_mounts", "")).split(";")):
        targets = [
            p for p in spec.split(",") if p.split("=")[0] in ("target", "dst", "destination")
        ]
        if len(targets) > 1:
            problems.append(
                f"invalid {PREFIX}DOCKER_ADDITIONAL_MOUNTS, failed to parse due to incorrect "
                "separator"
            )
    return problems


def help_text() -> str:
    """Every variable with its default, description and accepted range, for `run --help`."""
    lines = ["Environment variables:"]
    for name, field in Settings.model_fields.items():
        default = field.default
        accepted = RANGES.get(name)
        if isinstance(default, SecretStr):
            default = ""
        if accepted is not None and accepted.kind == "duration":
            default = format_go_duration(float(default))
        elif isinstance(default, bool):
            default = str(default).lower()
        shown = f" (default: {default})" if default not in ("", None) else ""
        lines.append(f"  {PREFIX}{name.upper():<34} {field.description}{shown}")
        if accepted is not None:
            lines.append(f"  {'':<{len(PREFIX) + 34}} accepts {accepted.describe()}")
    lines.append("Kubernetes runtime (docs/kubernetes.md):")
    lines += kubernetes_help()
    return "\n".join(lines)
