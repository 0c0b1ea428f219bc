"""The frontend's API as the executor calls it: HTTP, auth headers, retries at the edge.

* `base`: URL joining, the two kinds of auth headers, `Do`-style helpers and the retry policy
  (Sourcegraph's `cmd/executor/internal/apiclient/baseclient.go`);
* `queue`: `QueueClient`, the queue API (dequeue, heartbeat, marks, log entries, files,
  Sourcegraph's `apiclient/queue/client.go`).

Knows the wire models, never what a job means.
"""

__all__: list[str] = []
