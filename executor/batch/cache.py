"""Step cache keys, byte-identical to src-cli's ``lib/batches/execution/cache/cache.go``.

Owns: the key of "workspace after step i" (``<hash>-step-<i>``), the preimage it hashes,
mount metadata gathering and the per-repo cache slug.

Must not know: where results are stored, how steps run, templates.

Algorithm (``CacheKey.Key``, ``marshalAndHash``, ``resolveStepsEnvironment``):

1. ``Steps`` is cut to ``steps[:i+1]``; each kept step's env is resolved against the
   global env (``KEY=VALUE`` list; values not template-rendered) and the per-job vars
   ``SRC_EXECUTOR_JOB_TOKEN``, ``SRC_EXECUTOR_JOB_ID``, ``SRC_EXECUTOR_NAME`` are deleted.
   A bad global entry fails with ``resolving environment for step N: unable to parse
   environment variable "X"``.
2. Go marshals the anonymous struct ``{*CacheKey; Environments; MountsMetadata omitempty}``:
   ``Repository`` (``ID, Name, BaseRef, BaseRev, FileMatches``), ``Path``,
   ``OnlyFetchWorkspace``, ``Steps``, ``BatchChangeAttributes`` (pointer: ``null`` when
   absent), ``StepIndex``, ``Environments``, ``MountsMetadata`` (``Path, Size, Modified``;
   mounts of *all* steps, not only ``<= i``).
3. ``base64.RawURLEncoding(sha256(json)[:16]) + "-step-" + i``.

``KeyForWorkspace`` sorts the file matches first. Verified against the vectors of
sourcegraph ``lib/batches/execution/cache/cache_test.go`` (``TestKeyer_Key``) and
``cmd/batcheshelper/run/post_test.go`` (see ``tests/test_batch_cache.py``).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from executor.batch.env import EnvError
from executor.batch.execution import BatchChangeAttributes
from executor.batch.gojson import GoStruct, GoTime, marshal
from executor.batch.spec import Step, step_to_go

__all__ = [
    "PER_JOB_ENV_VARS",
    "CacheKeyError",
    "CacheRepository",
    "MountMetadata",
    "cache_key",
    "cache_key_preimage",
    "key_for_workspace",
    "mounts_metadata",
    "slug_for_repo",
]

PER_JOB_ENV_VARS = ("SRC_EXECUTOR_JOB_TOKEN", "SRC_EXECUTOR_JOB_ID", "SRC_EXECUTOR_NAME")


class CacheKeyError(ValueError):
    """The key cannot be computed (bad global env, missing mount)."""


@dataclass(frozen=True)
class CacheRepository:
    """``batches.Repository``: ``base_ref`` is the full ref, ``base_rev`` the commit."""

    id: str = ""
    name: str = ""
    base_ref: str = ""
    base_rev: str = ""
    file_matches: list[str] | None = field(default=None)

    def to_go(self) -> GoStruct:
        return GoStruct.of(
            [
                ("ID", self.id),
                ("Name", self.name),
                ("BaseRef", self.base_ref),
                ("BaseRev", self.base_rev),
                ("FileMatches", self.file_matches),
            ]
        )


@dataclass(frozen=True)
class MountMetadata:
    """One mounted file: ``modified_ns`` is the mtime in Unix nanoseconds (UTC)."""

    path: str
    size: int
    modified_ns: int

    def to_go(self) -> GoStruct:
        return GoStruct.of(
            [("Path", self.path), ("Size", self.size), ("Modified", GoTime(self.modified_ns))]
        )


def _environments(steps: Sequence[Step], global_env: Iterable[str]) -> list[dict[str, str]]:
    outer = list(global_env)
    envs: list[dict[str, str]] = []
    for index, step in enumerate(steps):
        try:
            resolved = step.env.resolve(outer)
        except EnvError as exc:
            raise CacheKeyError(f"resolving environment for step {index}: {exc}") from exc
        for name in PER_JOB_ENV_VARS:
            resolved.pop(name, None)
        envs.append(resolved)
    return envs


def cache_key_preimage(
    *,
    repository: CacheRepository,
    steps: Sequence[Step],
    step_index: int,
    path: str = "",
    only_fetch_workspace: bool = False,
    batch_change: BatchChangeAttributes | None = None,
    global_env: Iterable[str] = (),
    mounts: Sequence[MountMetadata] = (),
) -> str:
    """The exact JSON text Go hashes for this key."""
    kept = list(steps[: step_index + 1])
    fields = [
        ("Repository", repository.to_go()),
        ("Path", path),
        ("OnlyFetchWorkspace", only_fetch_workspace),
        ("Steps", [step_to_go(s) for s in kept]),
        ("BatchChangeAttributes", batch_change.to_go() if batch_change is not None else None),
        ("StepIndex", step_index),
        ("Environments", _environments(kept, global_env)),
    ]
    if mounts:
        fields.append(("MountsMetadata", [m.to_go() for m in mounts]))
    return marshal(GoStruct.of(fields))


def cache_key(
    *,
    repository: CacheRepository,
    steps: Sequence[Step],
    step_index: int,
    path: str = "",
    only_fetch_workspace: bool = False,
    batch_change: BatchChangeAttributes | None = None,
    global_env: Iterable[str] = (),
    mounts: Sequence[MountMetadata] = (),
) -> str:
    """``CacheKey.Key()``: ``<base64url(sha256[:16])>-step-<step_index>``."""
    raw = cache_key_preimage(
        repository=repository,
        steps=steps,
        step_index=step_index,
        path=path,
        only_fetch_workspace=only_fetch_workspace,
        batch_change=batch_change,
        global_env=global_env,
        mounts=mounts,
    )
    digest = hashlib.sha256(raw.encode("utf-8")).digest()[:16]
    encoded = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    return f"{encoded}-step-{step_index}"


def key_for_workspace(
    *,
    repository: CacheRepository,
    steps: Sequence[Step],
    step_index: int,
    path: str = "",
    only_fetch_workspace: bool = False,
    batch_change: BatchChangeAttributes | None = None,
    global_env: Iterable[str] = (),
    mounts: Sequence[MountMetadata] = (),
) -> str:
    """``KeyForWorkspace``: like :func:`cache_key` with the file matches sorted first."""
    if repository.file_matches is not None:
        repository = CacheRepository(
            id=repository.id,
            name=repository.name,
            base_ref=repository.base_ref,
            base_rev=repository.base_rev,
            file_matches=sorted(repository.file_matches),
        )
    return cache_key(
        repository=repository,
        steps=steps,
        step_index=step_index,
        path=path,
        only_fetch_workspace=only_fetch_workspace,
        batch_change=batch_change,
        global_env=global_env,
        mounts=mounts,
    )


def mounts_metadata(steps: Sequence[Step], base_dir: Path) -> list[MountMetadata]:
    """Metadata of every mount of every step, resolved under ``base_dir``.

    Mirrors the metadata retrievers (src-cli ``fileMetadataRetriever``, batcheshelper
    ``post``): ``Path`` is relative to ``base_dir``, directories are walked recursively
    in name order, contents are not hashed, a file mounted twice appears twice; a
    missing path is ``path <p> does not exist``.
    """
    found: list[MountMetadata] = []
    for step in steps:
        for mount in step.mount or []:
            target = base_dir / mount.path
            if not target.exists():
                raise CacheKeyError(f"path {target} does not exist")
            found.extend(_walk(target, base_dir))
    return found


def _walk(target: Path, base_dir: Path) -> list[MountMetadata]:
    if target.is_dir():
        out: list[MountMetadata] = []
        for child in sorted(os.listdir(target)):
            out.extend(_walk(target / child, base_dir))
        return out
    info = target.stat()
    rel = os.path.relpath(target, base_dir)
    return [MountMetadata(path=rel, size=info.st_size, modified_ns=info.st_mtime_ns)]


def slug_for_repo(repo_name: str, commit: str) -> str:
    """``SlugForRepo``: repo name with ``/`` replaced by ``-``, then ``-<commit>``."""
    return repo_name.replace("/", "-") + "-" + commit
