"""The executor's client of Sourcegraph's executor queue API (`/.executors/queue`, files, test).

Source: `cmd/executor/internal/apiclient/queue/client.go` and `baseclient.go`; the server side
is `enterprise/cmd/frontend/internal/executorqueue/handler`. Paths, headers and bodies follow them:
- executor-token calls (dequeue, heartbeat, auth test): `Authorization: token-executor <token>`;
- job calls (log entries, marks, files): `Authorization: Bearer <job token>` plus
  `X-Sourcegraph-Job-ID` and `X-Sourcegraph-Executor-Name`, falling back to the executor token
  when a job carries none (older frontends);
- the queue of a job call is the job's own `queue` (multi-queue mode) or the configured one;
- `204` from dequeue means "no job"; a job payload that does not decode raises
  `wire.MalformedJob` when it still identifies its job (the worker marks it failed), else
  `ApiDecodeError`. Neither message quotes the payload (its secrets).

Retries (our policy; the Go client's predicate was not verified, §11): connection errors,
timeouts, 429 and 5xx are retried with capped, jittered exponential backoff that honours
`Retry-After`. `addExecutionLogEntry` is not idempotent (it appends), so it is re-sent only when
the request provably never reached the server (connect errors) or the server itself refused it
(429, 500, 503: a handler that failed appended nothing). A 502/504 (a gateway: the server may
have appended) or a lost answer is not re-sent. Dequeue and heartbeat are never retried here:
the loop polls again with its own back-off (a heartbeat within `HEARTBEAT_TIMEOUT` plus the
loop's cap), and a job lost in a reply is reset by the frontend's stalled-job resetter.
401/403 raise `ApiUnauthorized` at once; other 4xx raise `ApiRejected`.

SECURITY: tokens live only in request headers. No log line, metric label or exception message
built here contains a header.

Must not know what a job means, Docker, workspaces or the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import structlog
from tenacity import RetryCallState

from executor.apiclient.base import (
    BaseClient,
    JsonString,
    Observer,
    RetryPolicy,
    decode_json,
    first_error,
    never_sent,
)
from executor.errors import ApiDecodeError, ApiRejected, ApiUnauthorized, ApiUnavailable
from executor.wire import (
    AddExecutionLogEntryRequest,
    DequeueRequest,
    ExecutionLogEntry,
    HeartbeatRequest,
    HeartbeatRequestV1,
    HeartbeatResponse,
    Job,
    MalformedJob,
    MarkCompleteRequest,
    MarkErroredRequest,
    OutputPieces,
    QueueJobIDs,
    UpdateExecutionLogEntryRequest,
    decode_job,
    parse_record_uid,
)

__all__ = ["QueueClient", "Telemetry"]

log = structlog.get_logger("executor.apiclient.queue")

#: Seconds a heartbeat may take: with the loop's back-off cap (10 s) well inside the
#: frontend's 25 s stalled-job window.
HEARTBEAT_TIMEOUT = 10.0

# Answers of the frontend itself that mean "not done" (never a gateway's 502/504).
_REFUSED = (429, 500, 503)


def _add_retryable(err: BaseException) -> bool:
    """An add that certainly appended nothing: never sent, or refused by the server itself."""
    refused = isinstance(err, ApiUnavailable) and err.status in _REFUSED
    return never_sent(err) or refused


def _log_body(body: dict[str, Any]) -> dict[str, Any]:
    """A log entry's body: an `out` given in pieces (`ExecutionLogEntry.with_output_parts`)
    goes out as one JSON string streamed from them."""
    out = body.get("out")
    if isinstance(out, OutputPieces):
        body["out"] = JsonString(out.parts)
    return body


# Returns the heartbeat's host facts (`os`, versions, `prometheusMetrics`) by wire field name.
Telemetry = Callable[[], dict[str, str]]


class QueueClient(BaseClient):
    """All calls the executor makes to the frontend, over one pooled `httpx.AsyncClient`."""

    def __init__(
        self,
        *,
        frontend_url: str,
        token: str,
        executor_name: str,
        queues: list[str],
        version: str,
        resources: dict[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        observe: Observer | None = None,
        telemetry: Telemetry | None = None,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            frontend_url=frontend_url,
            retry=retry,
            observe=observe,
            timeout=timeout,
            transport=transport,
        )
        self._token = token
        self.executor_name = executor_name
        self.queues = list(queues)
        self.version = version
        self._resources = resources or {}
        self._telemetry = telemetry

    @property
    def multi_queue(self) -> bool:
        return len(self.queues) > 1

    # --- executor-token calls -------------------------------------------------------------

    async def dequeue(self) -> Job | None:
        """Ask for a job; `None` means the queue had nothing (204)."""
        if self.multi_queue:
            path, queues = "/.executors/queue/dequeue", self.queues
        else:
            path, queues = f"/.executors/queue/{self.queues[0]}/dequeue", []
        body = DequeueRequest(
            queues=queues,
            executor_name=self.executor_name,
            version=self.version,
            **self._resources,
        ).to_wire()
        response = await self.call(
            "Dequeue", "POST", path, self._executor_headers(), body, retry=False
        )
        if response.status_code == 204:
            return None
        data = decode_json(response, "Dequeue")
        try:
            return decode_job(data)
        except MalformedJob as err:
            # The worker marks it failed; in multi-queue mode only when the queue says whose
            # job it is (IDs overlap across queues), never by guessing the first queue.
            if err.job.queue in self.queues or (not err.job.queue and not self.multi_queue):
                raise
            raise ApiDecodeError("Dequeue", f"malformed job payload: {err.reason}") from None
        except ValueError as err:
            raise ApiDecodeError("Dequeue", f"malformed job payload: {err}") from None

    async def heartbeat(self, job_uids: list[str]) -> tuple[list[str], list[str]]:
        """Report running jobs; return (known, cancel) record UIDs as the server names them."""
        fields = self._telemetry() if self._telemetry else {}
        if self.multi_queue:
            body = self._multi_heartbeat(job_uids, fields)
            if body is None:
                return [], []
            path = "/.executors/queue/heartbeat"
        else:
            try:
                ids = [parse_record_uid(uid)[0] for uid in job_uids]
            except ValueError:
                # Sourcegraph sends nothing and reports every job unknown (§2.6).
                log.warning("Unparseable job IDs in heartbeat set")
                return [], []
            body = HeartbeatRequestV1(
                executor_name=self.executor_name, job_ids=ids or None, **fields
            ).to_wire()
            path = f"/.executors/queue/{self.queues[0]}/heartbeat"
        # Not retried here: the loop backs off and heartbeats again within its bound, which a
        # retry honouring a long Retry-After could overrun; bounded by HEARTBEAT_TIMEOUT.
        response = await self.call(
            "Heartbeat",
            "POST",
            path,
            self._executor_headers(),
            body,
            retry=False,
            timeout=HEARTBEAT_TIMEOUT,
        )
        try:
            parsed = HeartbeatResponse.model_validate(decode_json(response, "Heartbeat"))
        except ValueError as err:
            raise ApiDecodeError("Heartbeat", f"malformed response: {first_error(err)}") from err
        return parsed.known_ids, parsed.cancel_ids

    def _multi_heartbeat(
        self, job_uids: list[str], fields: dict[str, str]
    ) -> dict[str, Any] | None:
        by_queue: dict[str, list[str]] = {}
        try:
            for uid in job_uids:
                job_id, queue = parse_record_uid(uid)
                if not queue:
                    raise ValueError(uid)
                by_queue.setdefault(queue, []).append(str(job_id))
        except ValueError:
            log.warning("failed to parse one or more unexpected job ID formats")
            return None
        groups = [QueueJobIDs(queue_name=q, job_ids=ids) for q, ids in sorted(by_queue.items())]
        return HeartbeatRequest(
            executor_name=self.executor_name,
            job_ids_by_queue=groups,
            queue_names=self.queues,
            **fields,
        ).to_wire()

    async def ping(self) -> None:
        """The startup heartbeat that registers this executor (§2.7)."""
        if self.multi_queue:
            path = "/.executors/queue/heartbeat"
            body = HeartbeatRequest(executor_name=self.executor_name, queue_names=self.queues)
        else:
            path = f"/.executors/queue/{self.queues[0]}/heartbeat"
            body = HeartbeatRequest(executor_name=self.executor_name)
        await self.call(
            "Heartbeat", "POST", path, self._executor_headers(), body.to_wire(), retry=False
        )

    async def check_auth(self) -> None:
        """`GET /.executors/test/auth`; raises ApiUnauthorized with Sourcegraph's hint on 401."""
        try:
            await self.call(
                "TestAuth",
                "GET",
                "/.executors/test/auth",
                self._executor_headers(),
                None,
                retry=False,
            )
        except ApiUnauthorized as err:
            raise ApiUnauthorized(
                "TestAuth",
                err.status,
                "failed to authorize with frontend, is executors.accessToken set correctly "
                "in the site-config?",
            ) from err

    # --- job-token calls ------------------------------------------------------------------

    async def add_execution_log_entry(self, job: Job, entry: ExecutionLogEntry) -> int:
        body = _log_body(
            AddExecutionLogEntryRequest(
                executor_name=self.executor_name, job_id=job.id, entry=entry
            ).to_wire()
        )
        response = await self.call(
            "AddExecutionLogEntry",
            "POST",
            self._queue_path(job, "addExecutionLogEntry"),
            self._job_headers(job),
            body,
            retry_if=_add_retryable,
        )
        data = decode_json(response, "AddExecutionLogEntry")
        if not isinstance(data, int) or isinstance(data, bool):
            raise ApiDecodeError("AddExecutionLogEntry", "entry ID is not an integer")
        return data

    async def update_execution_log_entry(
        self, job: Job, entry_id: int, entry: ExecutionLogEntry
    ) -> None:
        body = _log_body(
            UpdateExecutionLogEntryRequest(
                executor_name=self.executor_name, job_id=job.id, entry_id=entry_id, entry=entry
            ).to_wire()
        )
        # Idempotent: each update carries the whole entry.
        await self.call(
            "UpdateExecutionLogEntry",
            "POST",
            self._queue_path(job, "updateExecutionLogEntry"),
            self._job_headers(job),
            body,
        )

    async def mark_complete(self, job: Job) -> None:
        body = MarkCompleteRequest(executor_name=self.executor_name, job_id=job.id).to_wire()
        await self._mark("MarkComplete", job, "markComplete", body)

    async def mark_errored(self, job: Job, message: str) -> None:
        body = MarkErroredRequest(
            executor_name=self.executor_name, job_id=job.id, error_message=message
        ).to_wire()
        await self._mark("MarkErrored", job, "markErrored", body)

    async def mark_failed(self, job: Job, message: str) -> None:
        body = MarkErroredRequest(
            executor_name=self.executor_name, job_id=job.id, error_message=message
        ).to_wire()
        await self._mark("MarkFailed", job, "markFailed", body)

    async def _mark(self, op: str, job: Job, endpoint: str, body: dict[str, Any]) -> None:
        attempts = 0

        def count(state: RetryCallState) -> None:
            nonlocal attempts
            attempts = state.attempt_number

        try:
            await self.call(
                op,
                "POST",
                self._queue_path(job, endpoint),
                self._job_headers(job),
                body,
                before=count,
            )
        except (ApiRejected, ApiUnauthorized) as err:
            # A retried mark whose first try landed but whose answer was lost gets 404 now, or
            # 401: the frontend deletes the job token when it records a mark, so the retry's
            # token is no longer known (the sandbox and Sourcegraph's handler both do).
            if err.status in (401, 404) and attempts > 1:
                log.info("mark already recorded by an earlier attempt", op=op, jobID=job.id)
                return
            raise

    async def get_file(self, job: Job, bucket: str, key: str) -> bytes:
        """`GET /.executors/files/<bucket>/<key>`: the raw bytes."""
        response = await self.call(
            "FilesGet", "GET", f"/.executors/files/{bucket}/{key}", self._job_headers(job), None
        )
        return response.content

    # --- plumbing -------------------------------------------------------------------------

    def _queue_path(self, job: Job, endpoint: str) -> str:
        return f"/.executors/queue/{job.queue or self.queues[0]}/{endpoint}"

    def _executor_headers(self) -> dict[str, str]:
        return {"Authorization": f"token-executor {self._token}"}

    def _job_headers(self, job: Job) -> dict[str, str]:
        auth = f"Bearer {job.token}" if job.token else f"token-executor {self._token}"
        return {
            "Authorization": auth,
            "X-Sourcegraph-Job-ID": str(job.id),
            "X-Sourcegraph-Executor-Name": self.executor_name,
        }
