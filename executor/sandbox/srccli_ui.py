"""The lines src-cli's batch commands print, for `executor.sandbox.srccli`.

Texts from src-cli: `internal/batches/ui/tui.go` (`ParsingBatchSpecFailure`,
`DeterminingWorkspacesSuccess`, `maybeWorkspaceCountWarning` (limit 500), `CheckingCacheSuccess`,
`ExecutingTasksSkippingErrors`, `NoChangesetSpecs`, `UploadingChangesetSpecs`,
`CreatingBatchSpec`, `PreviewBatchSpec`, `ApplyingBatchSpecSuccess`, `printExecutionError`,
`formatTaskExecutionErr`), `internal/batches/ui/task_exec_tui.go` (`Executing... (%d/%d, %d
errored)`), `lib/output/emoji.go` (` ✓`, ` U+2A2F`, `❗️`, `💡`) and `lib/output/output.go`,
`line.go` (a line is `emoji + " " + text`; a block indents its lines by the emoji's display
width + 1). Pending spinners and progress bars are printed once, completed; no colours.

Everything goes to the stream given (src-cli's TUI writes to stderr).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TextIO

__all__ = ["SUCCESS", "TUI", "WARNING", "task_error"]

SUCCESS = " ✓"
FAILURE = " \u2a2f"  # VECTOR OR CROSS PRODUCT, as lib/output has it
WARNING = "❗️"
LIGHTBULB = "💡"
WORKSPACE_WARNING_LIMIT = 500
TROUBLESHOOTING = "https://docs.sourcegraph.com/batch_changes/references/troubleshooting"


# go-runewidth's widths: SUCCESS/FAILURE a space and a narrow sign, ❗/💡/❌ wide, ⚠ narrow (the
# variation selector U+FE0F has width 0).
_WIDTH = {SUCCESS: 2, FAILURE: 2, WARNING: 2, LIGHTBULB: 2, "❌": 2, "⚠️": 1, "": 0}


def _width(emoji: str) -> int:
    return _WIDTH.get(emoji, 2)


class TUI:
    """src-cli's `ui.TUI`, writing finished lines to `out`."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def line(self, emoji: str, text: str) -> None:
        print(f"{emoji} {text}" if emoji else text, file=self.out, flush=True)

    def block(self, emoji: str, summary: str, lines: Iterable[str]) -> None:
        self.line(emoji, summary)
        indent = " " * (_width(emoji) + 1)
        for text in lines:
            for part in text.split("\n"):
                print(indent + part, file=self.out)
        self.out.flush()

    def done(self, text: str) -> None:
        """A completed pending step (`batchCompletePending`)."""
        self.line(SUCCESS, text)

    def validation_failure(self, errors: list[str]) -> None:
        lines = [f"{number}. {text}" for number, text in enumerate(errors, start=1)]
        self.block("❌", "Batch spec failed validation.", lines)

    def workspaces(self, workspaces: int, repos: int) -> None:
        self.done(f"Resolved {workspaces} workspaces from {repos} repositories")
        if workspaces > WORKSPACE_WARNING_LIMIT:
            parts = math.ceil(workspaces / WORKSPACE_WARNING_LIMIT)
            self.block(
                "⚠️",
                f"Batch changes with more than {WORKSPACE_WARNING_LIMIT} workspaces may be"
                " unwieldy to manage.",
                [
                    "We're working on providing more filtering options, and you can continue with",
                    f"this batch change if you want, but you may want to break it into {parts}"
                    " or more",
                    "batch changes if you can.",
                ],
            )

    def cache(self, cached_specs: int, tasks: int) -> None:
        if cached_specs == 1:
            found = "Found 1 cached changeset spec"
        else:
            found = f"Found {cached_specs} cached changeset specs"
        if tasks == 0:
            self.done(f"{found}; no tasks need to be executed")
        elif tasks == 1:
            self.done(f"{found}; 1 task needs to be executed")
        else:
            self.done(f"{found}; {tasks} tasks need to be executed")

    @staticmethod
    def executing_label(done: int, total: int, errored: int) -> str:
        return f"Executing... ({done}/{total}, {errored} errored)"

    def execution_error(self, errors: list[str]) -> None:
        """`printExecutionError`: each error (a task's as `repo:\\nerror\\nLog: …\\n`), then
        the troubleshooting link."""
        print("", file=self.out)
        summary = f"{len(errors)} errors:" if len(errors) > 1 else "Error:"
        self.block(FAILURE, summary, errors)
        print("", file=self.out)
        self.block(
            LIGHTBULB,
            "The troubleshooting documentation can help to narrow down the cause of the errors:",
            [TROUBLESHOOTING],
        )

    def skipping_errors(self, errors: list[str]) -> None:
        self.execution_error(errors)
        self.line(WARNING, "Skipping errors because -skip-errors was used.")

    def changeset_specs(self, specs: int, repos: int) -> None:
        if specs:
            self.done(
                "Sending changeset spec" if specs == 1 else f"Sending {specs} changeset specs"
            )
        elif repos == 0:
            self.line(WARNING, "No changeset specs created")

    def preview(self, url: str) -> None:
        print("", file=self.out)
        self.block(SUCCESS, "To preview or apply the batch spec, go to:", [url])

    def applied(self, url: str) -> None:
        self.done("Applying batch spec")
        print("", file=self.out)
        self.block(SUCCESS, "Batch change applied!", ["To view the batch change, go to:", url])


def task_error(repository: str, message: str, log_url: str) -> str:
    """`formatTaskExecutionErr`, with the job page as the log file."""
    return f"{repository}:\n{message}\nLog: {log_url}\n"
