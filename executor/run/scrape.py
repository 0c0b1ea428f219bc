"""Node-exporter metrics forwarded in the heartbeat's `prometheusMetrics`, as Sourcegraph does.

Sourcegraph's `cmd/executor/internal/config/config.go` reads `NODE_EXPORTER_URL` and
`DOCKER_REGISTRY_NODE_EXPORTER_URL` (no `EXECUTOR_` prefix; URLs without the path), and
`cmd/executor/internal/metrics/metrics.go` (`MakeExecutorMetricsGatherer`) adds to the
executor's own metrics, at each heartbeat: `<NODE_EXPORTER_URL>/metrics`, and the mirror host's
`<DOCKER_REGISTRY_NODE_EXPORTER_URL>/proxy?module=registry` and `/proxy?module=node` with the
label `sg_instance="docker-registry"` on every series; families named `go_*`, `promhttp_*` and
`process_*` are dropped; each scrape has a 2 s timeout, and a failed one is a warning.

One difference: Go blocks the heartbeat on the scrape; ours runs in a thread woken by each
heartbeat, and the heartbeat carries the last finished scrape (one heartbeat old), so a slow
exporter never stalls the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import httpx
import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

__all__ = ["ExporterScraper", "Source", "sources_from_env"]

log = structlog.get_logger("executor.run.scrape")

_DROPPED = ("go_", "promhttp_", "process_")
_TIMEOUT = 2.0


@dataclass(frozen=True)
class Source:
    url: str
    labels: tuple[tuple[str, str], ...] = ()


def sources_from_env(environ: Mapping[str, str]) -> list[Source]:
    """The endpoints Sourcegraph's executor scrapes, from its two variables."""
    sources: list[Source] = []
    node = environ.get("NODE_EXPORTER_URL", "")
    if node:
        sources.append(Source(node + "/metrics"))
    registry = environ.get("DOCKER_REGISTRY_NODE_EXPORTER_URL", "")
    if registry:
        label = (("sg_instance", "docker-registry"),)
        sources.append(Source(registry + "/proxy?module=registry", label))
        sources.append(Source(registry + "/proxy?module=node", label))
    return sources


class ExporterScraper(Collector):
    """The exporters' families, refreshed in a daemon thread at each `exposition()`."""

    def __init__(self, sources: list[Source]) -> None:
        self._sources = sources
        self._last: list[Metric] = []
        self._wake = threading.Event()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)
        self._thread: threading.Thread | None = None

    def exposition(self) -> str:
        """The last finished scrape as Prometheus text; wakes the thread for the next one."""
        if not self._sources:
            return ""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="exporter-scrape", daemon=True)
            self._thread.start()
        self._wake.set()
        return generate_latest(self._registry).decode("utf-8")

    def collect(self) -> Iterator[Metric]:
        yield from self._last

    def _run(self) -> None:
        with httpx.Client(timeout=_TIMEOUT, follow_redirects=False) as client:
            while True:
                self._wake.wait()
                self._wake.clear()
                families: list[Metric] = []
                for source in self._sources:
                    families += self._scrape(client, source)
                self._last = families

    @staticmethod
    def _scrape(client: httpx.Client, source: Source) -> list[Metric]:
        try:
            response = client.get(source.url)
            response.raise_for_status()
            parsed = list(text_string_to_metric_families(response.text))
        except (httpx.HTTPError, ValueError) as err:
            log.warning("failed to get metrics from exporter", url=source.url, error=str(err))
            return []
        kept = [family for family in parsed if not family.name.startswith(_DROPPED)]
        if source.labels:
            extra = dict(source.labels)
            for family in kept:
                family.samples = [
                    sample._replace(labels={**sample.labels, **extra}) for sample in family.samples
                ]
        return kept
