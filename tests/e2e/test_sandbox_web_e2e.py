"""The web page watching the real daemon: a running step's output reaches the job page's JSON and
HTML while the step still sleeps, and the page's cancel button stops it (real Docker, real git,
real HTTP over loopback)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fixtures_daemon import wait_for

from executor.sandbox.web import COOKIE

pytestmark = [pytest.mark.docker, pytest.mark.slow]

UI = "/sandbox/ui"


def test_page_shows_a_running_steps_output_and_cancels_it(
    sandbox: Any, sample_repo: Any, daemon_factory: Any
) -> None:
    sandbox.add_repo(sample_repo.name, sample_repo.path)
    step = {
        "key": "",
        "image": "executor-busybox:latest",
        "commands": ["echo started-the-step", "sleep 1000"],
        "dir": ".",
        "env": [],
    }
    job = {"repositoryName": sample_repo.name, "commit": sample_repo.head, "dockerSteps": [step]}
    job_id = sandbox.enqueue(job)
    page = httpx.Client(base_url=sandbox.url, timeout=60.0)
    assert page.post(f"{UI}/login", data={"token": sandbox.token}).status_code == 303
    assert COOKIE in page.cookies
    daemon_factory()

    def seen() -> dict[str, Any] | None:
        data: dict[str, Any] = page.get(f"{UI}/jobs/{job_id}/data").json()
        outs = "".join(e["out"] for e in data["entries"])
        return data if "started-the-step" in outs else None

    data = wait_for(seen, timeout=120, interval=0.5)
    assert data, f"the step's output never reached the page: {sandbox.job(job_id)}"
    assert (data["state"], data["finished"]) == ("processing", False)
    html = page.get(f"{UI}/jobs/{job_id}").text
    assert "started-the-step" in html and 'id="cancel"' in html

    assert page.post(f"{UI}/jobs/{job_id}/cancel").status_code == 303
    job_now = sandbox.wait_state(job_id, ("completed", "errored", "failed", "canceled"), 60)
    assert job_now["state"] == "canceled"
    final = page.get(f"{UI}/jobs/{job_id}/data").json()
    assert (final["state"], final["finished"]) == ("canceled", True)
