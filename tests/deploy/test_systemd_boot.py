"""The deb under a real systemd: each test boots a container with systemd 252 as PID 1 from a
debootstrap bookworm root (`deploy/scripts/make-base-image.sh --systemd`, cached), installs the
package with `apt install ./x.deb` and drives `executor.service` with systemctl against the
sandbox frontend on the host's loopback (`--network host`). Step containers run on the host's
engine through its mounted socket.

What a site admin relies on and only a booted systemd shows: a job runs; `systemctl stop`
drains; `EXECUTOR_NUM_TOTAL_JOBS` powers the host off (systemd runs `ExecStop=` also when the
daemon exits by itself, see systemd.service(5)); `apt purge` works when `/var/lib/executor` is a
mount point; an upgrade stops the old daemon before unpacking and starts the new one; a stop while
the frontend is down is a clean stop; the unit is `Type=notify` (READY=1, STATUS=) and its
watchdog restarts a daemon whose loop is frozen.

Run by `.ci/deploy.sh` (`-m systemd_boot`, after it built the deb: `EXECUTOR_TEST_DEB`); the
plain suite deselects it (pyproject `addopts`), as it needs the package built first. Needs root
and a Docker engine, and fails without them. Stand-in: `docker.service` inside the container is a
oneshot unit (the engine is the host's), so the unit's `Requires=docker.service` resolves.
Unit facts: Sourcegraph's `cmd/executor` systemd unit and `shutdown_executor.sh` (recycling).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bench._common import wait_until

pytestmark = [pytest.mark.systemd_boot, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
STEP_IMAGE = "executor-busybox:latest"
IMAGE = "executor-systemd:bookworm"
LABEL = "executor-systemd-boot-test"
PACKAGE = "sourcegraph-executor-py"
# Flags that boot systemd 252 in a container on this host: --privileged fails here for want of
# CAP_SYS_RESOURCE, so every capability but that one, no seccomp/apparmor/masked /proc paths.
BOOT_FLAGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
    "--network", "host", "--stop-signal", "SIGRTMIN+3",
    "-v", "/var/run/docker.sock:/run/docker.sock",
]  # fmt: skip
DOCKER_STAND_IN = """\
[Unit]
Description=stand-in for docker.io: the engine is the host's, through the mounted socket
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
"""


def run(*argv: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        output = done.stdout + done.stderr
        raise AssertionError(f"{shlex.join(argv)}: rc {done.returncode}\n{output}")
    return done


class Host:
    """One booted container: systemd as PID 1, /var/lib/executor bind-mounted from `state`."""

    def __init__(self, name: str, state: Path) -> None:
        self.name, self.state = name, state
        #: The step network the unit's ExecStartPre creates on the host's engine (removed at
        #: teardown); not `executor-…`, which `tests/leftovers.py` counts as a leftover.
        self.step_network = f"exboot-{uuid.uuid4().hex[:8]}"

    def sh(self, script: str, check: bool = True, timeout: float = 600) -> str:
        done = run("docker", "exec", self.name, "sh", "-ec", script, check=False, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"in {self.name}: {script}: rc {done.returncode}\n"
                                 f"{done.stdout}{done.stderr}\n{self.journal()}")  # fmt: skip
        return done.stdout

    def running(self) -> bool:
        out = run("docker", "inspect", "-f", "{{.State.Running}}", self.name).stdout
        return out.strip() == "true"

    def wait_booted(self) -> None:
        # PID 1 answers once its private socket exists; `--wait` then returns when boot ended:
        # running, or degraded with a failed unit (named in the message).
        def answers() -> bool:
            out = self.sh("systemctl is-system-running 2>/dev/null || true").strip()
            return out not in ("", "offline", "unknown")

        wait_until(answers, 120, interval=0.5)
        state = self.sh("systemctl is-system-running --wait || true", timeout=180).strip()
        assert state == "running", self.sh("systemctl --failed --no-pager || true")

    def journal(self, *args: str) -> str:
        argv = ["journalctl", "--no-pager", "-o", "short-precise", *args]
        return run("docker", "exec", self.name, *argv, check=False).stdout

    def unit(self, *props: str) -> dict[str, str]:
        out = self.sh(
            "systemctl show executor.service --timestamp=us+utc "
            + " ".join(f"-p {p}" for p in props)
        )
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def install(self, deb: Path) -> str:
        run("docker", "cp", str(deb), f"{self.name}:/tmp/{deb.name}")
        return self.sh(f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/{deb.name} 2>&1")

    def configure(self, **env: str) -> None:
        lines = "".join(f"EXECUTOR_{k.upper()}={v}\n" for k, v in env.items())
        self.sh(f"cat >>/etc/executor/executor.env <<'EOF'\n{lines}EOF")


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The deb CI built, and the same package repacked with a higher version (the upgrade)."""
    given = os.environ.get("EXECUTOR_TEST_DEB", "")
    if not given or not Path(given).is_file():
        pytest.fail("EXECUTOR_TEST_DEB must name the built deb (.ci/deploy.sh sets it)")
    deb = Path(given).resolve()
    work = tmp_path_factory.mktemp("repack")
    tree = work / "tree"
    run("dpkg-deb", "-R", str(deb), str(tree))
    control = tree / "DEBIAN" / "control"
    text = control.read_text()
    version = next(ln.split(": ", 1)[1] for ln in text.splitlines() if ln.startswith("Version: "))
    control.write_text(text.replace(f"Version: {version}\n", f"Version: {version}+upgrade1\n"))
    newer = work / f"{PACKAGE}_{version}+upgrade1_amd64.deb"
    run("dpkg-deb", "-Zgzip", "-z1", "--root-owner-group", "-b", str(tree), str(newer))
    assert run("dpkg", "--compare-versions", f"{version}+upgrade1", "gt", version, check=False)
    return deb, newer


@pytest.fixture(scope="module")
def image() -> str:
    run("bash", str(REPO / "deploy" / "scripts" / "make-base-image.sh"), "--systemd", IMAGE)
    run("bash", str(REPO / "scripts" / "build-images.sh"))
    return IMAGE


@pytest.fixture
def boot(image: str, tmp_path: Path) -> Iterator[Callable[[], Host]]:
    hosts: list[Host] = []

    def start() -> Host:
        name = f"executor-systemd-{uuid.uuid4().hex[:10]}"
        state = tmp_path / f"state-{len(hosts)}"
        state.mkdir()
        # Its own host name: the daemon labels step containers with it, and a janitor treats a
        # container labelled with its host name whose owner's lock file it cannot see (another
        # mount namespace) as orphaned. With the host's name, this daemon and the host's would
        # remove each other's running containers.
        run("docker", "run", "-d", "--name", name, "--hostname", name, "--label", LABEL,
            *BOOT_FLAGS, "-v", f"{state}:/var/lib/executor", image)  # fmt: skip
        host = Host(name, state)
        hosts.append(host)
        host.wait_booted()
        gid = os.stat("/var/run/docker.sock").st_gid
        # The package's postinst adds the executor user to an existing docker group: give it
        # the socket's group id, as installing docker.io would on a real host.
        host.sh(f"groupadd --system --gid {gid} docker")
        host.sh(f"cat >/etc/systemd/system/docker.service <<'EOF'\n{DOCKER_STAND_IN}EOF\n"
                "systemctl daemon-reload && systemctl enable --now docker.service")  # fmt: skip
        return host

    yield start
    for host in hosts:
        run("docker", "rm", "-f", "-v", host.name, check=False)
        # Step containers its daemon may have left when a test failed mid-job.
        left = run("docker", "ps", "-aq", "--filter", f"label=executor.host={host.name}").stdout
        if left.split():
            run("docker", "rm", "-f", *left.split(), check=False)
        run("docker", "network", "rm", host.step_network, check=False)


def configure_for(host: Host, sandbox: Any, **extra: str) -> None:
    host.configure(
        frontend_url=sandbox.url,
        frontend_password=sandbox.token,
        queue_name="batches",
        queue_poll_interval="200ms",
        heartbeat_interval="1s",
        job_num_cpus="1",
        job_memory="256M",
        cleanup_image=STEP_IMAGE,
        # Workspaces live under /var/lib/executor in the container; the host's engine mounts
        # them from where that directory really is.
        docker_host_mount_path=str(host.state / "workspaces"),
        # The unit turns the egress firewall on by default. Not here: with `--network host`
        # its iptables rules would land on this CI machine itself. The rules are tested in
        # network namespaces (tests/deploy/test_egress_firewall.py); the step network the same
        # ExecStartPre creates is tested here, with a name of this host's own.
        iptables_rules="false",
        step_network=host.step_network,
        **extra,
    )


def job(repo: Any, *commands: str) -> dict[str, Any]:
    step = {"key": "0", "image": STEP_IMAGE, "commands": list(commands), "dir": ".", "env": []}
    return {"repositoryName": repo.name, "commit": repo.head, "shallowClone": True,
            "dockerSteps": [step]}  # fmt: skip


def logs(sandbox: Any, job_id: int) -> dict[str, dict[str, Any]]:
    return {e["key"]: e for e in sandbox.job(job_id)["execution_logs"]}


def wait_step_running(sandbox: Any, job_id: int) -> None:
    wait_until(lambda: "step.docker.0" in logs(sandbox, job_id), 120, interval=0.5)


def started(boot: Callable[[], Host], deb: Path, sandbox: Any, repo: Any, **env: str) -> Host:
    """A booted host with `deb` installed, configured for `sandbox` and the service running."""
    host = boot()
    host.install(deb)
    sandbox.add_repo(repo.name, repo.path)
    configure_for(host, sandbox, **env)
    host.sh("systemctl enable --now executor.service")
    return host


def assert_clean_stop(host: Host) -> None:
    unit = host.unit("ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
    assert unit["ActiveState"] == "inactive", (unit, host.journal("-u", "executor"))
    assert unit["Result"] == "success", (unit, host.journal("-u", "executor"))


def test_job_runs_stop_drains_and_purge_empties_the_mounted_state_dir(
    boot: Callable[[], Host], debs: tuple[Path, Path], sandbox: Any, sample_repo: Any
) -> None:
    host = started(boot, debs[0], sandbox, sample_repo)

    first = sandbox.enqueue(job(sample_repo, "cat README.md", "id -u"))
    done = sandbox.wait_state(first, timeout=180)
    assert done["state"] == "completed", (done, host.journal("-u", "executor"))
    assert "stdout: # sample" in logs(sandbox, first)["step.docker.0"]["out"]
    # The step ran on the step network the unit's ExecStartPre created (EXECUTOR_STEP_NETWORK).
    command = logs(sandbox, first)["step.docker.0"]["command"]
    assert command[command.index("--network") + 1] == host.step_network, command
    network = run("docker", "network", "inspect", "-f", "{{.Driver}}", host.step_network)
    assert network.stdout.strip() == "bridge"
    assert host.unit("ActiveState")["ActiveState"] == "active"
    # The hardening holds on a real systemd (the job above ran under it); 10 is "UNSAFE".
    security = host.sh("systemd-analyze security executor.service --no-pager")
    exposure = float(security.rsplit("Overall exposure level for executor.service: ", 1)[1][:3])
    assert exposure <= 2.0, security

    # A stop while a job runs lets it finish (TimeoutStopSec is far above it), then ends clean.
    second = sandbox.enqueue(job(sample_repo, "sleep 12", "echo finished after the stop"))
    wait_step_running(sandbox, second)
    host.sh("systemctl stop executor.service", timeout=300)
    assert sandbox.job(second)["state"] == "completed", host.journal("-u", "executor")
    assert "finished after the stop" in logs(sandbox, second)["step.docker.0"]["out"]
    assert_clean_stop(host)
    assert "stop was requested; not recycling" in host.journal("-u", "executor")
    assert host.running(), "a requested stop must not power the host off"

    # Purge of a running service: the prerm stops it. /var/lib/executor is a mount point (a
    # scratch disk on a real host): purge empties it.
    host.sh("systemctl start executor.service && mountpoint -q /var/lib/executor")
    out = host.sh(f"DEBIAN_FRONTEND=noninteractive apt-get purge -y -q {PACKAGE} 2>&1")
    assert host.sh("systemctl is-active executor.service || true").strip() == "inactive", out
    status = run("docker", "exec", host.name, "dpkg-query", "-W", "-f", "${db:Status-Abbrev}",
                 PACKAGE, check=False)  # fmt: skip
    assert status.stdout.strip() in ("", "un"), (status.stdout, out)
    assert host.sh("ls -A /var/lib/executor") == "", out
    host.sh("mountpoint -q /var/lib/executor && ! test -e /etc/executor/executor.env")


def test_num_total_jobs_recycles_the_host(
    boot: Callable[[], Host], debs: tuple[Path, Path], sandbox: Any, sample_repo: Any
) -> None:
    host = started(boot, debs[0], sandbox, sample_repo, num_total_jobs="1", recycle_on_exit="true")

    only = sandbox.enqueue(job(sample_repo, "echo the one job"))
    assert sandbox.wait_state(only, timeout=180)["state"] == "completed"
    # The daemon drains and exits 0; the ExecStopPost hook powers the machine off.
    wait_until(lambda: not host.running(), 180, interval=0.5)
    # Boot it again to read the first boot's journal (persistent, /var/log/journal; each boot
    # has a new machine ID, as the image ships none, hence --merge).
    run("docker", "start", host.name)
    host.wait_booted()
    journal = host.journal("--merge", "-u", "executor")
    assert "powering off to recycle this host" in journal, journal
    assert "not recycling" not in journal, journal


def test_upgrade_stops_the_old_daemon_before_unpacking_then_starts_the_new(
    boot: Callable[[], Host], debs: tuple[Path, Path], sandbox: Any, sample_repo: Any
) -> None:
    host = started(boot, debs[0], sandbox, sample_repo)
    before = host.unit("MainPID")["MainPID"]

    running = sandbox.enqueue(job(sample_repo, "sleep 8", "echo survived the upgrade"))
    wait_step_running(sandbox, running)
    out = host.install(debs[1])
    assert sandbox.job(running)["state"] == "completed", (out, host.journal("-u", "executor"))
    assert "survived the upgrade" in logs(sandbox, running)["step.docker.0"]["out"]

    unit = host.unit("ActiveState", "MainPID", "InactiveEnterTimestamp", "ExecMainStartTimestamp")
    assert unit["ActiveState"] == "active", (unit, out)
    assert unit["MainPID"] != before, (unit, out)
    version = host.sh(f"dpkg-query -W -f '${{Version}}' {PACKAGE}")
    assert version.endswith("+upgrade1"), version
    # Order: old daemon stopped (prerm) < the new unit file unpacked < the new daemon started.
    unpacked = float(host.sh("stat -c %.9Z /lib/systemd/system/executor.service"))
    stopped, restarted = (
        datetime.strptime(unit[k], "%a %Y-%m-%d %H:%M:%S.%f %Z").timestamp()
        for k in ("InactiveEnterTimestamp", "ExecMainStartTimestamp")
    )
    assert stopped < unpacked < restarted, (unit, unpacked, out)

    # And the new daemon runs jobs.
    after = sandbox.enqueue(job(sample_repo, "echo new daemon"))
    assert sandbox.wait_state(after, timeout=180)["state"] == "completed"


@pytest.mark.parametrize("when", ["never-answered", "went-away"])
def test_stop_while_the_frontend_is_down_is_a_clean_stop(
    boot: Callable[[], Host],
    debs: tuple[Path, Path],
    sandbox_factory: Callable[..., Any],
    when: str,
) -> None:
    host = boot()
    host.install(debs[0])
    frontend = sandbox_factory()
    if when == "never-answered":
        frontend.close()  # its loopback port: nothing listens there any more
    configure_for(host, frontend)
    host.sh("systemctl enable --now executor.service")
    if when == "went-away":
        wait_until(lambda: "connected to the frontend" in host.journal("-u", "executor"), 120)
        frontend.close()
    # Let it poll the dead frontend for a while (dequeue and heartbeat errors).
    time.sleep(5)
    assert host.unit("ActiveState")["ActiveState"] == "active"
    host.sh("systemctl stop executor.service", timeout=300)
    assert_clean_stop(host)


def test_notify_status_and_the_watchdog_restarts_a_frozen_daemon(
    boot: Callable[[], Host], debs: tuple[Path, Path], sandbox: Any, sample_repo: Any
) -> None:
    host = started(boot, debs[0], sandbox, sample_repo)
    # `systemctl enable --now` of a Type=notify unit returned: READY=1 arrived.
    props = ("ActiveState", "Type", "WatchdogUSec", "StatusText", "MainPID", "NRestarts")
    wait_until(lambda: "running" in host.unit("StatusText")["StatusText"], 120, interval=0.5)
    unit = host.unit(*props)
    assert unit["Type"] == "notify" and unit["ActiveState"] == "active", unit
    assert unit["WatchdogUSec"] == "2min", unit
    assert unit["StatusText"] == "running: dequeuing from batches", unit

    # A 5 s watchdog (a drop-in), then freeze the daemon: no pings, systemd kills and restarts
    # it. TimeoutAbortSec bounds the SIGABRT's wait (systemd sends SIGCONT after it).
    host.sh(
        "mkdir -p /etc/systemd/system/executor.service.d && printf '[Service]\\nWatchdogSec=5s"
        "\\nTimeoutAbortSec=30s\\n' >/etc/systemd/system/executor.service.d/watchdog.conf"
        " && systemctl daemon-reload && systemctl restart executor.service"
    )
    wait_until(lambda: "running" in host.unit("StatusText")["StatusText"], 120, interval=0.5)
    frozen = host.unit("MainPID")["MainPID"]
    host.sh(f"kill -STOP {frozen}")

    def restarted() -> bool:
        now = host.unit("ActiveState", "MainPID", "NRestarts", "StatusText")
        return (
            now["NRestarts"] != "0"
            and now["MainPID"] not in ("0", frozen)
            and now["StatusText"].startswith("running")
        )

    wait_until(restarted, 180, interval=1)
    journal = host.journal("-u", "executor")
    assert "Watchdog timeout" in journal, journal
    # faulthandler: the killed daemon printed where its threads were.
    assert "Fatal Python error: Aborted" in journal, journal
    after = sandbox.enqueue(job(sample_repo, "echo after the watchdog"))
    assert sandbox.wait_state(after, timeout=180)["state"] == "completed"
