"""Prometheus metrics: the executor's own registry, its names, and the `/metrics` server.

Names follow Sourcegraph's (`cmd/executor/internal/worker/worker.go`, `internal/workerutil`
observability, `cmd/executor/internal/apiclient/observability.go`) so the frontend's
dashboards work: `src_executor_processor_*{queue,op}`, `src_apiworker_apiclient_queue_*{op}`,
`src_apiworker_command_*{op}`. Ours are prefixed `executor_`. Labels carry bounded values only
(queue, op, outcome): never a job ID, never a secret.

The only module that imports prometheus_client; it knows nothing of what it measures.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

__all__ = ["Metrics"]

_JANITOR = (
    ("executor_janitor_containers_removed", "Orphaned step containers removed."),
    ("executor_janitor_workspaces_removed", "Stale workspace directories removed."),
    ("executor_janitor_errors", "Janitor removals or passes that failed."),
)

_PROCESSOR_BUCKETS = (30, 60, 150, 300, 450, 600, 900, 1200, 1800, 2700, 3600)
_CANCEL_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 30, 60)


class Metrics:
    """Every metric of one executor process, on a private registry (tests build many)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.handlers = Gauge(
            "src_executor_processor_handlers", "Jobs being handled.", ["queue"], registry=r
        )
        self.processor_total = Counter(
            "src_executor_processor_total", "Handler operations.", ["queue", "op"], registry=r
        )
        self.processor_errors = Counter(
            "src_executor_processor_errors_total",
            "Handler operations that failed.",
            ["queue", "op"],
            registry=r,
        )
        self.processor_duration = Histogram(
            "src_executor_processor_duration_seconds",
            "Handler operation time.",
            ["queue", "op"],
            buckets=_PROCESSOR_BUCKETS,
            registry=r,
        )
        self.api_total = Counter(
            "src_apiworker_apiclient_queue_total", "Queue API calls.", ["op"], registry=r
        )
        self.api_errors = Counter(
            "src_apiworker_apiclient_queue_errors_total",
            "Queue API calls that failed.",
            ["op"],
            registry=r,
        )
        self.api_duration = Histogram(
            "src_apiworker_apiclient_queue_duration_seconds",
            "Queue API call time.",
            ["op"],
            registry=r,
        )
        self.command_total = Counter(
            "src_apiworker_command_total", "Commands run.", ["op"], registry=r
        )
        self.command_errors = Counter(
            "src_apiworker_command_errors_total", "Commands that failed.", ["op"], registry=r
        )
        self.command_duration = Histogram(
            "src_apiworker_command_duration_seconds", "Command run time.", ["op"], registry=r
        )
        self.jobs = Counter(
            "executor_jobs_total",
            "Jobs finished, by how they were marked.",
            ["queue", "outcome"],
            registry=r,
        )
        # Ours: 1 while the worker does not dequeue because the workspace filesystem is below
        # EXECUTOR_MIN_FREE_DISK. Sourcegraph's heartbeat has no field for it; this registry's
        # exposition is the heartbeat's `prometheusMetrics`, so the frontend receives it there.
        self.disk_pressure = Gauge(
            "executor_disk_pressure",
            "1 while dequeuing is paused: workspace filesystem below EXECUTOR_MIN_FREE_DISK.",
            registry=r,
        )
        # Ours: 0 while the Docker engine does not answer `GET /info` in time (or answers an
        # error): dequeuing is paused then (`executor.runtime.engine`). 1 otherwise, also where
        # no engine is probed (the Kubernetes runtime, a remote engine).
        self.docker_engine_up = Gauge(
            "executor_docker_engine_up",
            "0 while dequeuing is paused: the Docker engine did not answer GET /info in time.",
            registry=r,
        )
        self.docker_engine_up.set(1)
        self.cancel_latency = Histogram(
            "executor_cancel_latency_seconds",
            "From a cancel to its container being gone.",
            buckets=_CANCEL_BUCKETS,
            registry=r,
        )

    def watch_janitor(self, read: Callable[[], tuple[int, int, int]]) -> None:
        """Expose the janitor's running totals (containers, workspaces, errors) as counters."""
        self.registry.register(_TotalsCollector(read))

    def observe_api(self, op: str, seconds: float, failed: bool) -> None:
        self.api_total.labels(op).inc()
        self.api_duration.labels(op).observe(seconds)
        if failed:
            self.api_errors.labels(op).inc()

    def observe_command(self, op: str, seconds: float, failed: bool) -> None:
        # Docker steps share one op, as Sourcegraph's `exec`, to keep the label set bounded.
        self.command_total.labels(op).inc()
        self.command_duration.labels(op).observe(seconds)
        if failed:
            self.command_errors.labels(op).inc()

    def observe_job(self, queue: str, seconds: float, outcome: str) -> None:
        self.processor_total.labels(queue, "Handle").inc()
        self.processor_duration.labels(queue, "Handle").observe(seconds)
        if outcome != "completed":
            self.processor_errors.labels(queue, "Handle").inc()
        self.jobs.labels(queue, outcome).inc()

    def exposition(self) -> str:
        """Prometheus text format 0.0.4, as sent in heartbeats' `prometheusMetrics`."""
        return generate_latest(self.registry).decode("utf-8")

    def serve(self, host: str, port: int) -> None:
        """Expose `/metrics` on host:port from a daemon thread.

        What prometheus_client's `start_http_server` does (its WSGI app, a thread per request,
        the address family `host` needs, no request log), except that the accepting thread
        sleeps in `select` until a scrape arrives: `serve_forever`'s default wakes it twice a
        second to look for a `shutdown()` this daemon thread never gets (a tenth of an idle
        daemon's CPU, `bench.idle`)."""
        family, _, _, _, sockaddr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        server_class = type("_MetricsServer", (ThreadingWSGIServer,), {"address_family": family})
        httpd: ThreadingWSGIServer = make_server(
            str(sockaddr[0]),
            port,
            make_wsgi_app(self.registry),
            server_class,
            handler_class=_QuietHandler,
        )
        threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": None}, daemon=True
        ).start()


class _QuietHandler(WSGIRequestHandler):
    """No line on stderr per scrape."""

    def log_message(self, format: str, *args: object) -> None:
        return None


class _TotalsCollector(Collector):
    """Reads totals kept elsewhere at scrape time, so the owner needs no prometheus_client."""

    def __init__(self, read: Callable[[], tuple[int, int, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        for (name, doc), value in zip(_JANITOR, self._read(), strict=True):
            yield CounterMetricFamily(name, doc, value=value)
