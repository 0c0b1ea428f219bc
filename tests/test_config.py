"""Config: Go parsing, Sourcegraph defaults, cross-field rules, all errors at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from executor.config import (
    load_settings,
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


def test_firecracker_and_kubernetes_are_one_clear_error_each() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            {**BASE, "EXECUTOR_USE_FIRECRACKER": "true", "EXECUTOR_KUBERNETES_NAMESPACE": "x"}
        )
    assert len(info.value.problems) == 2
    assert all("not supported by this executor" in p for p in info.value.problems)


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
