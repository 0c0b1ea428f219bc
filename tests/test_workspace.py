"""Workspace without a network: git argv rules, job files, scripts, confinement, teardown.

Repository fetches over real git smart HTTP are in `tests/integration/test_workspace_git.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from executor.errors import WorkspaceError
from executor.logstream.logger import ExecutionLogger, Redactor
from executor.wire import ExecutionLogEntry, Job
from executor.workspace.clone import (
    SCRIPTS_DIR,
    Workspace,
    git_commands,
    prepare_workspace,
    teardown_workspace,
)
from executor.workspace.files import FilesClient, TreeRemoval, remove_tree, write_files
from executor.workspace.marker import marker_path


@dataclass
class MemorySink:
    entries: dict[int, ExecutionLogEntry] = field(default_factory=dict)

    async def add_execution_log_entry(self, job: Job, entry: ExecutionLogEntry) -> int:
        self.entries[len(self.entries) + 1] = entry
        return len(self.entries)

    async def update_execution_log_entry(
        self, job: Job, entry_id: int, entry: ExecutionLogEntry
    ) -> None:
        self.entries[entry_id] = entry

    def by_key(self, key: str) -> ExecutionLogEntry:
        return next(e for e in self.entries.values() if e.key == key)


@dataclass
class StoreFiles:
    """A FilesClient over a dict, recording requests."""

    blobs: dict[tuple[str, str], bytes]
    asked: list[tuple[str, str]] = field(default_factory=list)

    async def get_file(self, job: Job, bucket: str, key: str) -> bytes:
        self.asked.append((bucket, key))
        return self.blobs[(bucket, key)]


_files_conforms: type[FilesClient] = StoreFiles


def _job(**kw: object) -> Job:
    return Job.model_validate({"id": 42, "token": "t" * 40, **kw})


def _prepare(
    job: Job,
    root: Path,
    *,
    files: StoreFiles | None = None,
    scripts: Sequence[tuple[str, str]] = (),
) -> tuple[Workspace, MemorySink]:
    sink = MemorySink()

    async def main() -> Workspace:
        logger = ExecutionLogger(sink, job, Redactor({}), interval=0.05)
        try:
            return await prepare_workspace(
                job,
                root=root,
                executor_name="exec-1",
                frontend_url="http://127.0.0.1:9",
                executor_token="x",
                logger=logger,
                files=files or StoreFiles({}),
                env={"PATH": os.environ.get("PATH", "")},
                scripts=scripts,
            )
        finally:
            await logger.flush()

    return asyncio.run(main()), sink


@pytest.mark.parametrize(
    ("tags", "shallow", "sparse", "flags"),
    [
        (False, False, [], []),
        (True, False, [], ["--tags"]),
        (False, True, [], ["--no-tags", "--depth=1"]),
        (True, True, [], ["--tags", "--depth=1"]),
        (False, False, ["a/*"], ["--filter=blob:none"]),
        (True, True, ["a/*"], ["--tags", "--depth=1", "--filter=blob:none"]),
    ],
)
def test_fetch_flag_rules(tags: bool, shallow: bool, sparse: list[str], flags: list[str]) -> None:
    job = _job(
        repositoryName="r",
        commit="c0ffee",
        fetchTags=tags,
        shallowClone=shallow,
        sparseCheckout=sparse,
    )
    cmds = dict(git_commands(job, "/ws", 1234))
    assert cmds["setup.git.fetch"] == [
        "git",
        "-C",
        "/ws",
        "-c",
        "protocol.version=2",
        "fetch",
        "--progress",
        "--no-recurse-submodules",
        *flags,
        "origin",
        "c0ffee",
    ]
    assert ("setup.git.sparse-checkout-set" in cmds) == bool(sparse)
    assert cmds["setup.git.add-remote"][-1] == "http://127.0.0.1:1234/r"


def test_no_repo_files_scripts_marker_and_teardown(tmp_path: Path) -> None:
    stamp = dt.datetime(2023, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    job = _job(
        version=2,
        files={
            "input.json": {"content": "eyJhIjoxfQ==", "modifiedAt": stamp.isoformat()},
            "nested/deep/cache.json": {"bucket": "batch-changes", "key": "spec/cache.json"},
            "empty.txt": {},
        },
    )
    store = StoreFiles({("batch-changes", "spec/cache.json"): b"from-files-api"})
    scripts = [("42.0_@.sh", "echo hi\n"), ("42.1_@.sh", "echo two\n")]
    ws, sink = _prepare(job, tmp_path, files=store, scripts=scripts)
    assert ws.path.parent == tmp_path.resolve() and ws.path.name.startswith("workspace-42-")
    assert ws.repo_path == ws.path and ws.scripts_dir == ws.path / SCRIPTS_DIR
    assert json.loads(marker_path(ws.path).read_text()) == {
        "executor": "exec-1",
        "job": "42",
        "lock": "",
    }
    assert (ws.path / "input.json").read_bytes() == b'{"a":1}'
    assert (ws.path / "input.json").stat().st_mtime == stamp.timestamp()
    assert (ws.path / "nested/deep/cache.json").read_bytes() == b"from-files-api"
    assert (ws.path / "empty.txt").read_bytes() == b""
    assert store.asked == [("batch-changes", "spec/cache.json")]
    assert (ws.scripts_dir / "42.1_@.sh").read_text() == "echo two\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((ws.scripts_dir / "42.0_@.sh").stat().st_mode) == 0o777 & ~umask
    # One entry, no git entries (no repository), a `Wrote` line per file and script.
    assert [e.key for e in sink.entries.values()] == ["setup.fs.extras"]
    entry = sink.by_key("setup.fs.extras")
    assert entry.command is None and entry.exit_code == 0
    lines = entry.out.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith(f"Wrote {ws.path / 'input.json'} in ")
    assert lines[-1].startswith(f"Wrote {ws.scripts_dir / '42.1_@.sh'} in ")

    for keep in (True, False):
        tsink = MemorySink()

        async def teardown(keep: bool = keep, tsink: MemorySink = tsink) -> bool:
            logger = ExecutionLogger(tsink, job, Redactor({}))
            ok = await teardown_workspace(ws, logger, keep=keep)
            await logger.flush()
            return ok

        assert asyncio.run(teardown())
        entry = tsink.by_key("teardown.fs")
        assert entry.exit_code == 0 and entry.command is None
        if keep:
            assert entry.out == f"Preserving workspace ({ws.path}) as per config"
            assert ws.path.exists() and marker_path(ws.path).exists()
        else:
            assert entry.out == f"Removing {ws.path}\n"
            assert not ws.path.exists() and not marker_path(ws.path).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left beside it either


def test_no_entry_without_files_or_scripts(tmp_path: Path) -> None:
    ws, sink = _prepare(_job(), tmp_path)
    assert sink.entries == {} and ws.scripts_dir.is_dir()


# A NUL in a key never gets this far: the payload is refused at decode (test_malformed_job_e2e).
@pytest.mark.parametrize("bad", ["../../etc/x", "/etc/passwd-x", "a/../../x", "..", ""])
def test_escaping_file_paths_refused_and_nothing_written(tmp_path: Path, bad: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    sentinel = tmp_path / "etc"
    sentinel.mkdir()
    job = _job(files={"ok.txt": {"content": "fine"}, bad: {"content": "evil"}})
    with pytest.raises(WorkspaceError) as info:
        _prepare(job, root)
    assert str(info.value) == (
        f"refusing to write outside of working directory: {bad.replace(chr(0), chr(92) + 'x00')}"
    )
    assert info.value.step_key == "setup.fs.extras"
    assert list(sentinel.iterdir()) == []
    assert list(root.iterdir()) == []  # the failed workspace is removed
    assert not Path("/etc/passwd-x").exists()


def test_repository_directory_must_stay_inside(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not a subdirectory"):
        _prepare(_job(repositoryName="r", commit="c", repositoryDirectory="../up"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def _write(ws: Path, job: Job) -> MemorySink:
    sink = MemorySink()

    async def main() -> None:
        logger = ExecutionLogger(sink, job, Redactor({}))
        try:
            await write_files(job, ws, ws / SCRIPTS_DIR, logger, StoreFiles({}), [])
        finally:
            await logger.flush()

    asyncio.run(main())
    return sink


def test_symlinks_leading_out_are_refused_inside_ones_followed(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    # What a cloned repository could contain.
    (ws / "escape").symlink_to(outside)
    (ws / "file-link").symlink_to(outside / "target")
    (ws / "dangling").symlink_to(outside / "nope" / "deeper")
    (ws / "real").mkdir()
    (ws / "inner").symlink_to("real")
    for path in ["escape/x", "escape/sub/x", "file-link", "dangling/x", "dangling"]:
        with pytest.raises(WorkspaceError, match="refusing to write outside of working directory"):
            _write(ws, _job(files={path: {"content": "evil"}}))
        assert list(outside.iterdir()) == [], path
    sink = _write(ws, _job(files={"inner/ok.txt": {"content": "fine"}}))
    assert (ws / "real" / "ok.txt").read_text() == "fine"
    assert sink.by_key("setup.fs.extras").exit_code == 0


def test_failed_write_entry_exit_code_1(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    with pytest.raises(WorkspaceError):
        sink = MemorySink()
        job = _job(files={"../x": {"content": "evil"}})

        async def main() -> None:
            logger = ExecutionLogger(sink, job, Redactor({}))
            try:
                await write_files(job, ws, ws / SCRIPTS_DIR, logger, StoreFiles({}), [])
            finally:
                await logger.flush()

        asyncio.run(main())
    entry = sink.by_key("setup.fs.extras")
    assert entry.exit_code == 1
    assert "refusing to write outside of working directory: ../x" in entry.out


def test_teardown_removes_read_only_directories(tmp_path: Path) -> None:
    ws, _ = _prepare(_job(), tmp_path)
    ro = ws.path / "cache" / "mod"
    ro.mkdir(parents=True)
    (ro / "f").write_text("x")
    ro.chmod(0o555)
    (ws.path / "cache").chmod(0o555)
    sink = MemorySink()

    async def main() -> bool:
        logger = ExecutionLogger(sink, _job(), Redactor({}))
        ok = await teardown_workspace(ws, logger, keep=False)
        await logger.flush()
        return ok

    assert asyncio.run(main())
    assert not ws.path.exists()


def test_teardown_calls_the_root_remover_only_on_permission_errors(tmp_path: Path) -> None:
    ws, _ = _prepare(_job(), tmp_path)
    calls: list[Path] = []

    async def remove_as_root(path: Path) -> str | None:
        calls.append(path)
        return None

    async def main() -> bool:
        logger = ExecutionLogger(MemorySink(), _job(), Redactor({}))
        ok = await teardown_workspace(ws, logger, keep=False, remove_as_root=remove_as_root)
        await logger.flush()
        return ok

    assert asyncio.run(main())
    assert calls == [] and not ws.path.exists()


def test_remove_tree_never_follows_a_symlinked_workspace(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("k")
    link = tmp_path / "workspace-1-x"
    link.symlink_to(target)
    result = remove_tree(link)
    assert result.error is not None and "still present" in result.error
    assert not result.permission_denied
    assert (target / "keep.txt").read_text() == "k"
    assert remove_tree(tmp_path / "missing") == TreeRemoval()
