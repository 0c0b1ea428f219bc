"""The health server answers from the event loop: a healthy worker gives 200, a stale one 503,
and a wedged loop gives no answer at all (the probe times out), unlike a thread-served page."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from executor.run.health import HealthServer, parse_addr


def _get(url: str, timeout: float) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_parse_addr_reads_go_listen_addresses() -> None:
    assert parse_addr(":8080") == ("0.0.0.0", 8080)
    assert parse_addr("127.0.0.1:9") == ("127.0.0.1", 9)
    with pytest.raises(ValueError, match="host:port"):
        parse_addr("8080")


def test_verdicts_and_a_wedged_loop() -> None:
    verdict: dict[str, object] = {"healthy": True}

    def health() -> tuple[bool, dict[str, object]]:
        return bool(verdict["healthy"]), {"heartbeatAgeSeconds": 1.0}

    results: dict[str, object] = {}
    started = threading.Event()

    async def main() -> None:
        server = HealthServer(health)
        port = await server.start("127.0.0.1:0")
        url = f"http://127.0.0.1:{port}/healthz"
        results["ok"] = await asyncio.to_thread(_get, url, 30)
        verdict["healthy"] = False
        results["stale"] = await asyncio.to_thread(_get, url, 30)
        results["other"] = await asyncio.to_thread(_get_status, f"http://127.0.0.1:{port}/x")

        def probe_while_wedged() -> None:
            started.wait()
            try:
                results["wedged"] = _get(url, 2)
            except OSError as err:  # the timeout: nobody answered
                results["wedged"] = type(err).__name__

        prober = threading.Thread(target=probe_while_wedged)
        prober.start()
        started.set()
        time.sleep(6)  # fault injection: a blocking call on the loop itself
        await asyncio.to_thread(prober.join)
        await server.close()

    asyncio.run(main())
    assert results["ok"] == (200, {"healthy": True, "heartbeatAgeSeconds": 1.0})
    assert results["stale"] == (503, {"healthy": False, "heartbeatAgeSeconds": 1.0})
    assert results["other"] == 404
    assert results["wedged"] in ("TimeoutError", "URLError"), results["wedged"]


def _get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code
