"""The worker: the poll loop and the handler of one job.

* `loop`: `Worker`, the generic dequeue/heartbeat/cancel/drain/mark loop over a `Store` and a
  `Handler` (Sourcegraph's `internal/workerutil/worker.go`), blind to Docker, git and HTTP;
* `handler`: `JobHandler`, one job from workspace to teardown (Sourcegraph's
  `cmd/executor/internal/worker/handler.go`), the only place the runtime, the workspace, the
  log stream and the batch engine meet.
"""

__all__: list[str] = []
