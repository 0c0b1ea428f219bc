"""Removing workspaces that hold files the daemon's user cannot delete: a short root container.

Step containers run as root (src-cli's `--user 0:0` for batch steps, most images' default user
for the rest) and write into the bind-mounted workspace: root-owned directories, files inside
them, directories without write permission. A daemon running as a dedicated unprivileged user
(the deb/rpm systemd unit) can unlink its own entries but nothing inside a root-owned directory,
so `rm -rf` fails with EACCES/EPERM and the workspace would be left behind for ever.

The fallback, `RootCleaner.clean`: one container, `--rm`, `--user 0:0`, `--network none`, the
workspace bind-mounted at `/data`, the executor's labels and a name (so cancellation and the
janitor know it), hardened and limited like a step, runs `rm -rf` of everything inside the
mount; then the now empty directory is removed from the host. Failure is logged once, with the
path, image, exit code and the last line the container printed: never an environment variable.

The image is, in this order, the configured cleanup image or one of the job's step images,
whichever is present locally (no pull when avoidable); else the configured image (Docker pulls
it). Any image with `/bin/sh` and `rm` will do, which every step image has.

Safety: the mount source is the real path of a directory that is not a symlink (Docker follows
symlinks in bind sources, and a root `rm -rf` must never reach outside the workspace).

Used by `workspace.teardown_workspace` (through `remover`) and the janitor
(`remove_workspace`).
Must not know what a job means, the queue or log uploads; talks to Docker only through the
`Runtime` Protocol.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import stat
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import structlog

from executor.runtime import Runtime
from executor.runtime.argv import ContainerSpec, DockerOptions, container_labels, container_name
from executor.workspace.files import remove_tree

__all__ = ["CLEANUP_COMMAND", "CLEANUP_TARGET", "RootCleaner", "cleanup_spec"]

#: Where the workspace appears inside the cleanup container.
CLEANUP_TARGET = "/data"
#: Deletes every entry of the mount, dot files included; a glob that matches nothing stays
#: literal and `rm -f` ignores it. The mount point itself cannot be removed from inside.
CLEANUP_COMMAND = f"rm -rf -- {CLEANUP_TARGET}/..?* {CLEANUP_TARGET}/.[!.]* {CLEANUP_TARGET}/*"

_PIDS_LIMIT = 64
_log = structlog.get_logger(__name__)


def cleanup_spec(workspace: str, *, image: str, name: str, labels: dict[str, str]) -> ContainerSpec:
    """The cleanup container: root, no network, `sh -c CLEANUP_COMMAND` on the mount."""
    return ContainerSpec(
        image=image,
        script_path="",
        workspace_dir=workspace,
        name=name,
        labels=labels,
        mount_target=CLEANUP_TARGET,
        user="0:0",
        network="none",
        args=("-c", CLEANUP_COMMAND),
    )


class _Tail:
    """An `OutputSink` keeping the last non-empty line (for the log and the error text)."""

    def __init__(self) -> None:
        self.last = ""

    def write(self, stream: str, line: str) -> None:
        if line.strip():
            self.last = f"{stream}: {line.strip()}"[:500]


class RootCleaner:
    """Removes workspace trees, with a root container for what the daemon's user cannot."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        docker: DockerOptions,
        executor_name: str,
        host_label: str,
        lock_path: str = "",
        image: str = "",
        timeout: float = 300.0,
    ) -> None:
        """`docker` is the daemon's step options (limits, Docker-in-Docker host mount path);
        its additional mounts and host gateway are not given to the cleanup container.
        `image` is the configured cleanup image ("" = use the job's images only)."""
        self.runtime = runtime
        self.docker = dataclasses.replace(
            docker,
            additional_mounts=(),
            add_host_gateway=False,
            hardening=True,
            pids_limit=min(docker.pids_limit or _PIDS_LIMIT, _PIDS_LIMIT),
        )
        self.executor_name = executor_name
        self.host_label = host_label
        self.lock_path = lock_path
        self.image = image
        self.timeout = timeout

    def remover(
        self, *, job_id: str = "", images: Sequence[str] = ()
    ) -> Callable[[Path], Awaitable[str | None]]:
        """`clean` bound to one job: the `remove_as_root` argument of `teardown_workspace`."""

        async def remove(path: Path) -> str | None:
            return await self.clean(path, job_id=job_id, images=images)

        return remove

    async def remove_workspace(
        self, path: Path, *, job_id: str = "", images: Sequence[str] = ()
    ) -> str | None:
        """Remove `path` as this user; on a permission error, `clean` it. The error text, or
        None once `path` is gone."""
        result = await asyncio.to_thread(remove_tree, path)
        if result.error is None:
            return None
        if not result.permission_denied:
            _log.error("workspace could not be removed", path=str(path), error=result.error)
            return result.error
        return await self.clean(path, job_id=job_id, images=images)

    async def clean(
        self, path: Path, *, job_id: str = "", images: Sequence[str] = ()
    ) -> str | None:
        """Empty `path` with a cleanup container, then remove it from the host.

        Returns None once `path` is gone, else the error text (also logged). `job_id` labels
        the container like the job's steps; `images` are the job's step images.
        """
        error, image, detail = await self._run_container(path, job_id, images)
        result = await asyncio.to_thread(remove_tree, path)
        if result.error is None:
            if error is None:
                _log.info("workspace removed with a cleanup container", path=str(path), image=image)
            return None
        message = f"{error}; {result.error}" if error else result.error
        _log.error(
            "workspace left behind: even the cleanup container could not remove it",
            path=str(path),
            image=image or None,
            error=message,
            container_output=detail or None,
        )
        return message

    async def _run_container(
        self, path: Path, job_id: str, images: Sequence[str]
    ) -> tuple[str | None, str, str]:
        """Run the cleanup container; returns (error or None, image, last output line)."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None, "", ""
        if not stat.S_ISDIR(info.st_mode):
            return f"{path} is not a directory; not cleaning it as root", "", ""
        source = os.path.realpath(path)
        image = await self._pick_image(images)
        if not image:
            return "no image for the cleanup container (no cleanup image, no step image)", "", ""
        job = job_id or "none"
        spec = cleanup_spec(
            source,
            image=image,
            name=container_name(self.executor_name, job, f"cleanup-{secrets.token_hex(3)}"),
            labels=container_labels(
                executor_name=self.executor_name,
                job_id=job,
                host=self.host_label,
                lock_path=self.lock_path,
            ),
        )
        tail = _Tail()
        try:
            async with asyncio.timeout(self.timeout):
                code = await self.runtime.run(spec, self.docker, tail)
        except TimeoutError:
            return f"cleanup container timed out after {self.timeout:g}s", image, tail.last
        except (OSError, ValueError) as err:
            return f"cleanup container could not start: {err}", image, tail.last
        if code != 0:
            return f"cleanup container exited with {code}", image, tail.last
        return None, image, tail.last

    async def _pick_image(self, images: Sequence[str]) -> str:
        candidates = list(dict.fromkeys(i for i in (self.image, *images) if i))
        for image in candidates:
            try:
                if await self.runtime.image_exists(image):
                    return image
            except Exception as err:  # noqa: BLE001 - engine trouble; `docker run` will tell
                _log.warning("could not inspect image", image=image, err=str(err))
                break
        return self.image or (candidates[0] if candidates else "")
