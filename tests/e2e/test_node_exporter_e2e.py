"""Node-exporter metrics reach the frontend in the heartbeat's `prometheusMetrics`.

A real daemon heartbeats the sandbox with `NODE_EXPORTER_URL` and
`DOCKER_REGISTRY_NODE_EXPORTER_URL` pointing at a loopback HTTP server. STAND-IN: that server
serves a fixed Prometheus text exposition in place of `prometheus-node-exporter` (not installed
on CI hosts) and of the mirror host's exporter proxy (`/proxy?module=registry|node`). The test
reads the heartbeat body the sandbox stored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fixtures_daemon import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NODE = """# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.42
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 7
"""
REGISTRY = """# HELP registry_storage_action_seconds Seconds the storage action takes.
# TYPE registry_storage_action_seconds gauge
registry_storage_action_seconds{action="GetContent",driver="filesystem"} 0.5
"""
REGISTRY_NODE = """# HELP node_filesystem_avail_bytes Filesystem space available.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{mountpoint="/"} 1024
"""
PAGES = {
    "/metrics": NODE,
    "/proxy?module=registry": REGISTRY,
    "/proxy?module=node": REGISTRY_NODE,
}


class _Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def exporter() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_heartbeat_carries_node_and_registry_exporter_metrics(
    sandbox: Any, docker_engine: Any, daemon_factory: Any, exporter: str
) -> None:
    # Plain variables (no EXECUTOR_ prefix), as Sourcegraph names them.
    plain = {"NODE_EXPORTER_URL": exporter, "DOCKER_REGISTRY_NODE_EXPORTER_URL": exporter}
    daemon = daemon_factory(plain_env=plain)

    def stored() -> str:
        executors = sandbox._call("GET", "/.sandbox/executors")
        text = "".join(e["prometheus_metrics"] for e in executors)
        return text if "node_load1" in text else ""

    text = wait_for(stored, 90)
    assert text, daemon.log_text
    assert "node_load1 0.42" in text
    assert "go_goroutines" not in text  # go_, promhttp_, process_ families are dropped
    assert (
        'registry_storage_action_seconds{action="GetContent",driver="filesystem",'
        'sg_instance="docker-registry"} 0.5' in text
    )
    assert 'node_filesystem_avail_bytes{mountpoint="/",sg_instance="docker-registry"} 1024.0' in (
        text
    )
    assert "src_executor_processor_handlers" in text  # the executor's own metrics stay
