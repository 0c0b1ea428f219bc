"""`executor.runtime.rootclean` without a container: refusals made before Docker is asked.

The cleanup container itself runs against a real root-owned workspace, as an unprivileged
user, in `tests/integration/test_rootclean_docker.py`; its argv is pinned in `test_runtime_argv.py`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from executor.runtime.argv import DockerOptions
from executor.runtime.docker import DockerRuntime
from executor.runtime.rootclean import RootCleaner


def _cleaner(**kw: str) -> RootCleaner:
    # A DockerRuntime connects lazily; these cases never reach the engine.
    runtime = DockerRuntime(executor_name="e", env={}, docker_bin="/nonexistent/docker")
    return RootCleaner(
        runtime=runtime,
        docker=DockerOptions(pids_limit=4096, additional_mounts=["type=tmpfs,target=/x"]),
        executor_name="e",
        host_label="h",
        **kw,
    )


def test_options_drop_step_mounts_and_cap_pids() -> None:
    docker = _cleaner().docker
    assert docker.additional_mounts == () and docker.pids_limit == 64 and docker.hardening


def test_symlinked_workspace_is_never_cleaned_as_root(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("k")
    link = tmp_path / "workspace-1-x"
    link.symlink_to(target)
    with capture_logs() as logs:
        error = asyncio.run(_cleaner(image="busybox").clean(link, job_id="1"))
    assert error is not None and "is not a directory; not cleaning it as root" in error
    assert (target / "keep.txt").read_text() == "k"
    assert [e["event"] for e in logs] == [
        "workspace left behind: even the cleanup container could not remove it"
    ]


def test_no_image_is_an_error_not_a_crash(tmp_path: Path) -> None:
    ws = tmp_path / "workspace-2-y"
    ws.mkdir()
    (ws / "f").write_text("x")
    # As root the host removal succeeds first; `clean` still needs an image for the container.
    error, image, _ = asyncio.run(_cleaner()._run_container(ws, "2", ()))
    assert image == "" and error is not None and "no image for the cleanup container" in error


def test_gone_workspace_needs_nothing(tmp_path: Path) -> None:
    assert asyncio.run(_cleaner().remove_workspace(tmp_path / "missing")) is None
