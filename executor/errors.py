"""The executor's exception hierarchy (one tree, drawn here as httpx draws its own).

    ExecutorError
    ├── ConfigError                 bad or missing EXECUTOR_* settings; exit status 2
    ├── ApiError                    the frontend could not be used
    │   ├── ApiUnavailable          transient (connection, timeout, 429, 5xx): retried at the edge
    │   ├── ApiRejected(status)     any other non-2xx answer; never retried
    │   │   └── ApiUnauthorized     401/403: the token is wrong, fix the configuration
    │   └── ApiDecodeError          a 2xx body that is not what the protocol says (HTML, bad JSON)
    └── JobError(job_id, step_key)  one job went wrong; its message becomes `errorMessage`
        ├── WorkspaceError          fetching the repository or writing job files failed
        ├── StepFailed(exit_code)   a step ended with a non-zero exit code
        ├── DiskFull(phase, path)   the workspace filesystem ran out of space or inodes
        └── LogFlushFailed          the final log update did not reach the frontend

Every job error is marked *errored* (retryable). Only the loop itself marks a job *failed*: when
the frontend cancels it (heartbeat `cancelIds`). A deadline or a hard stop is a cancel of the
job's task, not an exception, and the loop names it in the mark (`worker/loop.py`).

Every message here is built from redacted text only: callers pass step output through the
redactor before it reaches an exception. Imports nothing from the project.
"""

from __future__ import annotations

__all__ = [
    "ApiDecodeError",
    "ApiError",
    "ApiRejected",
    "ApiUnauthorized",
    "ApiUnavailable",
    "ConfigError",
    "DiskFull",
    "ExecutorError",
    "JobError",
    "LogFlushFailed",
    "StepFailed",
    "WorkspaceError",
]


class ExecutorError(Exception):
    """Root of every error the executor raises on purpose."""


class ConfigError(ExecutorError):
    """One or more settings are invalid; `problems` lists each, naming its variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            lines = "".join(f"\n\t* {p}" for p in self.problems)
            message = f"{len(self.problems)} errors occurred:{lines}"
        super().__init__(message)


class ApiError(ExecutorError):
    """A call to the frontend failed."""

    def __init__(self, operation: str, message: str) -> None:
        self.operation = operation
        super().__init__(f"{operation}: {message}")


class ApiUnavailable(ApiError):
    """A transient failure: the frontend is down, slow, overloaded or erroring (5xx/429)."""

    def __init__(
        self,
        operation: str,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(operation, message)


class ApiRejected(ApiError):
    """The frontend answered with a status that retrying will not change."""

    def __init__(self, operation: str, status: int, body: str) -> None:
        self.status = status
        self.body = body
        detail = body.strip()[:500]
        suffix = f": {detail}" if detail else ""
        super().__init__(operation, f"unexpected status code {status}{suffix}")


class ApiUnauthorized(ApiRejected):
    """401 or 403: the executor or job token was refused."""


class ApiDecodeError(ApiError):
    """The frontend answered 2xx with a body the protocol does not allow (e.g. an HTML page)."""


class JobError(ExecutorError):
    """A job failed; `str(err)` is the one-line, redacted `errorMessage` sent to the frontend."""

    def __init__(self, message: str, *, job_id: int | None = None, step_key: str | None = None):
        self.job_id = job_id
        self.step_key = step_key
        super().__init__(message)


class WorkspaceError(JobError):
    """The workspace could not be prepared (clone, files, paths)."""


class StepFailed(JobError):
    """A step exited non-zero."""

    def __init__(self, message: str, *, exit_code: int, step_key: str | None = None) -> None:
        self.exit_code = exit_code
        super().__init__(message, step_key=step_key)


class LogFlushFailed(JobError):
    """The last update of a log entry could not be delivered."""


class DiskFull(JobError):
    """A job ran out of disk: `phase` is workspace, clone, files or step; `path` is where."""

    def __init__(self, message: str, *, phase: str, path: str, step_key: str | None = None):
        self.phase = phase
        self.path = path
        super().__init__(message, step_key=step_key)
