"""Secrets audit (issue 6 item 4): secrets printed every awkward way never leave the executor.

Jobs carry `redactedValues` secrets and print them: whole, split across two reads (a sleep
between the halves), as a multi-line secret across lines, base64-encoded and URL-encoded, and
the executor token through the environment. Then every stored log entry (command and output),
every failure message, every daemon log line and the daemon's `/metrics` output are scanned:
zero occurrences of any secret, of its base64 or URL-encoded form, or of the executor token.

Decision: redacting encoded forms needs them in the redaction map, so `logstream.Redactor`
adds, per secret, its standard base64 (with and without padding) and its percent-encoding
(SECURITY comment there). Only the secret encoded on its own is caught; base64 of a longer text
that contains the secret is not matchable and is out of scope.
"""

from __future__ import annotations

import base64
import socket
import urllib.parse
from typing import Any

import httpx
import pytest
from fixtures_daemon import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "executor-busybox:latest"
FINAL = ("completed", "errored", "failed", "canceled")
TOKEN = "exec-token-9f3Kq7Zr2Lm8"
SECRET = "s3cr3t/p@ss w0rd+Q=="
PEM = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\nQ0aQ8bR7kLmN2pX5vY1wZ3uT\n-----END KEY-----"
SPLIT = "splitSECRETvalue42"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _forms(secret: str) -> list[str]:
    b64 = base64.b64encode(secret.encode()).decode()
    forms = [secret, b64, b64.rstrip("="), urllib.parse.quote(secret, safe="")]
    forms += [line for line in secret.splitlines() if len(line) >= 8 and "-----" not in line]
    return forms


def test_no_secret_survives_anywhere(
    sandbox_factory: Any, sample_repo: Any, daemon_factory: Any
) -> None:
    box = sandbox_factory(token=TOKEN)
    box.add_repo(sample_repo.name, sample_repo.path)
    quoted = urllib.parse.quote(SECRET, safe="")
    half = len(SPLIT) // 2
    script = [
        'echo "plain: $SECRET"',
        f"printf 'split: {SPLIT[:half]}'; sleep 0.6; printf '{SPLIT[half:]}\\n'",
        'printf "%s\\n" "$PEM"',
        'printf "%s" "$SECRET" | base64',
        'printf "%s" "$PEM" | base64',
        f"echo 'url: {quoted}'",
        'echo "token: $TOKEN" >&2',
        'echo "failing with $SECRET" >&2',
        "exit 3",
    ]
    env = [f"SECRET={SECRET}", f"PEM={PEM}", f"TOKEN={TOKEN}"]
    step = {"key": "leak", "image": IMAGE, "commands": script, "dir": ".", "env": env}
    secrets = {SECRET: "[S1]", PEM: "[PEM]", SPLIT: "[SPLIT]"}
    job_id = box.enqueue(
        {
            "repositoryName": sample_repo.name,
            "commit": sample_repo.head,
            "dockerSteps": [step],
            "redactedValues": secrets,
        }
    )
    port = _free_port()
    daemon = daemon_factory(frontend=box, metrics_port=str(port), log_level="debug")
    job = box.wait_state(job_id, FINAL, timeout=90)
    assert job["state"] == "failed", job["failure_message"]

    metrics = wait_for(lambda: _scrape(port), timeout=10)
    assert metrics and "executor_" in metrics
    entries = job["execution_logs"]
    out = {e["key"]: e for e in entries}["step.docker.leak"]["out"]
    # The secrets were really printed (and replaced), so the scan below means something.
    assert "plain: [S1]" in out and "split: [SPLIT]" in out and "url: [S1]" in out
    assert "[PEM]" in out and "token: SECRET_REMOVED" in out
    haystacks = {
        "logs": [" ".join(e.get("command") or []) + e.get("out", "") for e in entries],
        "failure": [job["failure_message"] or ""],
        "daemon": daemon.log_text.splitlines(),
        "metrics": metrics.splitlines(),
    }
    forbidden = [TOKEN, *_forms(SECRET), *_forms(PEM), SPLIT]
    for where, texts in haystacks.items():
        for text in texts:
            for needle in forbidden:
                assert needle not in text, (where, needle, text[:300])
    assert daemon.proc.poll() is None


def _scrape(port: int) -> str | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
    except httpx.TransportError:
        return None
    return response.text if response.status_code == 200 else None
