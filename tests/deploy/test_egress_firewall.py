"""Egress by default (issue 10, Deliver 7), tested for real: `executor-iptables.sh`'s rules in
network namespaces this test makes, then what a "step" can still connect to.

Topology (three namespaces joined by veth pairs, nothing on the machine's own network)::

    step ns                  host ns (rules go here)             cloud ns
    eth0 10.200.0.2 ---- sb 10.200.0.1 | wan 10.201.0.1 --- eth0 10.201.0.2
    (a step container)   (the step network's bridge)          + 169.254.169.254 (metadata)
                         listeners on 10.200.0.1:8080,        + 10.77.0.5 (private service)
                         10.201.0.1:8081 (host services)      + 10.77.0.6 (the frontend)
                                                              + 198.51.100.7 (the internet)

The host namespace forwards between the two like a Docker host; the one piece of Docker it
needs, `FORWARD -j DOCKER-USER`, is added by the test as Docker adds it (a stand-in, named so).
The script runs there exactly as the unit runs it, with `EXECUTOR_IPTABLES_BRIDGE=sb` in place
of a Docker network. Before the rules every target answers (the control); after them only the
internet, the frontend's port and the allow-listed exception do. A second run changes nothing.
Needs root, `ip` (iproute2) and `iptables` (scripts/setup.sh installs them); fails without.

The script's other half, creating the Docker step network, runs against the real engine in
`test_the_script_creates_the_step_network_once`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "packaging" / "files" / "executor-iptables.sh"
CLOUD = {
    "metadata": ("169.254.169.254", 80),
    "private service": ("10.77.0.5", 80),
    "allow-listed": ("10.77.0.5", 5000),
    "frontend": ("10.77.0.6", 8443),
    "frontend, other port": ("10.77.0.6", 22),
    "internet": ("198.51.100.7", 80),
}
HOST = {
    "host service on the bridge": ("10.200.0.1", 8080),
    "host's other address": ("10.201.0.1", 8081),
}
OPEN_AFTER = {"allow-listed", "frontend", "internet"}

LISTEN = """
import socket, sys, threading
def serve(s):
    while True:
        c, _ = s.accept(); c.sendall(b"ok"); c.close()
for spec in sys.argv[1:]:
    ip, port = spec.rsplit(":", 1)
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, int(port))); s.listen(16)
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print("listening", flush=True)
threading.Event().wait()
"""
PROBE = """
import json, socket, sys
out = {}
for spec in sys.argv[1:]:
    ip, port = spec.rsplit(":", 1)
    try:
        with socket.create_connection((ip, int(port)), timeout=10) as c:
            out[spec] = "open" if c.recv(2) == b"ok" else "no answer"
    except OSError as err:
        out[spec] = type(err).__name__
print(json.dumps(out))
"""


def sh(*argv: str, ns: str | None = None, env: dict[str, str] | None = None) -> str:
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    done = subprocess.run(full, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, f"{full}: rc {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


class Net:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.step, self.host, self.cloud = (f"exfw-{tag}-{n}" for n in ("step", "host", "cloud"))
        self.listeners: list[subprocess.Popen[str]] = []

    def build(self) -> None:
        for ns in (self.step, self.host, self.cloud):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        for name, peer_ns in (("sb", self.step), ("wan", self.cloud)):
            veth = [name, "type", "veth", "peer", "eth0", "netns", peer_ns]
            sh("ip", "-n", self.host, "link", "add", *veth)
        for ns, dev, address in (
            (self.step, "eth0", "10.200.0.2/24"),
            (self.host, "sb", "10.200.0.1/24"),
            (self.host, "wan", "10.201.0.1/24"),
            (self.cloud, "eth0", "10.201.0.2/24"),
        ):
            sh("ip", "-n", ns, "addr", "add", address, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        for address in sorted({ip for ip, _ in CLOUD.values()}):
            sh("ip", "-n", self.cloud, "addr", "add", f"{address}/32", "dev", "lo")
            sh("ip", "-n", self.host, "route", "add", f"{address}/32", "via", "10.201.0.2")
        sh("ip", "-n", self.step, "route", "add", "default", "via", "10.200.0.1")
        sh("ip", "-n", self.cloud, "route", "add", "default", "via", "10.201.0.1")
        sh("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", ns=self.host)
        # Stand-in for the Docker engine's own rule (dockerd adds it when it starts).
        sh("iptables", "-N", "DOCKER-USER", ns=self.host)
        sh("iptables", "-A", "FORWARD", "-j", "DOCKER-USER", ns=self.host)
        self.listen(self.cloud, CLOUD.values())
        self.listen(self.host, HOST.values())

    def listen(self, ns: str, targets: Iterable[tuple[str, int]]) -> None:
        specs = [f"{ip}:{port}" for ip, port in targets]
        argv = ["ip", "netns", "exec", ns, sys.executable, "-c", LISTEN, *specs]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.listeners.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"

    def probe(self) -> dict[str, str]:
        targets = {**CLOUD, **HOST}
        out = json.loads(
            sh(
                sys.executable,
                "-c",
                PROBE,
                *(f"{i}:{p}" for i, p in targets.values()),
                ns=self.step,
            )
        )
        return {name: out[f"{ip}:{port}"] for name, (ip, port) in targets.items()}

    def run_script(self) -> str:
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "EXECUTOR_IPTABLES_RULES": "true",
            "EXECUTOR_IPTABLES_BRIDGE": "sb",
            "EXECUTOR_IPTABLES_ALLOW": "10.77.0.5:5000",
            "EXECUTOR_FRONTEND_URL": "https://10.77.0.6:8443/",
        }
        sh("sh", str(SCRIPT), ns=self.host, env=env)
        return sh("iptables", "-S", ns=self.host)

    def close(self) -> None:
        for proc in self.listeners:
            proc.kill()
            proc.wait(30)
        for ns in (self.step, self.host, self.cloud):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@pytest.fixture
def net() -> Iterator[Net]:
    for tool in ("ip", "iptables"):
        assert subprocess.run(["which", tool], capture_output=True).returncode == 0, (
            f"{tool} is missing: scripts/setup.sh installs iproute2 and iptables"
        )
    assert os.geteuid() == 0, "network namespaces need root"
    net = Net()
    try:
        net.build()
        yield net
    finally:
        net.close()


def test_rules_refuse_metadata_host_and_private_ranges_but_not_frontend_or_internet(
    net: Net,
) -> None:
    before = net.probe()
    assert before == dict.fromkeys(before, "open"), before  # the control
    rules = net.run_script()
    after = net.probe()
    for name, result in after.items():
        if name in OPEN_AFTER:
            assert result == "open", (name, after, rules)
        else:
            assert result != "open", (name, after, rules)
    # Idempotent: a second run (every restart of the unit) leaves the same rules.
    assert net.run_script() == rules
    assert net.probe() == after
    assert rules.count("-j EXECUTOR-ISOLATION\n") == 1 and "-A INPUT -i sb" in rules


def test_the_script_creates_the_step_network_once() -> None:
    """`EXECUTOR_STEP_NETWORK` alone (rules off): a bridge network with that name and bridge,
    no inter-container traffic; a second run keeps it. Against the real engine."""
    name = f"exfw-{uuid.uuid4().hex[:8]}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "EXECUTOR_STEP_NETWORK": name}
    try:
        sh("sh", str(SCRIPT), env=env)
        first = json.loads(sh("docker", "network", "inspect", name))[0]
        sh("sh", str(SCRIPT), env=env)
        again = json.loads(sh("docker", "network", "inspect", name))[0]
    finally:
        subprocess.run(["docker", "network", "rm", name], capture_output=True, check=False)
    assert first["Id"] == again["Id"]
    assert first["Driver"] == "bridge"
    assert first["Options"]["com.docker.network.bridge.name"] == name
    assert first["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    assert first["Labels"] == {"executor.step-network": "true"}
