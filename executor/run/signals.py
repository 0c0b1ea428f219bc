"""Signals and the drain contract (README, "Stopping"): a small state machine with named states.

SIGTERM/SIGINT while connecting exits at once; the first while running drains (no new jobs,
running ones finish, heartbeats go on); the second cancels the running jobs.
"""

from __future__ import annotations

import asyncio
import signal
from enum import Enum

import structlog

from executor.worker.loop import Worker

__all__ = ["Phase", "Signals"]

log = structlog.get_logger("executor.run")


class Phase(Enum):
    """Where the daemon is in its life, as far as signals are concerned."""

    CONNECTING = "connecting"
    RUNNING = "running"
    DRAINING = "draining"
    CANCELLING = "cancelling"


class Signals:
    """Turns SIGTERM/SIGINT into the drain contract's phases."""

    def __init__(self, worker: Worker, connecting: asyncio.Task[object] | None) -> None:
        self.phase = Phase.CONNECTING
        #: The signal that stopped the daemon before the frontend first answered.
        self.stopped_by = 0
        self._worker = worker
        self._connecting = connecting

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.on_signal, sig)

    def on_signal(self, signum: int) -> None:
        if self.phase is Phase.CONNECTING:
            log.warning("signal while connecting; exiting", signal=signum)
            self.stopped_by = signum
            if self._connecting is not None:
                self._connecting.cancel()
        elif self.phase is Phase.RUNNING:
            self.phase = Phase.DRAINING
            log.info("signal received: draining (send again to cancel running jobs)", signal=signum)
            self._worker.drain()
        else:
            self.phase = Phase.CANCELLING
            log.warning("second signal: cancelling running jobs", signal=signum)
            self._worker.interrupt()
