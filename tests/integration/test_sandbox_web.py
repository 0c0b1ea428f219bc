"""The sandbox's web page over loopback (`executor.sandbox.web`): the site token gates every page,
a job's log entries reach the page and its JSON while the job is still processing (appended
through the queue API as an executor does), the cancel button cancels, a 16 MiB entry is cut
for display (its whole output a download away), and a batch spec's diffs are shown escaped
with +/- lines marked."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import test_sandbox_batch
from test_sandbox_batch import (
    EXECUTOR,
    SPEC,
    _applied,
    _dequeue,
    _finish,
    _input,
    _key,
    _log_out,
    _result,
)

from executor.sandbox.web import COOKIE, DISPLAY_LIMIT

UI = "/sandbox/ui"
samples = test_sandbox_batch.samples  # the fixture: sample repositories and an executor
SECRET_OUT = "stdout: the-log-line-only-token-holders-see"
JOB = {
    "repositoryName": "github.com/sandbox/hello-go",
    "commit": "0" * 40,
    "dockerSteps": [{"image": "executor-busybox:latest", "commands": ["sleep 600"]}],
}


def _browser(box: Any) -> httpx.Client:
    """A client holding the login cookie, as a browser does after the login form."""
    client = httpx.Client(base_url=box.url, timeout=60.0)
    response = client.post(f"{UI}/login", data={"token": box.token})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{UI}/"
    assert COOKIE in client.cookies
    return client


def _running(box: Any) -> tuple[dict[str, Any], dict[str, str]]:
    box.enqueue(JOB)
    job = _dequeue(box)
    return job, box.job_headers(job, EXECUTOR)


def _add_entry(box: Any, job: dict[str, Any], headers: dict[str, str], out: str) -> int:
    body = {
        "executorName": EXECUTOR,
        "jobId": job["id"],
        "key": "step.docker.0",
        "command": ["docker", "run"],
        "startTime": "2024-05-01T12:00:00Z",
        "out": out,
    }
    response = box.client.post(
        "/.executors/queue/batches/addExecutionLogEntry", headers=headers, json=body, timeout=120
    )
    assert response.status_code == 200, response.text
    return int(response.text)


def stop_as_canceled(box: Any, job: dict[str, Any]) -> None:
    """The executor's side of a cancel: its heartbeat is told to cancel, it stops the job."""
    beat = box.client.post(
        "/.executors/queue/batches/heartbeat",
        headers=box.admin_headers,
        json={"executorName": EXECUTOR, "jobIds": [str(job["id"])]},
    )
    assert str(job["id"]) in beat.json()["cancelIds"], beat.text
    done = {"executorName": EXECUTOR, "jobId": job["id"], "errorMessage": "canceled"}
    response = box.client.post(
        "/.executors/queue/batches/markFailed", headers=box.admin_headers, json=done
    )
    assert response.status_code == 204, response.text


def test_every_page_needs_the_site_token_and_leaks_nothing(samples: Any) -> None:
    job, headers = _running(samples)
    _add_entry(samples, job, headers, SECRET_OUT)
    anonymous = httpx.Client(base_url=samples.url, timeout=60.0)
    wrong_cookie = httpx.Client(base_url=samples.url, timeout=60.0, cookies={COOKIE: "nope"})
    pages = [
        f"{UI}/",
        f"{UI}/jobs/{job['id']}",
        f"{UI}/jobs/{job['id']}/data",
        f"{UI}/jobs/{job['id']}/logs/1",
        f"{UI}/batches/1",
    ]
    for path in pages:
        for client, extra, says in (
            (anonymous, {}, "needs the site token"),
            (wrong_cookie, {}, "token is wrong"),
            (anonymous, {"Authorization": "token-executor nope"}, "header is wrong"),
        ):
            response = client.get(path, headers=extra)
            assert response.status_code == 401, path
            assert says in response.text, (path, response.text)
            assert "the-log-line" not in response.text and "hello-go" not in response.text
            assert EXECUTOR not in response.text
    response = anonymous.post(f"{UI}/jobs/{job['id']}/cancel")
    assert response.status_code == 401
    assert samples.job(job["id"])["cancel"] is False
    response = anonymous.post(f"{UI}/login", data={"token": "nope"})
    assert response.status_code == 401 and "token is wrong" in response.text
    assert COOKIE not in anonymous.cookies
    # The admin header works as well as the cookie.
    response = anonymous.get(f"{UI}/", headers=samples.admin_headers)
    assert response.status_code == 200 and EXECUTOR in response.text


def test_log_entries_appear_while_the_job_runs_and_cancel_works(samples: Any) -> None:
    browser = _browser(samples)
    job, headers = _running(samples)
    data = browser.get(f"{UI}/jobs/{job['id']}/data").json()
    assert (data["state"], data["finished"], data["entries"]) == ("processing", False, [])
    entry_id = _add_entry(samples, job, headers, "stdout: first line\n")
    data = browser.get(f"{UI}/jobs/{job['id']}/data").json()
    assert data["state"] == "processing"
    assert [e["out"] for e in data["entries"]] == ["stdout: first line\n"]
    update = {
        "executorName": EXECUTOR,
        "jobId": job["id"],
        "entryId": entry_id,
        "key": "step.docker.0",
        "command": ["docker", "run"],
        "startTime": "2024-05-01T12:00:00Z",
        "out": "stdout: first line\nstdout: <b>second</b> line\n",
    }
    response = samples.client.post(
        "/.executors/queue/batches/updateExecutionLogEntry", headers=headers, json=update
    )
    assert response.status_code == 204, response.text
    data = browser.get(f"{UI}/jobs/{job['id']}/data").json()
    assert "<b>second</b> line" in data["entries"][0]["out"]
    page = browser.get(f"{UI}/jobs/{job['id']}").text
    assert "&lt;b&gt;second&lt;/b&gt; line" in page and "<b>second" not in page
    assert f"{UI}/jobs/{job['id']}/data" in page and 'id="cancel"' in page

    # A cross-origin POST is refused; the page's own form cancels.
    evil = browser.post(f"{UI}/jobs/{job['id']}/cancel", headers={"Origin": "http://evil.test"})
    assert evil.status_code == 403
    assert samples.job(job["id"])["cancel"] is False
    response = browser.post(f"{UI}/jobs/{job['id']}/cancel")
    assert response.status_code == 303
    assert samples.job(job["id"])["cancel"] is True
    stop_as_canceled(samples, job)
    data = browser.get(f"{UI}/jobs/{job['id']}/data").json()
    assert (data["state"], data["finished"]) == ("canceled", True)
    page = browser.get(f"{UI}/jobs/{job['id']}").text
    assert 'class="state-canceled">canceled' in page and 'id="cancel"' not in page

    queued = samples.enqueue(JOB)
    assert browser.post(f"{UI}/jobs/{queued}/cancel").status_code == 303
    assert samples.job(queued)["state"] == "canceled"
    index = browser.get(f"{UI}/").text
    assert f'href="{UI}/jobs/{queued}"' in index and EXECUTOR in index
    assert browser.get(f"{UI}/jobs/999").status_code == 404


def test_a_16_mib_log_entry_is_cut_for_display(samples: Any) -> None:
    browser = _browser(samples)
    job, headers = _running(samples)
    line = "stdout: " + "x" * 1015 + "\n"
    _add_entry(samples, job, headers, line * (16 * 1024) + "stdout: THE-END\n")
    response = browser.get(f"{UI}/jobs/{job['id']}")
    assert response.status_code == 200
    assert len(response.content) < 2 * DISPLAY_LIMIT
    assert "THE-END" in response.text and "only the last" in response.text
    data = browser.get(f"{UI}/jobs/{job['id']}/data").json()
    [entry] = data["entries"]
    assert len(entry["out"].encode()) <= DISPLAY_LIMIT and entry["note"]
    # The notice links the whole output, as a plain text download.
    raw_url = f"{UI}/jobs/{job['id']}/logs/1"
    assert entry["raw_url"] == raw_url
    assert f'<a class="raw" href="{raw_url}">Download the full output</a>' in response.text
    raw = browser.get(raw_url)
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/plain")
    assert "attachment" in raw.headers["content-disposition"]
    assert len(raw.content) == 16 * 1024 * 1024 + len("stdout: THE-END\n")
    assert raw.text.endswith("stdout: THE-END\n")
    assert browser.get(f"{UI}/jobs/{job['id']}/logs/2").status_code == 404


def test_batch_spec_page_shows_workspaces_and_escaped_coloured_diffs(samples: Any) -> None:
    browser = _browser(samples)
    secrets = {"GITHUB_TOKEN": "t0ps3cret"}
    status = _applied(samples, SPEC, secrets=secrets)
    job = _dequeue(samples)
    inp = _input(job)
    env = ("GITHUB_TOKEN=t0ps3cret",)
    diff = (
        b"diff --git README.md README.md\nindex 1..2 100644\n--- README.md\n+++ README.md\n"
        b"@@ -1 +1 @@\n-foo\n+<script>alert(1)</script>\n"
    )
    results = [(_key(inp, i, env), _result(i, diff, outputs={"said": "hi\n"})) for i in (0, 1)]
    _finish(samples, job, _log_out(results))
    index = browser.get(f"{UI}/").text
    assert f'href="{UI}/batches/{status["id"]}"' in index
    page = browser.get(f"{UI}/batches/{status['id']}").text
    assert "github.com/sandbox/hello-go" in page and 'class="state-completed"' in page
    assert '<span class="add">+&lt;script&gt;alert(1)&lt;/script&gt;</span>' in page
    assert '<span class="del">-foo</span>' in page and "<script>alert" not in page
    assert base64.b64encode(diff).decode() not in page
    assert "t0ps3cret" not in page
