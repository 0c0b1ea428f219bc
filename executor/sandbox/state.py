"""What every sandbox route shares: its settings and its store, hung on `app.state`.

Knows no routes and no HTTP beyond reading `request.app.state`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request

from executor.sandbox.faults import FaultRule
from executor.sandbox.store import SandboxStore

__all__ = ["QUEUE_NAMES", "QUEUE_WEIGHTS", "SandboxSettings", "SandboxState", "get_state"]

# `internal/executor/types/queues.go`; weights are the multi-queue defaults of §8.4.
QUEUE_NAMES = ("batches", "codeintel")
QUEUE_WEIGHTS = {"batches": 4, "codeintel": 1}


@dataclass(frozen=True)
class SandboxSettings:
    """How one sandbox runs. `token` is the site's `executors.accessToken`."""

    token: str
    data_dir: Path
    stalled_max_age: float = 25.0
    resetter_interval: float = 5.0
    max_num_resets: int = 3
    max_num_retries: int = 0
    src_cli_version: str = "5.3.0"
    #: Sourcegraph's site config `batchChanges.nativeServerSideExecution`: batches jobs are V2
    #: (batcheshelper docker steps, runnable without Docker on the host, e.g. on Kubernetes).
    native_server_side_execution: bool = False
    #: `executors.batcheshelperImage:executors.batcheshelperImageTag` for V2 jobs.
    batcheshelper_image: str = "executor-batcheshelper:latest"
    # Read timeouts of the HTTP server, seconds (`executor.sandbox.timeouts`).
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    # Injected faults (`executor.sandbox.faults`); empty: the app is served unwrapped.
    faults: tuple[FaultRule, ...] = ()

    @property
    def db_path(self) -> Path:
        return self.data_dir / "sandbox.db"

    @property
    def repos_dir(self) -> Path:
        return self.data_dir / "repos"


@dataclass
class SandboxState:
    """The settings and the store of a running sandbox."""

    settings: SandboxSettings
    store: SandboxStore

    @classmethod
    def open(cls, settings: SandboxSettings) -> SandboxState:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.repos_dir.mkdir(parents=True, exist_ok=True)
        store = SandboxStore(
            settings.db_path,
            stalled_max_age=settings.stalled_max_age,
            max_num_resets=settings.max_num_resets,
            max_num_retries=settings.max_num_retries,
        )
        return cls(settings=settings, store=store)


def get_state(request: Request) -> SandboxState:
    """The sandbox state of the app serving `request`."""
    state: SandboxState = request.app.state.sandbox
    return state
