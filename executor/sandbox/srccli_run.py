"""`batch preview` and `batch apply` against the sandbox: src-cli's `executeBatchSpec`
(`cmd/src/batch_common.go`), with the sandbox's executors doing the execution.

Order and texts as src-cli prints them on stderr (`executor.sandbox.srccli_ui`):
parsing (locally, as src-cli does: a failing spec prints `Batch spec failed validation.` and
exits 2), resolving namespace, `Resolved N workspaces from M repositories` (the sandbox
creates the batch spec, resolves its workspaces and enqueues one job per workspace not fully
cached), `Found N cached changeset specs; M tasks need to be executed`, the jobs until none is
queued or processing (`Executing... (d/t, e errored)`), failed workspaces as src-cli's task
errors with the job page as `Log:` (exit 1; with `-skip-errors` the spec is still created),
`Sending N changeset specs`, `Creating batch spec on Sourcegraph`, then for `preview` the
preview URL (the sandbox page `/sandbox/ui/batches/ID`) and for `apply` `Batch change
applied!` with the same page, now marked applied. Any other error is printed in src-cli's
`Error:` block with the troubleshooting link; exit 1.

Waiting polls `GET /.sandbox/batches/ID/summary` (counts only) every `poll_interval(tasks)`
seconds and fetches the full status once at the end. The summary's aggregate query reads every
workspace row: at 20,000 workspaces one answer took 50-140 ms on a loaded machine, and a fixed
0.5 s poll took a tenth to a quarter of a core from the jobs (`bench.batch20k`). The interval
grows with the batch instead: 0.5 s up to 2,000 tasks, at most 5 s. Sandbox extras on stdout:
`-json` (the final status), `-wait` (each changeset spec with its diff, the form this project
had first), `-summary` (one line of counts); `-wait-timeout D` bounds the wait (0 = none).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from executor.sandbox.srccli_client import Client, Failed, read_spec, spec_errors
from executor.sandbox.srccli_ui import TUI, task_error

__all__ = ["execute_batch_spec", "poll_interval"]

# `errored` is a job the sandbox will dequeue again (`max_num_retries` > 0): still running.
_ACTIVE = ("queued", "processing", "errored")
_FAILED = ("failed", "canceled")
_SECRET_PREFIX = "SANDBOX_SECRET_"


def _secrets() -> dict[str, str]:
    return {
        k.removeprefix(_SECRET_PREFIX): v
        for k, v in os.environ.items()
        if k.startswith(_SECRET_PREFIX) and len(k) > len(_SECRET_PREFIX)
    }


def _job_counts(summary: dict[str, Any]) -> tuple[int, int]:
    """(finished jobs, failed jobs) from a summary."""
    jobs: dict[str, int] = summary["jobs"]
    active = sum(jobs.get(s, 0) for s in _ACTIVE)
    return sum(jobs.values()) - active, sum(jobs.get(s, 0) for s in _FAILED)


def poll_interval(tasks: int) -> float:
    """Seconds between two summary polls while `tasks` jobs run (the cost grows with them)."""
    return min(5.0, max(0.5, tasks / 4000))


def _wait(client: Client, spec_id: int, tasks: int, opts: dict[str, Any], tui: TUI) -> None:
    deadline = time.monotonic() + opts["wait-timeout"] if opts["wait-timeout"] else None
    console = Console(file=tui.out)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        task = bar.add_task(TUI.executing_label(0, tasks, 0), total=tasks)
        while True:
            summary = client.call("GET", f"/.sandbox/batches/{spec_id}/summary")
            done, failed = _job_counts(summary)
            bar.update(task, completed=done, description=TUI.executing_label(done, tasks, failed))
            if done >= tasks or (failed and opts["fail-fast"]):
                break
            if deadline is not None and time.monotonic() > deadline:
                raise Failed(f"timed out after {opts['wait-timeout']:.0f}s waiting for the jobs")
            time.sleep(poll_interval(tasks))
    if failed and opts["fail-fast"]:
        _cancel_rest(client, spec_id)
    tui.done(TUI.executing_label(done, tasks, failed))


def _cancel_rest(client: Client, spec_id: int) -> None:
    """`-fail-fast`: cancel every job of the batch spec that has not finished."""
    status = client.call("GET", f"/.sandbox/batches/{spec_id}")
    for ws in status["workspaces"]:
        if ws["job_id"] is not None and ws["state"] in _ACTIVE:
            client.call("POST", f"/.sandbox/jobs/{ws['job_id']}/cancel")


def _failures(client: Client, status: dict[str, Any]) -> list[str]:
    errors = []
    for ws in status["workspaces"]:
        if ws["state"] in _FAILED or (ws["job_id"] is None and ws["failure_message"]):
            where = ws["repository"] + (f" ({ws['path']})" if ws["path"] else "")
            log = client.page(f"/jobs/{ws['job_id']}") if ws["job_id"] is not None else "-"
            message = ws["failure_message"] or ws["state"]
            errors.append(task_error(where, message, log))
    return errors


def execute_batch_spec(opts: dict[str, Any], file: str, *, apply: bool, tui: TUI) -> int:
    """Run the spec in `file` (`""`/`-`: stdin) through the sandbox; the exit status."""
    try:
        raw = read_spec(file)
    except Failed as err:
        tui.execution_error([str(err)])
        return 1
    errors = spec_errors(raw)
    if errors:
        tui.validation_failure(errors)
        return 2
    tui.done("Parsing batch spec")
    tui.done("Resolving namespace")
    try:
        with Client(opts) as client:
            status = _execute(client, raw, opts, apply=apply, tui=tui)
    except Failed as err:
        tui.execution_error([str(err)])
        return 1
    if status is None:
        return 1
    _print_extras(status, opts)
    return 0


def _execute(
    client: Client, raw: str, opts: dict[str, Any], *, apply: bool, tui: TUI
) -> dict[str, Any] | None:
    body = {
        "spec": raw,
        "namespace": opts["namespace"],
        "secrets": _secrets(),
        "clear_cache": opts["clear-cache"],
        "step_timeout": opts["timeout"] or None,
    }
    status = client.call("POST", "/.sandbox/batches", json=body, wrap="resolving repositories")
    workspaces = status["workspaces"]
    repos = len({ws["repository_id"] for ws in workspaces})
    tui.workspaces(len(workspaces), repos)
    tasks = sum(1 for ws in workspaces if ws["job_id"] is not None)
    tui.cache(len(status["changeset_specs"]), tasks)
    if tasks:
        _wait(client, status["id"], tasks, opts, tui)
    status = dict(client.call("GET", f"/.sandbox/batches/{status['id']}"))
    errors = _failures(client, status)
    if errors and not opts["skip-errors"]:
        tui.execution_error(errors)
        return None
    if errors:
        tui.skipping_errors(errors)
    tui.changeset_specs(len(status["changeset_specs"]), repos)
    tui.done("Creating batch spec on Sourcegraph")
    url = client.page(f"/batches/{status['id']}")
    if not apply:
        tui.preview(url)
        return status
    client.call("POST", f"/.sandbox/batches/{status['id']}/apply")
    tui.applied(url)
    applied: dict[str, Any] = {**status, "applied": True}
    return applied


def _print_extras(status: dict[str, Any], opts: dict[str, Any]) -> None:
    if opts["json"]:
        print(json.dumps(status, indent=2))
    elif opts["summary"] or opts["wait"]:
        from executor.sandbox.batch_cli import print_status

        print_status(Console(), status, summary=opts["summary"])
    sys.stdout.flush()
