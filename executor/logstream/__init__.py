"""Execution logs: the one place a step's output is redacted, bounded and streamed to the frontend.

* `logger`: `ExecutionLogger` (one entry per command, throttled updates, ordered adds, final
  flush) and `Redactor` (Sourcegraph's `worker/cmdlogger/logger.go`);
* `output`: `BoundedOutput`, an entry's stored text with head, tail and a dropped-bytes marker.

Talks to a `LogSink` Protocol (the API client satisfies it); knows no HTTP and no Docker.
"""

__all__: list[str] = []
