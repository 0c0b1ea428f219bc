"""One batch step's pieces: template context, outputs, captured output, failure text, scripts.

Owns: the values a step's templates see (src-cli's ``template.StepContext``), the
``outputs`` decoding (text/json/yaml), the capture of a container's stdout/stderr
*untrimmed* (with an end marker, since the runtime hands us lines), the batched
``TASK_STEP`` PROGRESS output, the ``stepFailedErr`` text and the in-container scripts.

Must not know: docker argv, the queue, log uploads, git. Template evaluation is delegated to
``executor.batch.step_templates`` (an adapter over ``executor.batch.template``).

Facts (src-cli ``internal/batches/executor/run_steps.go``, ``internal/batches/ui/``):

* ``setOutputs``: render ``value`` with ``step`` = this step's result; ``yaml`` → first
  document (yaml.v3), ``json`` → first JSON value (numbers are float64), else the string
  as is (no trimming). Outputs accumulate; a copy is stored in the step result.
* The run script is the rendered ``run`` only; src-cli probes ``/bin/bash`` then
  ``/bin/sh`` and runs ``<shell> <script>``: exit status = the script's.
* ``StepOutputWriter`` prefixes each line with ``stdout: ``/``stderr: `` and flushes the
  buffer as one ``TASK_STEP`` PROGRESS event ``{"out": ...}`` every 500 ms.
* ``stepFailedErr.Error()``: ``run: <first line>[\\n\\t(... and N more lines)]\\ncontainer:
  <c>\\n`` + ``\\nstandard out:\\n`` / ``\\nstandard error:\\n`` with each (trimmed) line
  tab-indented + ``\\nCommand failed with exit code N.`` (or ``\\nCommand failed: <err>``).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from executor.batch.execution import AfterStepResult, BatchChangeAttributes, Changes
from executor.batch.spec import Output

__all__ = [
    "PROGRESS_INTERVAL",
    "OutputCapture",
    "OutputError",
    "StepContextData",
    "parse_output",
    "render_outputs",
    "step_failed_message",
    "wrapper_script",
]

#: src-cli's ``stepFlushDuration``.
PROGRESS_INTERVAL = 0.5


class OutputError(ValueError):
    """An ``outputs`` value that does not decode in its declared format."""


@dataclass
class StepContextData:
    """Everything ``${{ }}`` in a step can see (src-cli ``template.StepContext``).

    ``previous_step`` is the last *executed* step's result (a zero result before the
    first); ``step`` is this step's result, only set while rendering ``outputs``;
    ``steps_changes`` is the cumulative change set after the previous executed step.
    """

    batch_change: BatchChangeAttributes
    repository_name: str
    repository_branch: str
    search_result_paths: Sequence[str]
    path: str
    outputs: dict[str, Any] = field(default_factory=dict)
    previous_step: AfterStepResult = field(default_factory=AfterStepResult)
    step: AfterStepResult = field(default_factory=AfterStepResult)

    @property
    def steps_changes(self) -> Changes:
        return self.previous_step.changed_files


def parse_output(text: str, fmt: str) -> Any:
    """Decode a rendered output value the way ``setOutputs`` does."""
    if fmt == "json":
        stripped = text.lstrip(" \t\r\n")
        if not stripped:
            raise OutputError("EOF")
        try:
            # Go decodes JSON numbers into float64 for `any`.
            value, _ = json.JSONDecoder(parse_int=float).raw_decode(stripped)
        except json.JSONDecodeError as err:
            char = stripped[err.pos] if err.pos < len(stripped) else ""
            raise OutputError(
                f"invalid character {char!r} looking for beginning of value"
                if char
                else "unexpected EOF"
            ) from None
        return value
    if fmt == "yaml":
        yaml = YAML(typ="safe", pure=True)
        try:
            for document in yaml.load_all(io.StringIO(text)):
                return document
        except YAMLError as err:
            raise OutputError(f"yaml: {err}") from None
        raise OutputError("EOF")
    return text


def render_outputs(
    outputs: Mapping[str, Output] | None,
    accumulated: dict[str, Any],
    render: Callable[[str, str], str],
) -> None:
    """Render and decode every output of a step into ``accumulated`` (in place).

    ``render(name, text)`` renders one template with the step's context (``step.*`` set).
    """
    for name, output in (outputs or {}).items():
        rendered = render(f"outputs-{name}", output.value)
        accumulated[name] = parse_output(rendered, output.format)


def step_failed_message(
    *,
    run: str,
    container: str,
    stdout: str,
    stderr: str,
    exit_code: int,
    error: str = "",
) -> str:
    """src-cli's ``stepFailedErr.Error()``; ``exit_code == -1`` means "no exit code"."""
    lines = run.split("\n")
    shown = lines[0]
    if len(lines) > 1:
        shown += f"\n\t(... and {len(lines) - 1} more lines)"
    out = [f"run: {shown}\ncontainer: {container}\n"]
    for title, text in (("standard out", stdout.strip()), ("standard error", stderr.strip())):
        if text:
            out.append(f"\n{title}:\n")
            out.extend(f"\t{line}\n" for line in text.split("\n"))
    if exit_code != -1:
        out.append(f"\nCommand failed with exit code {exit_code}.")
    else:
        out.append(f"\nCommand failed: {error}")
    return "".join(out)


def wrapper_script(script: str, marker: str) -> str:
    """The container entry script: run ``script`` with bash if present, else sh.

    Mirrors src-cli's shell probe (``/bin/bash`` first, then ``/bin/sh``) without an
    extra container. After the step, ``marker`` is printed on both streams, preceded by a
    newline, so :class:`OutputCapture` can restore the exact output, trailing newline or
    not. The step's exit status is passed through.
    """
    return (
        f"if [ -x /bin/bash ]; then /bin/bash {script}; else /bin/sh {script}; fi\n"
        "status=$?\n"
        f"printf '\\n%s\\n' '{marker}'\n"
        f"printf '\\n%s\\n' '{marker}' >&2\n"
        'exit "$status"\n'
    )


class OutputCapture:
    """An ``OutputSink`` that keeps a step's stdout/stderr exactly and streams progress.

    Lines arrive without their newline. Because the wrapper prints ``\\n<marker>\\n`` after
    the step, the text before the marker is ``"\\n".join(lines)`` exactly. Progress is
    sent to ``progress(out)`` as ``stdout: line\\n``/``stderr: line\\n`` text, batched at
    most every :data:`PROGRESS_INTERVAL` seconds (call :meth:`flush` at the end).
    """

    def __init__(
        self,
        marker: str,
        progress: Callable[[str], None] | None = None,
        *,
        interval: float = PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._marker = marker
        self._progress = progress
        self._interval = interval
        self._clock = clock
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._held: dict[str, str | None] = {"stdout": None, "stderr": None}
        self._done: dict[str, bool] = {"stdout": False, "stderr": False}
        self._pending: list[str] = []
        self._last_flush = clock()

    def write(self, stream: str, line: str) -> None:
        if stream not in self._lines or self._done[stream]:
            return
        if line == self._marker:
            # Everything before the marker, joined by "\n", is the output. The last line
            # is empty when the output ended with a newline: keep it, but don't stream it.
            self._done[stream] = True
            held = self._held[stream]
            self._held[stream] = None
            if held:
                self._accept(stream, held)
            elif held is not None:
                self._lines[stream].append(held)
            return
        held = self._held[stream]
        if held is not None:
            self._accept(stream, held)
        self._held[stream] = line

    def _accept(self, stream: str, line: str) -> None:
        self._lines[stream].append(line)
        if self._progress is not None:
            self._pending.append(f"{stream}: {line}\n")
            if self._clock() - self._last_flush >= self._interval:
                self.flush()

    def flush(self) -> None:
        """Send the buffered progress text, if any."""
        self._last_flush = self._clock()
        if self._pending and self._progress is not None:
            text, self._pending = "".join(self._pending), []
            self._progress(text)

    def text(self, stream: str) -> str:
        """The stream's full output; without a marker (Docker failed) lines end in ``\\n``."""
        lines = self._lines[stream]
        held = self._held[stream]
        if self._done[stream]:
            return "\n".join(lines)
        every = [*lines, *([held] if held is not None else [])]
        return "".join(f"{line}\n" for line in every)

    def finish(self) -> None:
        """End of the step: release lines held back when no marker came, then flush."""
        for stream in ("stdout", "stderr"):
            held = self._held[stream]
            if not self._done[stream] and held is not None:
                self._held[stream] = None
                self._accept(stream, held)
                self._done[stream] = True
                self._lines[stream].append("")  # text() then ends with the newline
        self.flush()
