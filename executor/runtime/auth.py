"""Per-job Docker registry credentials, written where only this user can read them.

Sourcegraph writes the job's `dockerAuthConfig` to `<tmp>/docker_auth*/config.json` with mode 0777
(spec §4.5). We write it to a fresh 0700 directory as a 0600 file, created with `O_EXCL` so an
existing file or symlink is never followed, and hand the directory to `docker --config`.

🚨 SECURITY: the file holds registry secrets. Callers remove the directory at teardown and never log
its contents.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["DOCKER_CONFIG_PREFIX", "write_docker_auth_config"]

#: Name prefix of the per-job config directories (the janitor looks for it after a crash).
DOCKER_CONFIG_PREFIX = "executor-docker-config-"


def write_docker_auth_config(auth: Mapping[str, Any], parent_dir: str | os.PathLike[str]) -> Path:
    """Create `<parent>/executor-docker-config-*/config.json` holding `auth` as JSON.

    `auth` is the Docker config object, e.g. `{"auths": {"ghcr.io": {"auth": "…"}}}`.
    Returns the directory (pass it to `docker --config`); the caller removes it.
    """
    directory = Path(tempfile.mkdtemp(prefix=DOCKER_CONFIG_PREFIX, dir=parent_dir))
    try:
        directory.chmod(0o700)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(directory / "config.json", flags, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(dict(auth), handle)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return directory
