"""Reading a job's pod: which container runs, and why a pod that will not run never will.

Users of Kubernetes executors see pods stuck Pending until a deadline with no reason shown, and
ImagePullBackOff reasons that never reach them (`docs/kubernetes.md`, and spec §2.4). Here the
pod's status decides at once or after `EXECUTOR_KUBERNETES_POD_START_TIMEOUT`, with the reason
and message Kubernetes gives:

* a container Waiting for a reason that cannot pass (`ErrImageNeverPull`, `InvalidImageName`):
  at once;
* a container Waiting for any other reason (`ImagePullBackOff`, `ErrImagePull`,
  `CreateContainerConfigError`, plain `ContainerCreating`, …) for longer than the timeout since
  it became the pod's current container;
* a pod not scheduled (`PodScheduled=False`, e.g. `Unschedulable`) for longer than the timeout;
* a Failed pod: the first container that terminated with a non-zero exit code (`OOMKilled` and
  other reasons included), else the pod's own reason (`DeadlineExceeded`, `Evicted`).

Pure: pods are the API's JSON (dicts, camelCase), as `ApiClient.sanitize_for_serialization`
gives them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PERMANENT_WAITING",
    "ContainerEnd",
    "PodFailure",
    "container_states",
    "current_container",
    "failure_of",
    "start_problem",
]

#: Waiting reasons that never resolve by themselves.
PERMANENT_WAITING = frozenset({"ErrImageNeverPull", "InvalidImageName"})


@dataclass(frozen=True)
class ContainerEnd:
    """A terminated container: its exit code and Kubernetes's reason (`OOMKilled`, `Error`)."""

    exit_code: int
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class PodFailure:
    """Why a Failed pod failed: a container (`container` set) or the pod itself."""

    container: str
    exit_code: int
    reason: str
    message: str


def container_states(pod: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every container's `(name, state)` in run order: init containers, then the others."""
    status = pod.get("status") or {}
    found = []
    for group in ("initContainerStatuses", "containerStatuses"):
        for item in status.get(group) or []:
            found.append((str(item.get("name", "")), item.get("state") or {}))
    return found


def terminated(state: Mapping[str, Any]) -> ContainerEnd | None:
    done = state.get("terminated")
    if not done:
        return None
    return ContainerEnd(
        exit_code=int(done.get("exitCode") or 0),
        reason=str(done.get("reason") or ""),
        message=str(done.get("message") or ""),
    )


def current_container(pod: Mapping[str, Any], order: list[str]) -> str | None:
    """The first container of `order` not terminated yet (None: all are)."""
    states = dict(container_states(pod))
    for name in order:
        if terminated(states.get(name) or {}) is None:
            return name
    return None


def _scheduling(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return dict(condition)
    return None


def start_problem(
    pod: Mapping[str, Any],
    *,
    current: str | None,
    current_for: float,
    pending_for: float,
    timeout: float,
) -> str | None:
    """Why the pod cannot go on (None while it may): see the module docstring.

    `current` is the container whose turn it is, waiting for `current_for` seconds since its
    turn came; `pending_for` the seconds since the pod was first seen.
    """
    status = pod.get("status") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    if status.get("phase") == "Pending":
        unscheduled = _scheduling(pod)
        if unscheduled is not None:
            if pending_for <= timeout:
                return None
            reason = unscheduled.get("reason") or "Unschedulable"
            return f"pod {name} could not be scheduled: {reason}: {unscheduled.get('message', '')}"
    if current is None:
        return None
    state = dict(container_states(pod)).get(current) or {}
    if not state:
        late = status.get("phase") == "Pending" and pending_for > timeout
        return f"pod {name} did not start within {int(timeout)}s" if late else None
    waiting = state.get("waiting")
    if waiting is None:
        return None
    reason = str(waiting.get("reason") or "Waiting")
    message = str(waiting.get("message") or "")
    if reason in PERMANENT_WAITING or current_for > timeout:
        detail = f"{reason}: {message}" if message else reason
        late = "" if reason in PERMANENT_WAITING else f" (waited {int(current_for)}s)"
        return f"container {current} of pod {name} cannot start{late}: {detail}"
    return None


def failure_of(pod: Mapping[str, Any], order: list[str]) -> PodFailure:
    """Why a Failed pod failed (see the module docstring)."""
    states = dict(container_states(pod))
    for container in order:
        end = terminated(states.get(container) or {})
        if end is not None and end.exit_code != 0:
            return PodFailure(container, end.exit_code, end.reason, end.message)
    status = pod.get("status") or {}
    return PodFailure(
        container="",
        exit_code=-1,
        reason=str(status.get("reason") or "Failed"),
        message=str(status.get("message") or ""),
    )
