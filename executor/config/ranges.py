"""The accepted range of every numeric, duration and size setting, and what its edge values mean.

Sourcegraph's executor reads these variables with `strconv.Atoi`, `time.ParseDuration` and a size
parser but checks no range: a negative job count panics, a zero poll interval hammers the
frontend, a negative CPU count reaches `docker run`. Here each one has a `Range`, checked when the
settings load so that every bad value is reported at once, naming its variable and the range.

Where Sourcegraph gives `0` a meaning, `0` keeps it (`zero` below): `EXECUTOR_JOB_NUM_CPUS=0` and
`EXECUTOR_JOB_MEMORY=0` set no bound in Docker, `EXECUTOR_NUM_TOTAL_JOBS=0` and
`EXECUTOR_MAX_ACTIVE_TIME=0` mean no limit, `EXECUTOR_MAXIMUM_RUNTIME_PER_JOB=0` sets no
deadline (`internal/workerutil/worker.go` sets one only when it is `> 0`). Our own settings
follow the same habit (`EXECUTOR_METRICS_PORT=0` is off, `EXECUTOR_JOB_PIDS_LIMIT=0` no limit).

Pure; imports only `goparse`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from executor.config.goparse import format_go_duration, parse_data_size

__all__ = ["RANGES", "Range", "format_data_size", "parse_min_free"]

_UNITS = "KMGTP"

# Docker refuses `--memory` below 6 MiB ("Minimum memory limit allowed is 6MB").
_DOCKER_MIN_MEMORY = 6 * 1024**2

# The frontend resets a job whose last heartbeat is older than StalledMaxAge, 25 s for both
# queues (spec §8.2); a heartbeat period near that loses running jobs to the resetter.
_MAX_HEARTBEAT = 20.0


def format_data_size(size: float) -> str:
    """`6291456` → `6M`: the largest binary unit dividing the size, as `parse_data_size` reads."""
    number, unit = int(size), ""
    for next_unit in _UNITS:
        if number < 1024 or number % 1024:
            break
        number, unit = number // 1024, next_unit
    return f"{number}{unit}"


@dataclass(frozen=True)
class Range:
    """Inclusive bounds for one setting (`low_open`: `low` itself is refused), in its own unit
    (an integer, seconds or bytes); `zero` is what `0` means when `0` is allowed outside them."""

    kind: str  # "integer", "duration" or "size"
    low: float
    high: float = math.inf
    low_open: bool = False
    zero: str = ""
    example: str = ""

    def _show(self, value: float) -> str:
        if value == 0:
            return "0"
        if self.kind == "duration":
            return format_go_duration(value)
        if self.kind == "size":
            return format_data_size(value)
        return str(int(value))

    def contains(self, value: float) -> bool:
        """Whether `value` (seconds for durations, bytes for sizes) is accepted."""
        if self.zero and value == 0:
            return True
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def describe(self) -> str:
        """The accepted values in words, e.g. `0 (off) or an integer from 1 to 65535`."""
        noun = f"a {self.kind}" if self.kind != "integer" else "an integer"
        low = self._show(self.low)
        if self.high != math.inf:
            text = f"{noun} from {low} to {self._show(self.high)}"
            if self.low_open:
                text = f"{noun} greater than {low} and at most {self._show(self.high)}"
        elif self.low_open:
            text = f"{noun} greater than {low}"
        elif self.low == 0:
            text = f"a non-negative {self.kind}"
        else:
            text = f"{noun} of at least {low}"
        if self.zero and (self.low > 0 or self.low_open):
            text = f"0 ({self.zero}) or {text}"
        elif self.zero:
            text = f"{text} (0 = {self.zero})"
        if self.example:
            text += f", such as {self.example}"
        return text

    def check(self, value: float | str) -> None:
        """Raise `ValueError` naming the accepted range when `value` is outside it."""
        if isinstance(value, str):
            number: float = parse_data_size(value) if value.strip() else 0
        else:
            number = value
        if not self.contains(number):
            raise ValueError(f"out of range: want {self.describe()}")


#: Field name of `config.Settings` → its range. Every int, duration and size setting has one.
RANGES: dict[str, Range] = {
    "queue_poll_interval": Range("duration", 0, low_open=True, example="1s"),
    "maximum_num_jobs": Range("integer", 1),
    "job_num_cpus": Range("integer", 0, zero="no CPU bound"),
    "job_memory": Range("size", _DOCKER_MIN_MEMORY, zero="no memory bound", example="12G"),
    "firecracker_disk_space": Range("size", 0, example="20G"),
    "maximum_runtime_per_job": Range("duration", 0, zero="no deadline", example="30m"),
    "cleanup_task_interval": Range("duration", 0, low_open=True, example="1m"),
    "num_total_jobs": Range("integer", 0, zero="unlimited"),
    "max_active_time": Range("duration", 0, zero="unlimited"),
    "heartbeat_interval": Range("duration", 0, _MAX_HEARTBEAT, low_open=True, example="5s"),
    "docker_stop_timeout": Range("duration", 0, zero="kill at once", example="5s"),
    "job_pids_limit": Range("integer", 0, zero="no limit"),
    "log_entry_max_bytes": Range("size", 1024, example="16M"),
    "repo_cache_size": Range("size", 0, example="5G"),
    "metrics_port": Range("integer", 1, 65535, zero="off"),
    "firecracker_bandwidth_ingress": Range("integer", 0),
    "firecracker_bandwidth_egress": Range("integer", 0),
}


def parse_min_free(text: str) -> tuple[float, int]:
    """`5%` → (0.05, 0); `2G` → (0.0, 2 GiB); `0` → (0.0, 0) (no check). Raises ValueError."""
    if text.endswith("%"):
        number = text[:-1]
        if not number.replace(".", "", 1).isdigit() or not 0 <= float(number) < 100:
            raise ValueError(f'invalid percentage "{text}": want 0% to 99%, such as 5%')
        return float(number) / 100, 0
    return 0.0, parse_data_size(text)
