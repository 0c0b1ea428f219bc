"""The Docker engine probe (`executor.runtime.engine`): the real engine passes it; a wedged or
failing one (the FAKE in `tests/fake_engine.py`: neither can be produced on the shared engine)
is named, and the verdict's changes reach `on_change` once each."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fake_engine import fake_engine

from executor.runtime.engine import EngineProbe, engine_socket

pytestmark = pytest.mark.docker


def test_the_real_engine_answers(docker_engine: Any) -> None:
    path = engine_socket(docker_engine.env.get("DOCKER_HOST", ""))
    assert path is not None
    assert asyncio.run(EngineProbe(path).probe_once()) is None


def test_a_wedged_engine_is_named_after_the_timeout(tmp_path: Path) -> None:
    with fake_engine(tmp_path, "stall") as engine:
        probe = EngineProbe(engine.removeprefix("unix://"), timeout=0.5)
        reason = asyncio.run(probe.probe_once())
    assert reason == (
        f"the Docker engine did not answer GET /info within 0.5s ({tmp_path}/docker.sock): "
        "it may be wedged"
    )


def test_an_error_answer_and_a_missing_socket_are_named(tmp_path: Path) -> None:
    with fake_engine(tmp_path, "error") as engine:
        answered = asyncio.run(EngineProbe(engine.removeprefix("unix://")).probe_once())
    assert answered == "the Docker engine answered 404 to GET /info: page not found"
    missing = asyncio.run(EngineProbe(str(tmp_path / "none.sock")).probe_once())
    assert missing is not None
    assert missing.startswith(f"cannot reach the Docker engine at {tmp_path}/none.sock: ")


def test_verdicts_reach_on_change_once_per_change(tmp_path: Path, docker_engine: Any) -> None:
    """First verdict, then only changes: up, up, down (the fake), down, up."""
    real = engine_socket(docker_engine.env.get("DOCKER_HOST", ""))
    assert real is not None
    seen: list[bool] = []
    with fake_engine(tmp_path, "error") as engine:
        fake = engine.removeprefix("unix://")
        probe = EngineProbe(real, on_change=seen.append)

        async def scenario() -> list[str | None]:
            reasons = []
            for path in (real, real, fake, fake, real):
                probe.socket_path = path
                await probe.check()
                reasons.append(probe.reason)
            return reasons

        reasons = asyncio.run(scenario())
    assert seen == [True, False, True]
    assert [r is None for r in reasons] == [True, True, False, False, True]
