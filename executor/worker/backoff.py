"""How long the poll loop waits after a failed dequeue or heartbeat: capped, jittered, exponential.

Ours (Sourcegraph's `internal/workerutil/worker.go` logs a failed dequeue and polls again at
the normal interval, which against a frontend answering 500 is one warning per poll):

- the n-th failure in a row waits `base * 2**(n-1)`, at most `cap`, times a random factor in
  [0.5, 1] ("equal jitter": never less than half, so a fleet of executors spreads out without
  any of them polling in a tight loop);
- a server's `Retry-After` (429 or 503, carried by `ApiUnavailable.retry_after`) is a floor,
  itself bounded by `hint_cap` (the heartbeat must not sleep through the frontend's 25 s
  stalled-job window because a proxy asked for a minute);
- one success resets it.

Pure: knows no HTTP and no clock; the loop sleeps what `failed()` returns.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass
class Backoff:
    """The delay after each failure of a streak; `succeeded()` ends the streak."""

    base: float
    cap: float
    hint_cap: float
    rand: Callable[[], float] = field(default=random.random)
    failures: int = 0

    def failed(self, retry_after: float | None = None) -> float:
        """Count one more failure; the seconds to wait before the next attempt."""
        self.failures += 1
        exponent = min(self.failures - 1, 32)
        delay = min(self.cap, self.base * float(2**exponent)) * (0.5 + 0.5 * self.rand())
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.hint_cap))
        return float(delay)

    def succeeded(self) -> int:
        """End the streak; the number of failures it had."""
        streak, self.failures = self.failures, 0
        return streak
