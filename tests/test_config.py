"""Config: Go parsing, Sourcegraph defaults, accepted ranges, cross-field rules, all errors at
once, no secret in any message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from executor.config.goparse import format_go_duration, parse_go_int
from executor.config.ranges import RANGES, Range, format_data_size
from executor.config.settings import (
    Settings,
    load_settings,
    no_effect,
    parse_data_size,
    parse_go_bool,
    parse_go_duration,
)
from executor.errors import ConfigError

BASE = {
    "EXECUTOR_FRONTEND_URL": "http://sourcegraph.test:3080",
    "EXECUTOR_FRONTEND_PASSWORD": "hunter2hunter2",
    "EXECUTOR_QUEUE_NAME": "batches",
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1),
        ("30m", 1800),
        ("1h", 3600),
        ("0", 0),
        ("1h30m", 5400),
        ("1.5s", 1.5),
        ("100ms", 0.1),
        ("2m3s", 123),
        ("-1s", -1),
        ("1us", 1e-6),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "1", "1x", "s", "1.s."])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="time: "):
        parse_go_duration(text)


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_true(text: str) -> None:
    assert parse_go_bool(text) is True


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_false(text: str) -> None:
    assert parse_go_bool(text) is False


@pytest.mark.parametrize("text", ["yes", "no", "on", "tRuE", ""])
def test_go_bool_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid syntax"):
        parse_go_bool(text)


def test_data_sizes() -> None:
    assert parse_data_size("12G") == 12 * 1024**3
    assert parse_data_size("512M") == 512 * 1024**2
    assert parse_data_size("1GB") == 1024**3
    assert parse_data_size("100") == 100
    with pytest.raises(ValueError):
        parse_data_size("12Q")


def test_defaults_match_sourcegraph() -> None:
    s = load_settings(BASE)
    assert s.queue_poll_interval == 1
    assert s.maximum_num_jobs == 1
    assert s.maximum_runtime_per_job == 1800
    assert s.cleanup_task_interval == 60
    assert s.job_num_cpus == 4
    assert s.job_memory == "12G"
    assert s.firecracker_disk_space == "20G"
    assert s.num_total_jobs == 0
    assert s.max_active_time == 0
    assert s.use_firecracker is False
    assert s.queues == ["batches"]
    assert s.executor_name.count("-") >= 5


def test_fallback_names() -> None:
    s = load_settings(
        {**BASE, "EXECUTOR_FIRECRACKER_NUM_CPUS": "2", "EXECUTOR_FIRECRACKER_MEMORY": "4G"}
    )
    assert (s.job_num_cpus, s.job_memory) == (2, "4G")


def test_all_errors_reported_at_once_each_naming_its_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            {
                "EXECUTOR_FRONTEND_URL": "not a url",
                "EXECUTOR_QUEUE_POLL_INTERVAL": "soon",
                "EXECUTOR_MAXIMUM_NUM_JOBS": "many",
                "EXECUTOR_KEEP_WORKSPACES": "yes",
                "EXECUTOR_QUEUE_NAMES": "batches,nope",
            }
        )
    text = str(info.value)
    assert text.startswith(f"{len(info.value.problems)} errors occurred:")
    for name in (
        "EXECUTOR_FRONTEND_URL",
        "EXECUTOR_QUEUE_POLL_INTERVAL",
        "EXECUTOR_MAXIMUM_NUM_JOBS",
        "EXECUTOR_KEEP_WORKSPACES",
        "EXECUTOR_QUEUE_NAMES",
        "EXECUTOR_FRONTEND_PASSWORD",
    ):
        assert name in text
    assert "'nope'" in text


def test_exactly_one_queue_setting() -> None:
    env = {**BASE, "EXECUTOR_QUEUE_NAMES": "batches,codeintel"}
    with pytest.raises(ConfigError, match="exactly one of EXECUTOR_QUEUE_NAME"):
        load_settings(env)
    env.pop("EXECUTOR_QUEUE_NAME")
    assert load_settings(env).queues == ["batches", "codeintel"]


def test_host_docker_internal_needs_gateway() -> None:
    env = {**BASE, "EXECUTOR_FRONTEND_URL": "http://host.docker.internal:3080"}
    with pytest.raises(ConfigError, match="EXECUTOR_DOCKER_ADD_HOST_GATEWAY"):
        load_settings(env)
    assert load_settings({**env, "EXECUTOR_DOCKER_ADD_HOST_GATEWAY": "true"})


def test_firecracker_is_one_clear_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            {**BASE, "EXECUTOR_USE_FIRECRACKER": "true", "EXECUTOR_KUBERNETES_NAMESPACE": "x"}
        )
    assert len(info.value.problems) == 1
    assert "not supported by this executor" in info.value.problems[0]


def test_token_from_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    env = {k: v for k, v in BASE.items() if k != "EXECUTOR_FRONTEND_PASSWORD"}
    s = load_settings({**env, "EXECUTOR_FRONTEND_PASSWORD_FILE": str(token_file)})
    assert s.token == "from-a-file"
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({**env, "EXECUTOR_FRONTEND_PASSWORD_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="both set"):
        load_settings({**BASE, "EXECUTOR_FRONTEND_PASSWORD_FILE": str(token_file)})


def test_secrets_never_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            {
                **BASE,
                "EXECUTOR_DOCKER_AUTH_CONFIG": '{"auths": {"x": "sekrit-auth"',
                "EXECUTOR_QUEUE_NAME": "bogus",
            }
        )
    assert "sekrit-auth" not in str(info.value)
    assert "hunter2hunter2" not in str(info.value)
    assert "EXECUTOR_DOCKER_AUTH_CONFIG" in str(info.value)


def test_cli_exits_2_naming_the_variable() -> None:
    env = {"PATH": "/usr/bin:/bin", **BASE, "EXECUTOR_MAXIMUM_NUM_JOBS": "lots"}
    done = subprocess.run(
        [sys.executable, "-m", "executor", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "EXECUTOR_MAXIMUM_NUM_JOBS" in done.stderr
    assert "hunter2hunter2" not in done.stderr + done.stdout


def test_run_help_lists_every_variable_with_default() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "executor", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert "EXECUTOR_QUEUE_POLL_INTERVAL" in done.stdout
    assert "(default: 30m0s)" in done.stdout
    assert "EXECUTOR_FRONTEND_PASSWORD_FILE" in done.stdout


def test_go_int_and_duration_limits_are_gos() -> None:
    assert parse_go_int("-42") == -42 and parse_go_int("+7") == 7
    assert parse_go_int(str(2**63 - 1)) == 2**63 - 1
    with pytest.raises(ValueError, match="value out of range"):
        parse_go_int(str(2**63))
    with pytest.raises(ValueError, match="invalid syntax"):
        parse_go_int("1e3")
    assert parse_go_duration("2562047h") == 2562047 * 3600  # just under Go's ~292 years
    with pytest.raises(ValueError, match="time: invalid duration"):
        parse_go_duration("2562048h")


# (variable, value, a fragment of the accepted range the message must name)
OUT_OF_RANGE = [
    ("EXECUTOR_QUEUE_POLL_INTERVAL", "0", "want a duration greater than 0, such as 1s"),
    ("EXECUTOR_QUEUE_POLL_INTERVAL", "-1s", "want a duration greater than 0"),
    ("EXECUTOR_MAXIMUM_NUM_JOBS", "0", "want an integer of at least 1"),
    ("EXECUTOR_MAXIMUM_NUM_JOBS", "-1", "want an integer of at least 1"),
    ("EXECUTOR_MAXIMUM_NUM_JOBS", "99999999999999999999", "value out of range"),
    ("EXECUTOR_JOB_NUM_CPUS", "-1", "want a non-negative integer (0 = no CPU bound)"),
    ("EXECUTOR_FIRECRACKER_NUM_CPUS", "-2", "want a non-negative integer (0 = no CPU bound)"),
    ("EXECUTOR_JOB_MEMORY", "1M", "want 0 (no memory bound) or a size of at least 6M"),
    ("EXECUTOR_JOB_MEMORY", "-1G", "invalid data size"),
    ("EXECUTOR_FIRECRACKER_DISK_SPACE", "-20G", "invalid data size"),
    ("EXECUTOR_MAXIMUM_RUNTIME_PER_JOB", "-1s", "want a non-negative duration (0 = no deadline)"),
    ("EXECUTOR_MAXIMUM_RUNTIME_PER_JOB", "3000000h", "time: invalid duration"),
    ("EXECUTOR_CLEANUP_TASK_INTERVAL", "0", "want a duration greater than 0"),
    ("EXECUTOR_NUM_TOTAL_JOBS", "-1", "want a non-negative integer (0 = unlimited)"),
    ("EXECUTOR_MAX_ACTIVE_TIME", "-5m", "want a non-negative duration (0 = unlimited)"),
    ("EXECUTOR_HEARTBEAT_INTERVAL", "0", "want a duration greater than 0 and at most 20s"),
    ("EXECUTOR_HEARTBEAT_INTERVAL", "25s", "want a duration greater than 0 and at most 20s"),
    ("EXECUTOR_DOCKER_STOP_TIMEOUT", "-1s", "want a non-negative duration (0 = kill at once)"),
    ("EXECUTOR_JOB_PIDS_LIMIT", "-1", "want a non-negative integer (0 = no limit)"),
    ("EXECUTOR_LOG_ENTRY_MAX_BYTES", "100", "want a size of at least 1K"),
    ("EXECUTOR_METRICS_PORT", "99999", "want 0 (off) or an integer from 1 to 65535"),
    ("EXECUTOR_METRICS_PORT", "-1", "want 0 (off) or an integer from 1 to 65535"),
]


@pytest.mark.parametrize(("name", "value", "fragment"), OUT_OF_RANGE)
def test_out_of_range_value_names_variable_and_range(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, name: value})
    [problem] = info.value.problems
    assert problem.startswith(f'invalid value "{value}" for {name}: '), problem
    assert fragment in problem, problem


# (variable, value, attribute, parsed): edge values that are accepted, with their meaning kept.
ACCEPTED = [
    ("EXECUTOR_QUEUE_POLL_INTERVAL", "1ms", "queue_poll_interval", 0.001),
    ("EXECUTOR_MAXIMUM_NUM_JOBS", "1", "maximum_num_jobs", 1),
    ("EXECUTOR_JOB_NUM_CPUS", "0", "job_num_cpus", 0),
    ("EXECUTOR_JOB_MEMORY", "0", "job_memory", "0"),
    ("EXECUTOR_JOB_MEMORY", "6M", "job_memory", "6M"),
    ("EXECUTOR_FIRECRACKER_DISK_SPACE", "0", "firecracker_disk_space", "0"),
    ("EXECUTOR_MAXIMUM_RUNTIME_PER_JOB", "0", "maximum_runtime_per_job", 0.0),
    ("EXECUTOR_MAXIMUM_RUNTIME_PER_JOB", "2562047h", "maximum_runtime_per_job", 9223369200.0),
    ("EXECUTOR_NUM_TOTAL_JOBS", "0", "num_total_jobs", 0),
    ("EXECUTOR_MAX_ACTIVE_TIME", "0", "max_active_time", 0.0),
    ("EXECUTOR_HEARTBEAT_INTERVAL", "20s", "heartbeat_interval", 20.0),
    ("EXECUTOR_DOCKER_STOP_TIMEOUT", "0s", "docker_stop_timeout", 0.0),
    ("EXECUTOR_JOB_PIDS_LIMIT", "0", "job_pids_limit", 0),
    ("EXECUTOR_LOG_ENTRY_MAX_BYTES", "1K", "log_entry_max_bytes", "1K"),
    ("EXECUTOR_METRICS_PORT", "0", "metrics_port", 0),
    ("EXECUTOR_METRICS_PORT", "65535", "metrics_port", 65535),
]


@pytest.mark.parametrize(("name", "value", "attr", "parsed"), ACCEPTED)
def test_edge_values_are_accepted(name: str, value: str, attr: str, parsed: Any) -> None:
    assert getattr(load_settings({**BASE, name: value}), attr) == parsed


def _is_size(value: object) -> bool:
    try:
        parse_data_size(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def test_every_numeric_duration_and_size_setting_has_a_range() -> None:
    for name, field in Settings.model_fields.items():
        default = field.default
        sized = _is_size(default)
        if field.annotation in (int, float) or sized:
            assert name in RANGES, f"EXECUTOR_{name.upper()} has no accepted range"
            assert RANGES[name].contains(parse_data_size(default) if sized else default), name
    assert set(RANGES) <= set(Settings.model_fields)


def test_all_range_errors_at_once_with_the_other_problems() -> None:
    env = {
        "EXECUTOR_FRONTEND_URL": "ftp://nope",
        "EXECUTOR_FRONTEND_PASSWORD": "hunter2hunter2",
        "EXECUTOR_QUEUE_NAME": "batches",
        "EXECUTOR_MAXIMUM_NUM_JOBS": "-1",
        "EXECUTOR_JOB_PIDS_LIMIT": "-5",
        "EXECUTOR_HEARTBEAT_INTERVAL": "0",
        "EXECUTOR_MAXIMUM_RUNTIME_PER_JOB": "-30m",
        "EXECUTOR_METRICS_PORT": "99999",
        "EXECUTOR_QUEUE_POLL_INTERVAL": "soon",
    }
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    problems = info.value.problems
    assert len(problems) == 7, problems
    named = [n for n in env if n.startswith("EXECUTOR_") and any(n in p for p in problems)]
    assert len(named) == 7, problems
    assert str(info.value).startswith("7 errors occurred:")


@pytest.mark.parametrize("variable", ["EXECUTOR_MAXIMUM_NUM_JOBS", "EXECUTOR_JOB_MEMORY"])
def test_secret_pasted_into_another_variable_is_not_echoed(variable: str) -> None:
    secret = "hunter2hunter2"
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, variable: secret})
    assert secret not in str(info.value) and variable in str(info.value)
    assert "[REDACTED]" in str(info.value)


def test_ranges_describe_themselves() -> None:
    assert format_data_size(6 * 1024**2) == "6M" and format_data_size(1536) == "1536"
    assert format_data_size(12 * 1024**3) == "12G" and format_data_size(0) == "0"
    port = Range("integer", 1, 65535, zero="off")
    assert port.contains(0) and port.contains(65535) and not port.contains(65536)
    poll = Range("duration", 0, low_open=True, example="1s")
    assert not poll.contains(0) and poll.contains(1e-9)
    assert poll.describe() == "a duration greater than 0, such as 1s"
    with pytest.raises(ValueError, match=r"^out of range: want a size of at least 1K$"):
        Range("size", 1024).check("1023")


def test_run_help_names_each_range() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "executor", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "accepts 0 (off) or an integer from 1 to 65535" in done.stdout
    assert "accepts a non-negative duration (0 = no deadline), such as 30m" in done.stdout


def test_format_go_duration() -> None:
    assert format_go_duration(0.0000005) == "500ns"
    assert format_go_duration(0.0000125) == "12.5µs"
    assert format_go_duration(0.0015) == "1.5ms"
    assert format_go_duration(2.0) == "2s"
    assert format_go_duration(64.5) == "1m4.5s"
    assert format_go_duration(3723) == "1h2m3s"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("EXECUTOR_MAXIMUM_NUM_JOBS", " 2", 'strconv.Atoi: parsing " 2": invalid syntax'),
        ("EXECUTOR_MAXIMUM_NUM_JOBS", "٣", 'strconv.Atoi: parsing "٣": invalid syntax'),
        ("EXECUTOR_QUEUE_POLL_INTERVAL", "1s ", 'time: invalid duration "1s "'),
        ("EXECUTOR_KEEP_WORKSPACES", " true", 'strconv.ParseBool: parsing " true"'),
        ("EXECUTOR_JOB_MEMORY", " 12G", "invalid data size"),
        ("EXECUTOR_FIRECRACKER_BANDWIDTH_INGRESS", "abc", 'parsing "abc": invalid syntax'),
        ("EXECUTOR_MIN_FREE_DISK", "150%", "want 0% to 99%"),
        ("EXECUTOR_MIN_FREE_DISK", "lots", "invalid data size"),
    ],
)
def test_values_are_not_trimmed_and_refused_as_go_refuses_them(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({**BASE, variable: value})
    assert message in str(err.value) and variable in str(err.value)


def test_a_queue_name_with_a_space_is_not_a_queue_name() -> None:
    env = {k: v for k, v in BASE.items() if k != "EXECUTOR_QUEUE_NAME"}
    with pytest.raises(ConfigError, match="invalid queue name"):
        load_settings({**env, "EXECUTOR_QUEUE_NAMES": "batches, codeintel"})


def test_firecracker_only_variables_are_reported_as_having_no_effect() -> None:
    env = {
        **BASE,
        "EXECUTOR_FIRECRACKER_IMAGE": "sourcegraph/executor-vm:5.3.0",
        "EXECUTOR_FIRECRACKER_BANDWIDTH_EGRESS": "1000",
        "EXECUTOR_VM_STARTUP_SCRIPT_PATH": "/etc/startup.sh",
    }
    load_settings(env)  # valid: a warning, not an error
    assert no_effect(env) == [
        "EXECUTOR_FIRECRACKER_IMAGE is set but has no effect with the docker runtime",
        "EXECUTOR_FIRECRACKER_BANDWIDTH_EGRESS is set but has no effect with the docker runtime",
        "EXECUTOR_VM_STARTUP_SCRIPT_PATH is set but has no effect with the docker runtime",
    ]
    assert no_effect(BASE) == []


def test_every_sourcegraph_variable_is_known() -> None:
    """Each variable of Sourcegraph's `config.go` (docker-relevant or not) has a setting, or is
    refused (Firecracker on); the Kubernetes ones are in tests/test_config_kubernetes.py."""
    sourcegraph = [
        "FRONTEND_URL", "FRONTEND_PASSWORD", "QUEUE_NAME", "QUEUE_NAMES", "QUEUE_POLL_INTERVAL",
        "MAXIMUM_NUM_JOBS", "USE_FIRECRACKER", "FIRECRACKER_IMAGE", "FIRECRACKER_KERNEL_IMAGE",
        "FIRECRACKER_SANDBOX_IMAGE", "VM_STARTUP_SCRIPT_PATH", "VM_PREFIX", "KEEP_WORKSPACES",
        "DOCKER_HOST_MOUNT_PATH", "DOCKER_ADDITIONAL_MOUNTS", "JOB_NUM_CPUS", "JOB_MEMORY",
        "FIRECRACKER_DISK_SPACE", "FIRECRACKER_BANDWIDTH_INGRESS",
        "FIRECRACKER_BANDWIDTH_EGRESS", "MAXIMUM_RUNTIME_PER_JOB", "CLEANUP_TASK_INTERVAL",
        "NUM_TOTAL_JOBS", "MAX_ACTIVE_TIME", "DOCKER_REGISTRY_MIRROR_URL",
        "DOCKER_ADD_HOST_GATEWAY", "DOCKER_AUTH_CONFIG", "HEALTH_SERVER_ADDR",
    ]  # fmt: skip
    fields = {f"EXECUTOR_{name.upper()}" for name in Settings.model_fields}
    missing = [f"EXECUTOR_{n}" for n in sourcegraph if f"EXECUTOR_{n}" not in fields]
    assert missing == []


def test_repo_cache_size_default_off_and_invalid() -> None:
    assert load_settings(BASE).repo_cache_bytes == 5 * 1024**3
    assert load_settings({**BASE, "EXECUTOR_REPO_CACHE_SIZE": "0"}).repo_cache_bytes == 0
    assert load_settings({**BASE, "EXECUTOR_REPO_CACHE_SIZE": "512M"}).repo_cache_bytes == 512 << 20
    with pytest.raises(ConfigError):
        load_settings({**BASE, "EXECUTOR_REPO_CACHE_SIZE": "lots"})
