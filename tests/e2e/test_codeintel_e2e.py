"""A codeintel job end to end: the sandbox enqueues it in Sourcegraph's codeintel shape (the
sandbox CLI, `executor sandbox codeintel enqueue`), a real daemon polling `codeintel` runs its
`indexer` and `upload` steps in Docker, and the upload reaches the sandbox's
`/.executors/lsif/upload`, which records it.

Images are STAND-INS (no registry is reachable): `executor-indexer-standin:latest` for the
indexer and `executor-src-cli-standin:latest` for sourcegraph/src-cli (busybox `wget` POSTs
the gzipped dump as src-cli does; scripts/build-images.sh). What this shows: the job shape, the
executor running it, the upload step reaching the frontend from a step container
(`EXECUTOR_DOCKER_ADD_HOST_GATEWAY`, `host.docker.internal`, the sandbox listening on the
docker bridge's gateway address) with the executor token, the upload's query and headers as
Sourcegraph's handler reads them. Not shown: a real indexer or src-cli, multi-part uploads.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_sandbox import SANDBOX_TOKEN, Sandbox

from executor.sandbox.server import SandboxServer
from executor.sandbox.state import SandboxSettings

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _bridge_gateway() -> str:
    """The default bridge's address on the host (what `host-gateway` resolves to)."""
    name = subprocess.run(
        ["docker", "network", "inspect", "bridge", "-f",
         '{{index .Options "com.docker.network.bridge.name"}}'],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "dev", name or "docker0"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "inet" in out, f"the docker bridge {name} has no IPv4 address"
    return out[out.index("inet") + 1].split("/")[0]


@pytest.fixture
def bridge_sandbox(docker_engine: Any, tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox on the docker bridge's gateway address: reachable from step containers."""
    settings = SandboxSettings(token=SANDBOX_TOKEN, data_dir=tmp_path / "bridge-sandbox")
    box = Sandbox(SandboxServer(settings, host=_bridge_gateway()).start(), SANDBOX_TOKEN)
    try:
        yield box
    finally:
        box.close()


def _sandbox_cli(box: Sandbox, *args: str) -> str:
    env = {**os.environ, "SANDBOX_URL": box.url, "SANDBOX_TOKEN": box.token, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "executor", "sandbox", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_codeintel_job_uploads_its_index(
    bridge_sandbox: Sandbox, daemon_factory: Any, sample_repo: Any
) -> None:
    box = bridge_sandbox
    box.add_repo(sample_repo.name, sample_repo.path)
    out = _sandbox_cli(box, "codeintel", "enqueue", sample_repo.name)
    job_id = int(out.split("enqueued job ", 1)[1].split()[0])
    payload = box.store.get_job(job_id)
    assert payload is not None and payload.queue == "codeintel"

    daemon = daemon_factory(frontend=box, queue_name="codeintel", docker_add_host_gateway="true")
    job = box.wait_state(job_id, timeout=180)
    logs = {e["key"]: e for e in job["execution_logs"]}
    assert job["state"] == "completed", (
        job.get("failure_message"),
        {k: str(e.get("out"))[-800:] for k, e in logs.items()},
        daemon.log_text[-1500:],
    )
    assert [k for k in logs if k.startswith("step.")] == [
        "step.docker.indexer",
        "step.docker.upload",
    ]
    assert "standin-index: wrote" in logs["step.docker.indexer"]["out"]
    assert "src stand-in: uploaded dump.lsif" in logs["step.docker.upload"]["out"]
    assert box.token not in json.dumps(job["execution_logs"])  # the executor token

    uploads = box._call("GET", "/.sandbox/codeintel/uploads")
    assert len(uploads) == 1, uploads
    upload = uploads[0]
    assert upload["route"] == "lsif"
    assert upload["repository"] == sample_repo.name
    assert upload["commit"] == sample_repo.head
    assert upload["associated_index_id"] == job_id
    assert upload["indexer_name"] == "executor-indexer-standin"
    assert upload["indexer_version"] == "0.1.0"
    assert upload["root"] == "./"  # `-root .`, sanitized as Sourcegraph's handler does
    # The 202 answer src-cli reads: the upload's ID, as a string.
    assert f'{{"id":"{upload["id"]}"}}' in logs["step.docker.upload"]["out"].replace(" ", "")
    stored = box.settings.data_dir / "uploads" / f"upload-{upload['id']}.lsif.gz"
    dump = gzip.decompress(stored.read_bytes())
    assert len(dump) == upload["uncompressed_size"]
    assert b'"label":"document"' in dump and b"README.md" in dump and b"src/hello.txt" in dump

    listing = _sandbox_cli(box, "codeintel", "uploads")
    assert sample_repo.name in listing and "executor-indexer-standin" in listing
    page = box.client.get("/sandbox/ui/", headers=box.admin_headers)
    assert page.status_code == 200 and 'id="codeintel-uploads"' in page.text
    assert "executor-indexer-standin 0.1.0" in page.text
