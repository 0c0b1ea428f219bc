"""The environment of every git the host runs: only the executor's own configuration is read.

Three places run git on the host: the workspace fetch (`executor.workspace.clone`), the
repository cache (`executor.workspace.repocache`) and the batch engine's diff
(`executor.batch.diff`). Each gets `host_git_env(base)`: the few variables it forwards from
`base` (PATH, HOME, locale), and

* `GIT_CONFIG_NOSYSTEM=1`, `GIT_CONFIG_GLOBAL=/dev/null`: no `/etc/gitconfig`, no
  `~/.gitconfig` or `$XDG_CONFIG_HOME/git/config`;
* `GIT_ATTR_NOSYSTEM=1` and `core.attributesFile=/dev/null`: no `/etc/gitattributes`, no
  `~/.config/git/attributes` (git reads that default path even without any global config);
* `core.excludesFile=/dev/null`: no `~/.config/git/ignore` deciding what `git add` takes;
* `core.hooksPath=/dev/null`, `core.fsmonitor=false`: no hook, no fsmonitor command, whatever
  a repository's own config says;
* `GIT_TERMINAL_PROMPT=0`: never wait for a password on a terminal;
* `maintenance.auto=false`: no `git maintenance run --auto` process after every fetch (and
  commit). Every repository the host fetches into has `gc.auto=0` already (Sourcegraph's
  `setup.git.disable-gc`, the cache's own config), so that process did nothing but start.

`git init` of a workspace copies the executor's own template (`GIT_TEMPLATE_DIR`), not the host's
`/usr/share/git-core/templates`: git's layout (`description`, `info/exclude`, and an empty
`hooks/` the executor makes after the init; no legacy `branches/`) without the 13
`hooks/*.sample` files, so no admin's or package's template reaches a workspace, and the init
(and the workspace's removal) writes 13 files fewer: about half of `setup.git.init`'s time
(`bench.overhead`). Passed as `GIT_TEMPLATE_DIR`; the argv is unchanged.

The `core.*` and `maintenance.auto` settings are passed as git's environment config
(`GIT_CONFIG_COUNT`, `GIT_CONFIG_KEY_<n>`, `GIT_CONFIG_VALUE_<n>`, git 2.31+), which ranks
with `-c` above every config file and is inherited by the git processes git itself starts
(`upload-pack` for a `file://` fetch), without changing the argv Sourcegraph's log entries
show. So the host's git interprets nothing it did not get from the executor: no admin's or
image's global setting, no file a step could have written. (A step's own repository config is
kept out by the batch engine's private git dir, `executor.batch.diff`; the workspace fetch
runs before any step.)
Knows no job.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["GIT_TEMPLATE_DIR", "HOST_GIT_CONFIG", "HOST_GIT_ENV", "host_git_env"]

#: Settings every host-side git gets, above any config file.
HOST_GIT_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.attributesFile", os.devnull),
    ("core.excludesFile", os.devnull),
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("maintenance.auto", "false"),
)

#: The fixed part of `host_git_env`.
HOST_GIT_ENV: Mapping[str, str] = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_COUNT": str(len(HOST_GIT_CONFIG)),
    **{f"GIT_CONFIG_KEY_{i}": key for i, (key, _) in enumerate(HOST_GIT_CONFIG)},
    **{f"GIT_CONFIG_VALUE_{i}": value for i, (_, value) in enumerate(HOST_GIT_CONFIG)},
}

_FORWARDED = ("PATH", "HOME", "USER", "TMPDIR", "LANG", "LC_ALL")


def host_git_env(base: Mapping[str, str], **extra: str) -> dict[str, str]:
    """PATH, HOME, USER, TMPDIR and locale from `base`, `HOST_GIT_ENV`, then `extra`.

    Nothing else from `base` reaches git: no `GIT_*` variable of the daemon's own environment
    (a `GIT_DIR`, `GIT_CONFIG_PARAMETERS` or `GIT_EXEC_PATH` would change what git reads).
    """
    env = {k: base[k] for k in _FORWARDED if k in base}
    env.update(HOST_GIT_ENV)
    env.update(extra)
    return env


#: `git init`'s template for workspaces, shipped with the package (`git_template/`): installed
#: files, writable by neither a step nor another local user (the workspace root is TMPDIR, often
#: a world-writable /tmp, so the template is not kept there). It holds no empty directory and no
#: placeholder file (rpmlint rejects both): the workspace's empty `hooks/` is made after the init.
GIT_TEMPLATE_DIR = Path(__file__).resolve().parent / "git_template"
