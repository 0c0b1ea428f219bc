"""The daemon waits for its child processes on pidfds (`executor.run.host`), not with a thread
per child as Python 3.11's default watcher does: a job starts about ten of them."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from executor.run.host import watch_children_with_pidfd


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12 chooses the pidfd watcher itself")
def test_children_are_waited_for_on_pidfds_without_a_thread() -> None:
    async def scenario() -> tuple[bool, object, list[int], int]:
        switched = watch_children_with_pidfd(asyncio.get_running_loop())
        watcher = asyncio.get_child_watcher()
        before = threading.active_count()
        codes = []
        for code in (0, 3, 0):
            proc = await asyncio.create_subprocess_exec("sh", "-c", f"exit {code}")
            codes.append(await proc.wait())
        # The default watcher would have started (and maybe not yet joined) a waiting thread.
        return switched, watcher, codes, threading.active_count() - before

    switched, watcher, codes, extra_threads = asyncio.run(scenario())
    try:
        assert switched is True
        assert isinstance(watcher, asyncio.PidfdChildWatcher)
        assert codes == [0, 3, 0]
        assert extra_threads == 0
    finally:
        asyncio.set_child_watcher(None)  # the next test's loop gets the default again
