"""V2 batches jobs end to end: `batch apply --wait` against a sandbox with
`native_server_side_execution` (Sourcegraph's `batchChanges.nativeServerSideExecution`), a real
daemon with the Docker runtime and the `executor-batcheshelper` image, gives exactly the
changeset specs a V1 sandbox gives for the README's spec over the sample repositories (their
commits are reproducible, so both sandboxes host the same repositories and commits)."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fixtures_sandbox import apply_and_wait, specs_by_workspace

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SPEC = Path(__file__).resolve().parents[2] / "examples" / "hello-world.batch.yaml"


def _cache_entries(box: Any) -> list[tuple[str, str]]:
    with sqlite3.connect(box.settings.db_path) as conn:
        rows = conn.execute("SELECT key, value FROM batch_cache_entries ORDER BY key").fetchall()
    return [(str(k), str(v)) for k, v in rows]


def test_v2_jobs_give_the_same_changeset_specs_as_v1(
    sandbox_factory: Any,
    daemon_factory: Any,
    helper_image: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    v1 = sandbox_factory()
    v2 = sandbox_factory(native_server_side_execution=True, batcheshelper_image=helper_image)
    for box in (v1, v2):
        box._call("POST", "/.sandbox/repos/samples")
        daemon_factory(frontend=box, maximum_num_jobs="2", queue_poll_interval="100ms")

    first = apply_and_wait(v1, SPEC, capsys)
    second = apply_and_wait(v2, SPEC, capsys)
    assert [w["state"] for w in first["workspaces"]] == ["completed"] * 4, first
    assert [w["state"] for w in second["workspaces"]] == ["completed"] * 4, second

    # The V2 jobs really were batcheshelper jobs: docker steps, `.post` entries with results.
    jobs = v2.jobs(queue="batches")
    assert len(jobs) == 4
    for job in jobs:
        keys = [e["key"] for e in v2.job(job["id"])["execution_logs"]]
        assert "step.docker.step.0.pre" in keys and "step.docker.step.0.post" in keys, keys
        assert not any(k.startswith("step.src") for k in keys), keys
    v1_keys = {
        e["key"] for j in v1.jobs(queue="batches") for e in v1.job(j["id"])["execution_logs"]
    }
    assert "step.src.batch-exec" in v1_keys

    assert specs_by_workspace(second) == specs_by_workspace(first)
    # Same keys, same results byte for byte (diffs, outputs, changed files, stdout).
    assert _cache_entries(v2) == _cache_entries(v1)
    assert len(_cache_entries(v1)) == 6  # step 1 in 4 workspaces, step 2 in 2
    assert len(specs_by_workspace(first)) == 4
    api = specs_by_workspace(second)["github.com/sandbox/monorepo:services/api"]
    assert "Files changed: services/api/README.md" in api["body"]

    # Re-applying against V2 is a full cache hit: the V2 cache entries are the V1 ones.
    again = apply_and_wait(v2, SPEC, capsys)
    assert [(w["cache"], w["job_id"]) for w in again["workspaces"]] == [("hit", None)] * 4
    assert specs_by_workspace(again) == specs_by_workspace(first)

    # Only the second step changes: the monorepo workspaces resume from step 1's cached result
    # (V2: `apply-diff` + `step0.json`, then step 2's pre/run/post), the others are full hits.
    changed = tmp_path / "changed.batch.yaml"
    changed.write_text(SPEC.read_text().replace('echo "Hello from', 'echo "Hi from'))
    third_v1, third_v2 = apply_and_wait(v1, changed, capsys), apply_and_wait(v2, changed, capsys)
    caches = sorted(w["cache"] for w in third_v2["workspaces"])
    assert caches == ["hit", "hit", "partial", "partial"], third_v2
    assert specs_by_workspace(third_v2) == specs_by_workspace(third_v1)
    api = specs_by_workspace(third_v2)["github.com/sandbox/monorepo:services/api"]
    assert "+Hi from services/api!" in base64.b64decode(api["commits"][0]["diff"]).decode()
    resumed = [j for j in v2.jobs(queue="batches") if j["id"] > 4]
    assert len(resumed) == 2
    for job in resumed:
        keys = [e["key"] for e in v2.job(job["id"])["execution_logs"]]
        assert "step.docker.apply-diff" in keys and "step.docker.step.0.pre" not in keys, keys
        assert "step.docker.step.1.post" in keys, keys
    assert _cache_entries(v2) == _cache_entries(v1)
