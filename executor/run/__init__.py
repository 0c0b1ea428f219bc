"""The composition root (Sourcegraph's `cmd/executor/internal/run/`): wiring, and nothing else.

* `serve`: `executor run`: builds the client, runtime, handler, worker and janitor from the
  settings, runs them side by side and turns signals into drain and cancel;
* `validate`: `executor validate`: the checks an admin runs before starting the daemon;
* `host`: facts about this host the two share (tool versions, the wire version, telemetry).

`executor.cli` parses arguments and calls into here; nothing here parses arguments.
"""

__all__: list[str] = []
