"""``executor batch exec -f input.json …`` standalone, and ``executor batch helper pre|post <i>``.

Owns: the debugging/test entry point that runs the engine in the current directory with a
:class:`~executor.runtime.docker.DockerRuntime` (default ``DockerOptions``) and prints
src-cli's JSON events on stdout, one per line; errors go to stderr. Exit codes as src: 0, 1
(a step or the input failed), 2 (bad flags).

Must not know: the queue or the daemon's configuration. Step containers are labelled
``executor.name=batch-exec-cli`` and named ``executor-batch-exec-cli-<pid>-batch-<i>``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from executor.batch.execflags import ExecFlags, FlagError, parse_exec_flags, run_batch_exec
from executor.batch.helper import HelperError, parse_helper_args, run_helper
from executor.batch.hostrunner import DockerStepRunner
from executor.batch.step_prepare import ContainerRunner, StepFailure
from executor.runtime import forwarded_env
from executor.runtime.argv import DockerOptions, container_labels, container_name
from executor.runtime.docker import DockerRuntime

__all__ = ["CLI_EXECUTOR_NAME", "helper_main", "main"]

CLI_EXECUTOR_NAME = "batch-exec-cli"


def main(argv: list[str], environ: Mapping[str, str]) -> int:
    """Run ``batch exec`` with the flags in ``argv`` (the part after ``batch exec``).

    ``environ`` is handed in by the composition root (nothing but config and cli read the
    process environment)."""
    try:
        flags = parse_exec_flags(argv)
    except FlagError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return asyncio.run(_run(flags, environ))


async def _run(flags: ExecFlags, outer: Mapping[str, str]) -> int:
    # SECURITY: like src, the whole process environment is the "outer" env that step
    # pass-through variables (secrets) are resolved against; it never reaches docker itself.
    environ = dict(outer)
    cwd = Path.cwd()
    runtime = DockerRuntime(executor_name=CLI_EXECUTOR_NAME, env=forwarded_env(environ))
    job_id = f"{os.getpid()}"
    labels = container_labels(executor_name=CLI_EXECUTOR_NAME, job_id=job_id, host="local")

    def runner_for(flags: ExecFlags, root: Path) -> ContainerRunner:
        return DockerStepRunner(
            runtime=runtime,
            docker=DockerOptions(),
            root=root,
            name_for=lambda i: container_name(CLI_EXECUTOR_NAME, job_id, f"batch-{i}"),
            labels=labels,
            run_as_image_user=flags.run_as_image_user,
        )

    def emit(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        code, _ = await run_batch_exec(
            flags, cwd=cwd, runner_for=runner_for, emit=emit, environ=environ
        )
    except (StepFailure, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        runtime.close()
    return code


def helper_main(argv: list[str], environ: Mapping[str, str]) -> int:
    """``executor batch helper pre|post <i> [flags]`` (Sourcegraph's ``batcheshelper``).

    Runs in the job directory (the working directory); events go to stdout, one JSON line
    each, errors to stderr with exit code 1, as batcheshelper's ``main``."""
    try:
        args = parse_helper_args(argv)
    except HelperError as err:
        print(f"Usage: batcheshelper <pre|post> <step index> [OPTIONS]\n{err}", file=sys.stderr)
        return 1

    def emit(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        asyncio.run(run_helper(args, cwd=Path.cwd(), environ=dict(environ), emit=emit))
    except HelperError as err:
        print(str(err), file=sys.stderr)
        return 1
    return 0
