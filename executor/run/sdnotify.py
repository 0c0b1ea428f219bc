"""systemd's service notification protocol: READY=1, STATUS=, STOPPING=1 and the watchdog.

The unit (`systemd/executor.service`) is `Type=notify` with `WatchdogSec=`: systemd sets
`NOTIFY_SOCKET` (a unix datagram socket; a leading `@` names an abstract one) and, with a
watchdog, `WATCHDOG_USEC` (and `WATCHDOG_PID`: when set, only that process may ping). Each
message is one datagram of `KEY=value` lines (sd_notify(3)); systemd ignores unknown keys.

What the daemon sends (`executor.run.serve`):
- `READY=1` once it is set up (configuration valid, listeners up), *before* the frontend first
  answers: a frontend that is down at boot must not fail the unit's start (TimeoutStartSec),
  the daemon keeps trying on its own. `STATUS=` says what it is doing (connecting, running,
  draining), visible in `systemctl status executor`.
- `WATCHDOG=1` every half `WATCHDOG_USEC` (sd_watchdog_enabled(3)'s advice), from a task on the
  event loop itself, and only while the daemon is healthy: while connecting (nothing to judge
  yet; /healthz is not served either), afterwards on the same verdict as `/healthz`
  (`Worker.health`: the last answered heartbeat and dequeue attempt within their bound). A
  wedged loop sends nothing, nor does a daemon that lost its frontend: systemd then kills it
  (`WatchdogSignal=`, SIGABRT: the faulthandler prints every thread's stack to the journal) and
  `Restart=on-failure` starts a fresh one.
- `STOPPING=1` when it starts to drain (a signal, or a job/time budget reached).

Written with a plain socket, not a library: PyPI's `sdnotify` (0.3.2, 2017) is unmaintained
and drops send errors silently; `systemd-python`/`cysystemd` compile against libsystemd, which the
self-contained package venv would then need at build time. The protocol is one `sendto`.
Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping

import structlog

__all__ = ["Notifier"]

log = structlog.get_logger("executor.run.sdnotify")


class Notifier:
    """Sends notifications to systemd's `NOTIFY_SOCKET`, if there is one."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        elif address and not address.startswith("/"):
            log.warning("NOTIFY_SOCKET is not a unix socket path; not notifying systemd")
            address = ""
        self._address = address
        self._sock: socket.socket | None = None
        self._failed = False
        #: Seconds between watchdog pings (half of WATCHDOG_USEC), or 0 when there is none.
        self.watchdog_interval = _watchdog_interval(environ) if address else 0.0

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *fields: str) -> bool:
        """Send one datagram of `KEY=value` fields; whether it was sent."""
        if not self._address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(fields).encode("utf-8"), self._address)
        except OSError as err:
            if not self._failed:  # once: a watchdog would repeat it every few seconds
                log.warning("cannot notify systemd", error=err.strerror or str(err))
            self._failed = True
            return False
        if self._failed:
            log.info("notifying systemd again")
        self._failed = False
        return True

    async def watchdog(self, healthy: Callable[[], bool]) -> None:
        """Ping the watchdog every `watchdog_interval` while `healthy()`; runs until cancelled."""
        if self.watchdog_interval <= 0:
            return
        was_healthy = True
        while True:
            ok = healthy()
            if ok:
                self.notify("WATCHDOG=1")
            if ok != was_healthy:
                report = log.info if ok else log.warning
                report("systemd watchdog " + ("pinged again" if ok else "not pinged: unhealthy"))
            was_healthy = ok
            await asyncio.sleep(self.watchdog_interval)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _watchdog_interval(environ: Mapping[str, str]) -> float:
    """Half of WATCHDOG_USEC, if the watchdog is meant for this process (sd_watchdog_enabled)."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return 0.0
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return 0.0
    return int(usec) / 2e6
