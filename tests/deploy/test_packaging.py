"""Packaging: the env file documents every setting, is a 0600 conffile; maintainer scripts and
the recycle/iptables helpers behave (run for real against stub binaries)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "packaging"
ENV_FILE = PKG / "files" / "executor.env"


def nfpm() -> dict:
    return YAML(typ="safe").load((PKG / "nfpm.yaml").read_text())


def test_env_file_is_0600_noreplace_conffile() -> None:
    entry = next(c for c in nfpm()["contents"] if c["dst"] == "/etc/executor/executor.env")
    assert entry["type"] == "config|noreplace"
    # nfpm reads YAML 1.1, where 0600 is octal; a YAML 1.2 loader reads the same text as 600.
    assert entry["file_info"]["mode"] in (0o600, 600)
    assert entry["file_info"]["owner"] == "root"


def test_env_file_documents_every_setting() -> None:
    config = (REPO / "executor" / "config" / "settings.py").read_text()
    fields = re.findall(r"^    (\w+): [\w\[\], |]+ = Field\(", config, re.M)
    assert fields, "could not read the settings from executor/config/settings.py"
    text = ENV_FILE.read_text()
    missing = [f for f in fields if f"EXECUTOR_{f.upper()}=" not in text]
    assert not missing, f"undocumented in executor.env: {missing}"
    # Commented-out defaults only: an unconfigured install fails fast naming the variable.
    assert not [ln for ln in text.splitlines() if ln.startswith("EXECUTOR_")]


def test_unit_installed_for_both_packagers() -> None:
    dsts = {(c["dst"], c.get("packager")) for c in nfpm()["contents"]}
    assert ("/lib/systemd/system/executor.service", "deb") in dsts
    assert ("/usr/lib/systemd/system/executor.service", "rpm") in dsts


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    """A bin dir whose systemctl/iptables only log their arguments."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("systemctl", "iptables"):
        stub = bindir / name
        stub.write_text(
            f'#!/bin/sh\necho "$@" >>"{tmp_path}/{name}.log"\nexit 1\n'
            if name == "iptables-check"
            else f'#!/bin/sh\necho "$@" >>"{tmp_path}/{name}.log"\n'
            '# -C (check) and -N (new chain) report "absent" so rules get added\n'
            'case " $* " in *" -C "*|*" -N "*) exit 1;; esac\nexit 0\n'
        )
        stub.chmod(0o755)
    return bindir


def run(script: str, args: list[str], env: dict[str, str], bindir: Path) -> None:
    full = {"PATH": f"{bindir}:/usr/bin:/bin", **env}
    subprocess.run(
        ["sh", str(PKG / "files" / script), *args], env=full, check=True, capture_output=True
    )


RECYCLE_CASES = [
    ({"SERVICE_RESULT": "success", "EXIT_CODE": "exited", "EXIT_STATUS": "0",
      "EXECUTOR_RECYCLE_ON_EXIT": "true"}, True),
    ({"SERVICE_RESULT": "success", "EXIT_CODE": "exited", "EXIT_STATUS": "0"}, False),
    ({"SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited", "EXIT_STATUS": "2",
      "EXECUTOR_RECYCLE_ON_EXIT": "true"}, False),
    ({"SERVICE_RESULT": "signal", "EXIT_CODE": "killed", "EXIT_STATUS": "KILL",
      "EXECUTOR_RECYCLE_ON_EXIT": "true"}, False),
]  # fmt: skip


@pytest.mark.skipif(os.geteuid() != 0, reason="the hook's marker lives in /run")
@pytest.mark.parametrize(("env", "poweroff"), RECYCLE_CASES)
def test_recycle_hook_powers_off_only_on_clean_self_exit(
    stubs: Path, env: dict[str, str], poweroff: bool
) -> None:
    log = stubs.parent / "systemctl.log"
    run("executor-recycle", ["start"], {}, stubs)
    run("executor-recycle", ["post"], env, stubs)
    assert log.exists() == poweroff
    if poweroff:
        assert "poweroff" in log.read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="the hook's marker lives in /run")
def test_recycle_hook_ignores_requested_stop(stubs: Path) -> None:
    env = dict(RECYCLE_CASES[0][0])
    run("executor-recycle", ["start"], {}, stubs)
    # A requested stop: ExecStop= runs while the daemon runs ($MAINPID set, no exit status yet).
    run("executor-recycle", ["stop-requested"], {"MAINPID": "4242"}, stubs)
    run("executor-recycle", ["post"], env, stubs)
    assert not (stubs.parent / "systemctl.log").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the hook's marker lives in /run")
def test_recycle_hook_recycles_when_execstop_runs_after_a_self_exit(stubs: Path) -> None:
    # systemd runs ExecStop= also after the daemon exited 0 by itself: $MAINPID is unset then
    # and $EXIT_CODE/$EXIT_STATUS are set. That must not count as a stop request.
    env = dict(RECYCLE_CASES[0][0])
    run("executor-recycle", ["start"], {}, stubs)
    run("executor-recycle", ["stop-requested"], {k: env[k] for k in ("EXIT_CODE", "EXIT_STATUS",
        "SERVICE_RESULT")}, stubs)  # fmt: skip
    run("executor-recycle", ["post"], env, stubs)
    assert "poweroff" in (stubs.parent / "systemctl.log").read_text()


def test_iptables_off_by_default(stubs: Path) -> None:
    run("executor-iptables.sh", [], {}, stubs)
    assert not (stubs.parent / "iptables.log").exists()


def test_iptables_blocks_metadata_and_private_ranges(stubs: Path) -> None:
    run(
        "executor-iptables.sh",
        [],
        {"EXECUTOR_IPTABLES_RULES": "true", "EXECUTOR_IPTABLES_ALLOW": "10.0.1.4:5000"},
        stubs,
    )
    rules = (stubs.parent / "iptables.log").read_text().splitlines()
    for cidr in ("169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"):
        assert any(f"-d {cidr} -j REJECT" in r for r in rules), cidr
    allow = next(i for i, r in enumerate(rules) if "-d 10.0.1.4 --dport 5000 -j RETURN" in r)
    first_reject = next(i for i, r in enumerate(rules) if "-j REJECT" in r)
    assert allow < first_reject, "the mirror exception must come before the rejects"
    assert any("-I DOCKER-USER 1 -i docker0 -j EXECUTOR-ISOLATION" in r for r in rules)
    assert any("-I INPUT 1 -i docker0 -j EXECUTOR-ISOLATION-INPUT" in r for r in rules)


def test_iptables_allows_the_frontend_before_any_reject(stubs: Path) -> None:
    env = {"EXECUTOR_IPTABLES_RULES": "true", "EXECUTOR_FRONTEND_URL": "https://10.0.9.9/x"}
    run("executor-iptables.sh", [], env, stubs)
    rules = (stubs.parent / "iptables.log").read_text().splitlines()
    allow = [i for i, r in enumerate(rules) if "-d 10.0.9.9 --dport 443 -j RETURN" in r]
    first_reject = next(i for i, r in enumerate(rules) if "-j REJECT" in r)
    assert len(allow) == 2 and max(allow) < first_reject, rules  # forward and input chains


def test_wheel_ships_the_package_data(tmp_path: Path) -> None:
    """The wheel the image and the deb/rpm install from carries the non-Python files the
    daemon reads at run time: the sandbox's pages and the workspaces' git template (no sample
    hooks, and no zero-length or hidden file, which rpmlint rejects in the rpm)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), "."],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("sourcegraph_executor_py-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    template = "executor/workspace/git_template/"
    assert sorted(n for n in names if n.startswith(template)) == [
        template + "description",
        template + "info/exclude",
    ]
    assert any(n.startswith("executor/sandbox/templates/") and n.endswith(".html") for n in names)
