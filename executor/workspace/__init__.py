"""A job's workspace on the host: directory, repository fetch, job files, removal.

* `clone`: `prepare_workspace`/`teardown_workspace`, the git sequence with Sourcegraph's log
  keys (`worker/workspace/clone.go`);
* `gitproxy`: the local authenticating proxy through which git reaches the instance's
  `/.executors/git` (the token never appears in a git argv, config or remote URL);
* `repocache`: the host's cache of fetched repositories (ours): a job fetches only what the host
  lacks, and the workspace copies its objects out of the cache (`EXECUTOR_REPO_CACHE_SIZE`);
* `files`: job files and step scripts written under the workspace, refusing any path that
  escapes it, and the host-side tree removal.

Knows git and the filesystem, not Docker.
"""

__all__: list[str] = []
