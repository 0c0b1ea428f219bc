"""systemd/executor.service: the drain contract, the bad-config behaviour and the hardening."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "executor.service"


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value in order (systemd allows repeated keys)."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out[section][key.strip()].append(value.strip())
    return out


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT)


def minutes(value: str) -> float:
    total = 0.0
    for num, suffix in re.findall(r"(\d+)\s*(min|h|s)?", value):
        total += int(num) * {"h": 60.0, "min": 1.0, "s": 1 / 60, "": 1 / 60}[suffix]
    return total


def test_depends_on_docker(unit: dict) -> None:
    assert "docker.service" in " ".join(unit["Unit"]["Requires"])
    assert "docker.service" in " ".join(unit["Unit"]["After"])


def test_env_file_is_mandatory(unit: dict) -> None:
    # No leading "-": a missing file fails the start with a clear reason.
    assert unit["Service"]["EnvironmentFile"] == ["/etc/executor/executor.env"]


def test_restart_policy_and_bad_config(unit: dict) -> None:
    svc = unit["Service"]
    assert svc["Restart"] == ["on-failure"]
    assert svc["RestartPreventExitStatus"] == ["2"]
    assert svc["ExecStart"] == ["/usr/bin/executor run"]


def test_drain_contract(unit: dict) -> None:
    svc = unit["Service"]
    assert svc["KillSignal"] == ["SIGTERM"]
    assert svc["KillMode"] == ["mixed"]
    # Default EXECUTOR_MAXIMUM_RUNTIME_PER_JOB is 30m; leave at least 5m of grace on top.
    assert minutes(svc["TimeoutStopSec"][0]) >= 35


def test_workspaces_under_state_dir(unit: dict) -> None:
    svc = unit["Service"]
    env = " ".join(svc["Environment"])
    assert "TMPDIR=/var/lib/executor/workspaces" in env
    assert "/var/lib/executor" in svc["ReadWritePaths"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("User", "executor"),
        ("SupplementaryGroups", "docker"),
    ],
)
def test_hardening(unit: dict, key: str, value: str) -> None:
    assert unit["Service"][key] == [value]


def test_recycle_hook(unit: dict) -> None:
    svc = unit["Service"]
    assert svc["ExecStopPost"] == ["+/usr/libexec/executor/executor-recycle post"]
    assert svc["ExecStop"] == ["+/usr/libexec/executor/executor-recycle stop-requested"]
    assert "+/usr/libexec/executor/executor-iptables.sh" in svc["ExecStartPre"]


def test_egress_rules_on_by_default(unit: dict) -> None:
    """Deliver 7: the unit turns the step network and its firewall on; the env file (read after
    `Environment=`, and overriding it) opts out. The firewall runs before the daemon starts."""
    svc = unit["Service"]
    env = " ".join(svc["Environment"])
    assert "EXECUTOR_IPTABLES_RULES=true" in env
    assert "EXECUTOR_STEP_NETWORK=executor-steps" in env
    assert svc["ExecStartPre"][0] == "+/usr/libexec/executor/executor-iptables.sh"


def test_notify_and_watchdog(unit: dict) -> None:
    svc = unit["Service"]
    assert svc["Type"] == ["notify"]
    assert svc["NotifyAccess"] == ["main"]
    # Longer than a ping interval by far, shorter than the drain timeout.
    assert 1 <= minutes(svc["WatchdogSec"][0]) <= 5
    # A watchdog kill is a failure: Restart=on-failure starts a fresh daemon.
    assert svc["Restart"] == ["on-failure"]
