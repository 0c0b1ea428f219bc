"""`executor sandbox batch validate|repositories|repos|preview|apply|new`: src-cli's batch
commands, with its flags and texts, against the sandbox.

Taken from src-cli (`sourcegraph/src-cli`, read at 2027d785):
- `cmd/src/batch.go`: the `batch` usage and its command list; `cmd/src/cmd.go`: an unknown
  command is `src batch: unknown subcommand "x"` + `Run 'src batch help' for usage.` (exit 1);
  `cmd/src/run_migration_compat.go` `runLegacy`: a usage error prints `error: …`, a blank line
  and the usage (exit 2), any other error goes to `log.Fatal` (stderr, exit 1).
- `cmd/src/batch_common.go`: the flag sets (`newBatchExecutionFlags`: `-allow-unsupported`,
  `-clear-cache`, `-skip-errors`, `-force-override-ignore`, `-namespace`/`-n`;
  `newBatchExecuteFlags`: `-text-only`, `-apply`, `-keep-logs`, `-cache`, `-tmp`, `-f`, `-j`,
  `-timeout` (60m), `-clean-archives` (true), `-workspace` (auto), `-v`, `-run-as-root`,
  `-fail-fast`), with their usage texts; `getBatchSpecFile` (`-f FILE` or one FILE, else
  `additional arguments not allowed`); `internal/api/flags.go`: `-dump-requests`,
  `-get-curl`, `-trace`, `-insecure-skip-verify`, `-user-agent-telemetry`.
- `cmd/src/batch_validate.go`: `✅ Batch spec successfully validated.`; a failing spec is
  `❌ Batch spec failed validation.` with numbered errors, then the error again (exit 1).
- `cmd/src/batch_repositories.go` (alias `repos`): each repository as
  `  NAME BRANCH (ENDPOINT/URL)`, names padded to the longest, then `✱ N workspaces total`
  (src-cli counts the repositories there); resolution errors are `resolving repositories: …`.
- `cmd/src/batch_preview.go`, `batch_apply.go`: `executeBatchSpec` (`executor.sandbox.srccli_run`).
- `cmd/src/batch_new.go` and `internal/batches/service/service.go` (`exampleSpecTmpl`,
  `GenerateExampleSpec`): the starter spec, author from `git config user.name`/`user.email`
  (else Sourcegraph <batch-changes@sourcegraph.com>), `file F already exists`, `F created.`.

Usage texts say `executor sandbox batch` where src-cli says `src batch`. Differences, all in
`docs/sandbox.md`: `validate FILE` is accepted as its usage text says (src-cli's code refuses
any argument there); flags after FILE are parsed too (`executor.sandbox.goflag`); `-url`,
`-token` and, for preview/apply, `-wait`, `-json`, `-summary`, `-wait-timeout` are the
sandbox's; `-timeout` becomes the job's `batch exec -timeout`, `-clear-cache` ignores cached
results, `-skip-errors` and `-fail-fast` act on the jobs; the other execution flags (`-j`,
`-cache`, `-tmp`, `-keep-logs`, `-clean-archives`, `-workspace`, `-run-as-root`, `-text-only`)
are accepted and have no effect: the executors run the steps with their own settings. `batch
new` does not contact the sandbox. `-allow-unsupported`/`-force-override-ignore` change
nothing (every hosted repository is supported; `.batchignore` is not read).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from executor.sandbox.goflag import FlagExit, FlagSet
from executor.sandbox.srccli_client import Client, Failed, read_spec, spec_errors
from executor.sandbox.srccli_run import execute_batch_spec
from executor.sandbox.srccli_ui import TUI

__all__ = ["COMMANDS", "EXAMPLE_SPEC", "main"]

PROG = "executor sandbox batch"

BATCH_USAGE = f"""'{PROG}' manages batch changes on a Sourcegraph instance.

Usage:

\t{PROG} command [command options]

The commands are:

\tapply                 applies a batch spec to create or update a batch
\t                      change
\tnew                   creates a new batch spec YAML file
\tpreview               creates a batch spec to be previewed or applied
\trepos,repositories    queries the exact repositories that a batch spec will
\t                      apply to
\tvalidate              validates a batch spec
\tshow                  shows a batch spec the sandbox ran (the sandbox's own)

Use "{PROG} [command] -h" for more information about a command.

"""

_FILE_USAGE = "The batch spec file to read, or - to read from standard input."
_EXAMPLES = {
    "apply": f"""
'{PROG} apply' is used to apply a batch spec on a Sourcegraph instance,
creating or updating the described batch change if necessary.

Usage:

    {PROG} apply [command options] [-f FILE]
    {PROG} apply [command options] FILE

Examples:

    $ {PROG} apply -f batch.spec.yaml

    $ {PROG} apply -f batch.spec.yaml -namespace myorg

    $ {PROG} apply batch.spec.yaml
""",
    "preview": f"""
'{PROG} preview' executes the steps in a batch spec and uploads it to a
Sourcegraph instance, ready to be previewed and applied.

Usage:

    {PROG} preview [command options] [-f FILE]
    {PROG} preview [command options] FILE

Examples:

    $ {PROG} preview -f batch.spec.yaml

    $ {PROG} preview batch.spec.yaml
""",
    "repositories": f"""
'{PROG} repositories' works out the repositories that a batch spec would
apply to.

Usage:

    {PROG} repositories [-f] FILE

Examples:

    $ {PROG} repositories batch.spec.yaml

    $ {PROG} repositories -f batch.spec.yaml
""",
    "validate": f"""
'{PROG} validate' validates the given batch spec.

Usage:

    {PROG} validate [-f] FILE

Examples:

    $ {PROG} validate batch.spec.yaml

    $ {PROG} validate -f batch.spec.yaml
""",
    "new": f"""
'{PROG} new' creates a new batch spec YAML, prefilled with all required
fields.

Usage:

    {PROG} new [-f FILE]

Examples:


    $ {PROG} new -f batch.spec.yaml
""",
}

EXAMPLE_SPEC = """version: 2 # Use the latest schema version
name: NAME-OF-YOUR-BATCH-CHANGE
description: DESCRIPTION-OF-YOUR-BATCH-CHANGE

# "on" specifies on which repositories to execute the "steps".
on:
  # Example: find all repositories that contain a README.md file.
  - repositoriesMatchingQuery: file:README.md

# "steps" are run in each repository. Each step is run in a Docker container
# with the repository as the working directory. Once complete, each
# repository's resulting diff is captured.
steps:
  # Example: append "Hello World" to every README.md
  - run: echo "Hello World" | tee -a $(find -name README.md)
    container: alpine:3

# "changesetTemplate" describes the changeset (e.g., GitHub pull request) that
# will be created for each repository.
changesetTemplate:
  title: Hello World
  body: This adds Hello World to the README

  branch: BRANCH-NAME-IN-EACH-REPOSITORY # Push the commit to this branch.

  commit:
    author:
      name: {name}
      email: {email}
    message: Append Hello World to all README.md files
"""


class _Usage(Exception):
    """`cmderrors.Usage`: printed as `error: …` + the usage; exit 2."""


def _flagset(name: str) -> FlagSet:
    def usage(fs: FlagSet) -> None:
        print(f"Usage of '{PROG} {name}':", file=sys.stderr)
        fs.print_defaults(sys.stderr)
        print(_EXAMPLES[name])

    fs = FlagSet(name, usage=usage)
    for flag, text in (
        ("dump-requests", "Log GraphQL requests and responses to stdout"),
        ("get-curl", "Print the curl command for executing this query and exit (WARNING:"
         " includes printing your access token!)"),
        ("trace", "Log the trace ID for requests. See"
         " https://docs.sourcegraph.com/admin/observability/tracing"),
        ("insecure-skip-verify", "Skip validation of TLS certificates against trusted chains"),
    ):  # fmt: skip
        fs.add("bool", flag, False, text)
    fs.add(
        "bool", "user-agent-telemetry", True, "Include the operating system and architecture in"
        " the User-Agent sent with requests to Sourcegraph",
    )  # fmt: skip
    if name != "new":
        fs.add("string", "url", "", "The sandbox's address (default $SANDBOX_URL, else "
               "http://127.0.0.1:3080). Sandbox only.")  # fmt: skip
        fs.add("string", "token", "", "The site token (default $SANDBOX_TOKEN). Sandbox only.")
    return fs


def _resolve_flags(fs: FlagSet) -> None:
    fs.add("string", "f", "", _FILE_USAGE)
    fs.add("bool", "allow-unsupported", False, "Allow unsupported code hosts.")
    fs.add("bool", "force-override-ignore", False, "Do not ignore repositories that have a"
           " .batchignore file.")  # fmt: skip
    fs.add("bool", "skip-errors", False, "If true, errors encountered won't stop the program,"
           " but only log them.")  # fmt: skip


def _execute_flags(fs: FlagSet) -> None:
    _resolve_flags(fs)
    fs.add("bool", "clear-cache", False, "If true, clears the execution cache and executes all"
           " steps anew.")  # fmt: skip
    fs.add("string", "namespace", "", "The user or organization namespace to place the batch"
           " change within. Default is the currently authenticated user.")  # fmt: skip
    fs.add("string", "n", "", "Alias for -namespace.", dest="namespace")
    fs.add("bool", "text-only", False, "INTERNAL USE ONLY. EXPERIMENTAL. Switches off the TUI"
           " to only print JSON lines.")  # fmt: skip
    fs.add("bool", "apply", False, "Ignored.")
    fs.add("bool", "keep-logs", False, "Retain logs after executing steps.")
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "sourcegraph", "batch")
    fs.add("string", "cache", os.path.expanduser(cache), "Directory for caching results and"
           " repository archives.")  # fmt: skip
    fs.add("string", "tmp", os.environ.get("SRC_BATCH_TMP_DIR") or tempfile.gettempdir(),
           "Directory for storing temporary data, such as log files. Default is /tmp. Can"
           " also be set with environment variable SRC_BATCH_TMP_DIR; if both are set, this"
           " flag will be used and not the environment variable.")  # fmt: skip
    fs.add("int", "j", 0, "The maximum number of parallel jobs. Default (or 0) is the number of"
           " CPU cores available to Docker.")  # fmt: skip
    fs.add("duration", "timeout", 3600.0, "The maximum duration a single batch spec step can"
           " take.")  # fmt: skip
    fs.add("bool", "clean-archives", True, "If true, deletes downloaded repository archives"
           " after executing batch spec steps. Note that only the archives related to the"
           " actual repositories matched by the batch spec will be cleaned up, and clean up"
           " will not occur if src exits unexpectedly.")  # fmt: skip
    fs.add("string", "workspace", "auto", 'Workspace mode to use ("auto", "bind", or "volume")')
    fs.add("bool", "v", False, "print verbose output")
    fs.add("bool", "run-as-root", False, "If true, forces all step containers to run as root.")
    fs.add("bool", "fail-fast", False, "Halts execution immediately upon first error instead"
           " of continuing with other tasks.")  # fmt: skip
    fs.add("bool", "wait", False, "Print each changeset spec with its diff. Sandbox only.")
    fs.add("bool", "json", False, "Print the final status as JSON. Sandbox only.")
    fs.add("bool", "summary", False, "Print one line of counts. Sandbox only.")
    fs.add("duration", "wait-timeout", 0.0, "Give up waiting for the jobs after this long"
           " (0: never). Sandbox only.")  # fmt: skip


def _spec_file(opts: dict[str, Any], args: list[str]) -> str:
    """`getBatchSpecFile`."""
    file: str = opts["f"]
    if file:
        if args:
            raise _Usage("additional arguments not allowed")
        return file
    if len(args) > 1:
        raise _Usage("additional arguments not allowed")
    return args[0] if args else ""


def _validate(opts: dict[str, Any], args: list[str]) -> int:
    file = _spec_file(opts, args)
    tui = TUI(sys.stderr)
    with Client(opts) as client:
        client.call("GET", "/.sandbox/secrets")  # src-cli asks the instance first, too
    try:
        raw = read_spec(file)
    except Failed as err:
        tui.validation_failure([str(err)])
        raise
    errors = spec_errors(raw)
    if errors:
        tui.validation_failure(errors)
        raise Failed(_multi(errors))
    tui.line("✅", "Batch spec successfully validated.")
    return 0


def _multi(errors: list[str]) -> str:
    """lib/errors' multi-error text."""
    if len(errors) == 1:
        return errors[0]
    return f"{len(errors)} errors occurred:" + "".join(f"\n\t* {e}" for e in errors)


def _repositories(opts: dict[str, Any], args: list[str]) -> int:
    file = _spec_file(opts, args)
    with Client(opts) as client:
        client.call("GET", "/.sandbox/secrets")
        raw = read_spec(file)
        errors = spec_errors(raw)
        if errors:
            TUI(sys.stderr).validation_failure(errors)
            raise Failed(_multi(errors))
        body = {"spec": raw}
        result = client.call("POST", "/.sandbox/batches/resolve", json=body,
                             wrap="resolving repositories")  # fmt: skip
    repos: dict[str, dict[str, Any]] = {}
    paths: dict[str, list[str]] = {}
    for ws in result["workspaces"]:
        repo = ws["repository"]
        repos.setdefault(repo["id"], {**repo, "branch": ws["branch"]["name"]})
        paths.setdefault(repo["id"], []).append(ws["path"])
    width = max((len(r["name"]) for r in repos.values()), default=0)
    lines = []
    for repo_id, repo in repos.items():
        branch = f" {repo['branch']}" if repo["branch"] else ""
        lines.append(f"  {repo['name'].ljust(width)}{branch} ({client.base}{repo['url']})")
        if opts["v"]:
            lines += [f"      workspace {p or '/'}" for p in paths[repo_id]]
    count = len(repos)
    lines.append(f"✱ {count} workspace{'' if count == 1 else 's'} total")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _git_config(key: str) -> str:
    try:
        done = subprocess.run(["git", "config", key], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _new(opts: dict[str, Any], args: list[str]) -> int:
    if args:
        raise _Usage("additional arguments not allowed")
    file: str = opts["f"]
    name, email = _git_config("user.name"), _git_config("user.email")
    if not (name and email):
        name, email = "Sourcegraph", "batch-changes@sourcegraph.com"
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise Failed(f"file {file} already exists") from None
    except OSError as err:
        reason = os.strerror(err.errno or 0).lower()
        raise Failed(f"failed to create file {file}: open {file}: {reason}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(EXAMPLE_SPEC.format(name=name, email=email))
    print(f"{file} created.")
    return 0


def _preview(opts: dict[str, Any], args: list[str]) -> int:
    return execute_batch_spec(opts, _spec_file(opts, args), apply=False, tui=TUI(sys.stderr))


def _apply(opts: dict[str, Any], args: list[str]) -> int:
    return execute_batch_spec(opts, _spec_file(opts, args), apply=True, tui=TUI(sys.stderr))


def _setup_new(fs: FlagSet) -> None:
    fs.add("string", "f", "batch.yaml", "The name of the batch spec file to create.")
    fs.add("bool", "skip-errors", False, "If true, errors encountered won't stop the program,"
           " but only log them.")  # fmt: skip


_Handler = Callable[[dict[str, Any], list[str]], int]
COMMANDS: dict[str, tuple[Callable[[FlagSet], None], _Handler]] = {
    "apply": (_execute_flags, _apply),
    "preview": (_execute_flags, _preview),
    "repositories": (_resolve_flags, _repositories),
    "validate": (_resolve_flags, _validate),
    "new": (_setup_new, _new),
}
_ALIASES = {"repos": "repositories"}


def main(argv: list[str]) -> int:
    """Run `batch <command> [flags]` (argv without `batch`); the exit status."""
    if not argv or argv[0] in ("help", "-h", "-help", "--help"):
        print(BATCH_USAGE, end="")
        return 0
    name = _ALIASES.get(argv[0], argv[0])
    if name not in COMMANDS:
        print(f'{PROG}: unknown subcommand "{argv[0]}"', file=sys.stderr)
        print(f"Run '{PROG} help' for usage.", file=sys.stderr)
        return 1
    setup, handler = COMMANDS[name]
    fs = _flagset(name)
    setup(fs)
    if name == "repositories":
        fs.add("bool", "v", False, "List each repository's workspaces. Sandbox only.")
    try:
        opts, args = fs.parse(argv[1:])
        return handler(opts, args)
    except FlagExit as done:
        return done.code
    except _Usage as err:
        print(f"error: {err}\n", file=sys.stderr)
        fs.print_usage()
        return 2
    except Failed as err:
        print(err, file=sys.stderr)
        return 1
