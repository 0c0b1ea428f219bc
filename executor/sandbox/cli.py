"""`executor sandbox …`: run the sandbox, and drive it through its admin API.

    serve    [--host 127.0.0.1] [--port 3080] [--data-dir .sandbox-data] [--token T]
             [--stalled-max-age 25s] [--resetter-interval 5s] [--faults SPEC]
             [--native-server-side-execution [--batcheshelper-image IMAGE]]
    repo add NAME PATH [--register]      repo list
    enqueue FILE.json [--queue batches]  (FILE may be `-` for stdin)
    jobs [--queue Q] [--state S]         job ID      logs ID      cancel ID
    executors
    batch validate|repos|preview|apply|new [-f FILE] …   (src-cli's: `executor.sandbox.srccli`)
    batch show ID   secret set NAME VALUE   repo add-samples   (`executor.sandbox.batch_cli`)

The token comes from `--token`, else `SANDBOX_TOKEN`, else `EXECUTOR_FRONTEND_PASSWORD`; the
server refuses to start without one. Client commands talk to `--url`, else `SANDBOX_URL`, else
`http://127.0.0.1:3080`. `executor/cli.py` delegates here; `python -m executor.sandbox.cli`
works too. Reads the environment for these three variables only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from executor.sandbox.compat import parse_duration

__all__ = ["main"]

DEFAULT_URL = "http://127.0.0.1:3080"
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class CliError(Exception):
    """A message for the user; exit status 1."""


def _token(args: argparse.Namespace) -> str:
    token: str = (
        args.token
        or os.environ.get("SANDBOX_TOKEN")
        or os.environ.get("EXECUTOR_FRONTEND_PASSWORD")
        or ""
    )
    return token


def _faults(spec: str) -> Any:
    from executor.sandbox.faults import FaultSpecError, parse_faults

    try:
        return parse_faults(spec)
    except FaultSpecError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="executor sandbox", description="A reference Sourcegraph executor frontend."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def client(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--url", default=os.environ.get("SANDBOX_URL", DEFAULT_URL))
        p.add_argument("--token", help="site token (default: $SANDBOX_TOKEN)")
        return p

    serve = sub.add_parser("serve", help="run the sandbox server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3080)
    serve.add_argument("--data-dir", type=Path, default=Path(".sandbox-data"))
    serve.add_argument("--token", help="site token (default: $SANDBOX_TOKEN)")
    serve.add_argument("--stalled-max-age", type=parse_duration, default=25.0)
    serve.add_argument("--resetter-interval", type=parse_duration, default=5.0)
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--native-server-side-execution",
        action="store_true",
        help="send V2 batches jobs (batcheshelper docker steps), as Sourcegraph's site config "
        "batchChanges.nativeServerSideExecution; default: V1 (`batch exec` cliStep)",
    )
    serve.add_argument(
        "--batcheshelper-image",
        default="executor-batcheshelper:latest",
        help="the helper image of V2 jobs (executors.batcheshelperImage:…Tag)",
    )
    serve.add_argument(
        "--faults",
        type=_faults,
        default=(),
        help="inject faults, e.g. 'route=queue,error=0.3,latency=2s' (executor.sandbox.faults)",
    )

    repo = client("repo", "hosted repositories")
    repo_sub = repo.add_subparsers(dest="repo_command", required=True)
    add = repo_sub.add_parser("add", help="host a local repository")
    add.add_argument("name", help="repository name, e.g. github.com/acme/app")
    add.add_argument("path", type=Path)
    add.add_argument("--register", action="store_true", help="serve PATH in place, no copy")
    repo_sub.add_parser("list", help="list hosted repositories")

    enqueue = client("enqueue", "enqueue a job from a JSON file (Job wire shape)")
    enqueue.add_argument("file", help="path, or - for stdin")
    enqueue.add_argument("--queue", default=None, help="batches (default) or codeintel")

    codeintel = client("codeintel", "codeintel jobs and uploads (codeintel enqueue|uploads)")
    ci_sub = codeintel.add_subparsers(dest="codeintel_command", required=True)
    ci_enqueue = ci_sub.add_parser("enqueue", help="enqueue a codeintel job for a hosted repo")
    ci_enqueue.add_argument("repository")
    ci_enqueue.add_argument("--commit", default="", help="default: the repository's HEAD")
    ci_enqueue.add_argument("--indexer", help="indexer image (default: the local stand-in)")
    ci_enqueue.add_argument("--indexer-arg", action="append", dest="indexer_args")
    ci_enqueue.add_argument("--local-step", action="append", dest="local_steps", default=[])
    ci_enqueue.add_argument("--root", default="")
    ci_enqueue.add_argument("--outfile", default="")
    ci_enqueue.add_argument("--src-cli-image", help="default: the local src-cli stand-in")
    ci_enqueue.add_argument(
        "--frontend-url", help="SRC_ENDPOINT for the upload step (default: host.docker.internal)"
    )
    ci_sub.add_parser("uploads", help="list recorded codeintel uploads")

    jobs = client("jobs", "list jobs")
    jobs.add_argument("--queue")
    jobs.add_argument("--state")
    for name, text in (("job", "show one job"), ("logs", "print a job's logs")):
        client(name, text).add_argument("id", type=int)
    client("cancel", "cancel a job").add_argument("id", type=int)
    client("executors", "list executors seen by heartbeat")
    # Parsed by `batch_cli` (main hands them over first); listed here so `--help` shows them.
    batch_help = "src-cli's batch commands: validate, repos, preview, apply, new; and show"
    sub.add_parser("batch", help=batch_help, add_help=False)
    sub.add_parser("secret", help="executor secrets (secret set|list)", add_help=False)
    return parser


def _serve(args: argparse.Namespace, console: Console) -> int:
    from executor.sandbox.server import serve
    from executor.sandbox.state import SandboxSettings

    token = _token(args)
    if not token:
        console.print(
            "[red]refusing to start without a token[/]: pass --token or set SANDBOX_TOKEN"
        )
        return 2
    if args.host not in _LOOPBACK:
        console.print(f"[yellow]warning:[/] serving on {args.host}, not loopback")
    settings = SandboxSettings(
        token=token,
        data_dir=args.data_dir,
        stalled_max_age=args.stalled_max_age,
        resetter_interval=args.resetter_interval,
        faults=args.faults,
        native_server_side_execution=args.native_server_side_execution,
        batcheshelper_image=args.batcheshelper_image,
    )
    console.print(f"sandbox on http://{args.host}:{args.port}, data in {args.data_dir}")
    serve(settings, args.host, args.port, log_level=args.log_level)
    return 0


def _call(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    token = _token(args)
    if not token:
        raise CliError("no token: pass --token or set SANDBOX_TOKEN")
    try:
        response = httpx.request(
            method,
            args.url.rstrip("/") + path,
            headers={"Authorization": f"token-executor {token}"},
            timeout=60.0,
            **kwargs,
        )
    except httpx.TransportError as err:
        raise CliError(f"cannot reach the sandbox at {args.url}: {err}") from err
    if response.status_code >= 400:
        detail = response.text.strip() or "(no body)"
        raise CliError(f"{method} {path}: {response.status_code} {detail}")
    return response.json()


def _run_client(args: argparse.Namespace, console: Console) -> int:
    cmd = args.command
    if cmd == "repo" and args.repo_command == "add":
        mode = "register" if args.register else "clone"
        body = {"name": args.name, "path": str(args.path.resolve()), "mode": mode}
        result = _call(args, "POST", "/.sandbox/repos", json=body)
        console.print(f"hosting {result['name']} from {result['path']}")
    elif cmd == "repo":
        table = Table("name", "path")
        for name, path in _call(args, "GET", "/.sandbox/repos").items():
            table.add_row(name, path)
        console.print(table)
    elif cmd == "enqueue":
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        try:
            body = json.loads(text)
        except json.JSONDecodeError as err:
            raise CliError(f"{args.file} is not JSON: {err}") from err
        params = {"queue": args.queue} if args.queue else {}
        result = _call(args, "POST", "/.sandbox/jobs", json=body, params=params)
        console.print(f"enqueued job {result['id']} on queue {result['queue']}")
    elif cmd == "codeintel":
        _codeintel(args, console)
    elif cmd == "jobs":
        params = {k: v for k, v in (("queue", args.queue), ("state", args.state)) if v}
        _print_jobs(console, _call(args, "GET", "/.sandbox/jobs", params=params))
    elif cmd == "job":
        console.print_json(data=_call(args, "GET", f"/.sandbox/jobs/{args.id}"))
    elif cmd == "logs":
        _print_logs(console, _call(args, "GET", f"/.sandbox/jobs/{args.id}"))
    elif cmd == "cancel":
        result = _call(args, "POST", f"/.sandbox/jobs/{args.id}/cancel")
        console.print(f"job {result['id']}: {result['state']}")
    elif cmd == "executors":
        table = Table("hostname", "queues", "os/arch", "executor", "last seen")
        for e in _call(args, "GET", "/.sandbox/executors"):
            arch = f"{e['os']}/{e['architecture']}".strip("/")
            queues = ",".join(e["queue_names"])
            table.add_row(e["hostname"], queues, arch, e["executor_version"], e["last_seen_at"])
        console.print(table)
    return 0


def _codeintel(args: argparse.Namespace, console: Console) -> None:
    if args.codeintel_command == "uploads":
        table = Table("id", "route", "repository", "commit", "root", "indexer", "index", "bytes")
        for u in _call(args, "GET", "/.sandbox/codeintel/uploads"):
            indexer = f"{u['indexer_name']} {u['indexer_version']}".strip()
            row = [u["id"], u["route"], u["repository"], u["commit"][:12], u["root"], indexer]
            table.add_row(*map(str, [*row, u["associated_index_id"], u["size"]]))
        console.print(table)
        return
    body: dict[str, Any] = {"repository": args.repository, "commit": args.commit}
    optional = {
        "indexer": args.indexer,
        "indexerArgs": args.indexer_args,
        "localSteps": args.local_steps,
        "root": args.root,
        "outfile": args.outfile,
        "srcCliImage": args.src_cli_image,
        "frontendURL": args.frontend_url,
    }
    body.update({k: v for k, v in optional.items() if v})
    result = _call(args, "POST", "/.sandbox/codeintel/jobs", json=body)
    console.print(f"enqueued job {result['id']} on queue {result['queue']}")


_STATE_STYLE = {"completed": "green", "failed": "red", "errored": "red", "canceled": "yellow"}


def _print_jobs(console: Console, jobs: list[dict[str, Any]]) -> None:
    table = Table("id", "queue", "state", "repository", "executor", "queued", "failure")
    for job in jobs:
        style = _STATE_STYLE.get(job["state"], "")
        state = f"[{style}]{job['state']}[/]" if style else job["state"]
        table.add_row(
            str(job["id"]),
            job["queue"],
            state,
            job["repository"],
            job["worker_hostname"],
            job["queued_at"] or "",
            job["failure_message"] or "",
        )
    console.print(table)


def _print_logs(console: Console, job: dict[str, Any]) -> None:
    console.print(f"job {job['id']} ({job['queue']}): {job['state']}", highlight=False)
    if job.get("failure_message"):
        console.print(f"failure: {job['failure_message']}", highlight=False, markup=False)
    for entry in job["execution_logs"]:
        exit_code = entry.get("exitCode", "running")
        console.rule(escape(f"{entry['key']} (exit code {exit_code})"))
        if entry.get("command"):
            console.print("$ " + " ".join(entry["command"]), highlight=False, markup=False)
        console.out(entry.get("out", ""), end="", highlight=False)


def main(argv: list[str]) -> int:
    """Run one sandbox subcommand; the exit status."""
    if argv[:1] in (["batch"], ["secret"]) or argv[:2] == ["repo", "add-samples"]:
        from executor.sandbox.batch_cli import main as batch_main  # batch changes

        return batch_main(argv)
    args = _parser().parse_args(argv)
    console = Console()
    if args.command == "serve":
        return _serve(args, console)
    try:
        return _run_client(args, console)
    except CliError as err:
        Console(stderr=True).print(f"[red]error:[/] {escape(str(err))}", highlight=False)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
