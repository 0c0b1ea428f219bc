"""A FAKE Docker engine on a Unix socket, for the faults a real one cannot be made to show here.

A wedged engine (dockerd holding a container lock for ever) or one that answers errors cannot be
produced on this host without breaking the one shared engine every other test uses. This server
is named a fake for that reason and does nothing else: in `"error"` mode it answers every
request 404 with an Engine-API-style JSON message; in `"stall"` mode it accepts connections,
reads the request and never answers.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_SERVER = """
import http.server, socketserver, sys, time
mode = sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if mode == "stall":
            time.sleep(3600)
        body = b'{"message": "page not found"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_HEAD = do_POST = do_GET
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)
server = Server(sys.argv[1], Handler)
print("ready", flush=True)
server.serve_forever()
"""


@contextmanager
def fake_engine(directory: Path, mode: str) -> Iterator[str]:
    """Serve the fake on `directory/docker.sock` in `mode`; yields its `unix://` address."""
    sock = directory / "docker.sock"
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(sock), mode], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield f"unix://{sock}"
    finally:
        server.kill()
        server.wait()
