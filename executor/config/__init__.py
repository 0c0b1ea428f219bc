"""Configuration: every `EXECUTOR_*` variable, read once, parsed as Go parses it, validated at once.

* `settings`: the `Settings` model, `load_settings` and the `executor run --help` text
  (Sourcegraph's `cmd/executor/internal/config/config.go`);
* `ranges`: the accepted range of every number, duration and size, and what `0` means;
* `goparse`: Go's `time.ParseDuration`, `strconv.ParseBool`/`Atoi` and data sizes, the one copy
  used by the whole project (config, job files, the batch engine's flags).

Knows no other package of the project but `errors`.
"""

__all__: list[str] = []
