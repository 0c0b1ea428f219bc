"""Not a test: the "daemon" side of `test_rootclean_docker.py`, run as an unprivileged user.

Usage: `python rootclean_child.py MODE WORKSPACE EXECUTOR_NAME CLEANUP_IMAGE [STEP_IMAGE]`,
MODE `teardown` (the job's `teardown_workspace` with the root-cleanup fallback) or `janitor`
(one `Janitor.run_once` sweep, wired to `RootCleaner.remove_workspace` as `executor run` wires it,
over a workspace whose owner marker names an executor that is gone). Prints one JSON object:
the result, the `teardown.fs` entry's text, whether the workspace still exists, the log events.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from executor.logstream.logger import ExecutionLogger, Redactor
from executor.runtime.argv import DockerOptions
from executor.runtime.docker import DockerRuntime
from executor.runtime.janitor import Janitor
from executor.runtime.rootclean import RootCleaner
from executor.wire import ExecutionLogEntry, Job
from executor.workspace.clone import Workspace, teardown_workspace
from executor.workspace.marker import write_owner_marker


class Sink:
    def __init__(self) -> None:
        self.entries: dict[int, ExecutionLogEntry] = {}

    async def add_execution_log_entry(self, job: Job, entry: ExecutionLogEntry) -> int:
        self.entries[len(self.entries) + 1] = entry
        return len(self.entries)

    async def update_execution_log_entry(
        self, job: Job, entry_id: int, entry: ExecutionLogEntry
    ) -> None:
        self.entries[entry_id] = entry


async def main(mode: str, path: Path, name: str, image: str, step_images: list[str]) -> Any:
    runtime = DockerRuntime(executor_name=name, env=dict(os.environ))
    cleaner = RootCleaner(
        runtime=runtime,
        docker=DockerOptions(cpus=1, memory="256M", pids_limit=4096),
        executor_name=name,
        host_label="test",
        image=image,
    )
    job = Job.model_validate({"id": 7})
    out: dict[str, Any] = {"uid": os.getuid()}
    try:
        with capture_logs() as logs:
            if mode == "teardown":
                sink = Sink()
                logger = ExecutionLogger(sink, job, Redactor({}))
                ws = Workspace(path=path, repo_path=path, scripts_dir=path)
                remover = cleaner.remover(job_id="7", images=step_images)
                out["ok"] = await teardown_workspace(ws, logger, False, remove_as_root=remover)
                await logger.flush()
                out["entry"] = next(e.out for e in sink.entries.values() if e.key == "teardown.fs")
            else:
                write_owner_marker(path, executor_name="gone-executor", job_id="7")
                janitor = Janitor(
                    runtime=runtime,
                    executor_name=name,
                    host="test",
                    workspace_root=path.parent,
                    live_jobs=list,
                    remove_workspace=lambda p, job: cleaner.remove_workspace(
                        p, job_id=job, images=step_images
                    ),
                )
                sweep = await janitor.run_once()
                out["removed"] = [str(p) for p in sweep.workspaces]
                out["errors"] = sweep.errors
    finally:
        runtime.close()
    out["exists"] = os.path.lexists(path)
    out["logs"] = [{k: str(v) for k, v in event.items()} for event in logs]
    return out


if __name__ == "__main__":
    mode, workspace, executor_name, cleanup_image, *images = sys.argv[1:]
    result = asyncio.run(main(mode, Path(workspace), executor_name, cleanup_image, images))
    print(json.dumps(result))
