"""`executor sandbox batch show|secret|repo add-samples`: batch changes through the admin API.

    batch show ID [--json]
    secret set NAME VALUE        secret list
    repo add-samples

Every other `batch` command (`validate`, `repositories`/`repos`, `preview`, `apply`, `new`)
is src-cli's, with its flags and texts: `executor.sandbox.srccli`. `print_status` prints a
batch spec's workspaces and each changeset spec (repository, branch, title, published, commit
message and author) with its diff, for `show` and for `apply -wait`. `SANDBOX_SECRET_<NAME>`
variables of the shell are sent as the secret NAME by `apply`/`preview`.

URL and token as for every client command (`--url`/`SANDBOX_URL`, `--token`/`SANDBOX_TOKEN`).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax

__all__ = ["BATCH_COMMANDS", "main", "print_status"]

BATCH_COMMANDS = ("batch", "secret", "repo")
_DEFAULT_URL = "http://127.0.0.1:3080"


class _Exit(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="executor sandbox")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("SANDBOX_URL", _DEFAULT_URL))
    common.add_argument("--token", help="site token (default: $SANDBOX_TOKEN)")
    sub = parser.add_subparsers(dest="command", required=True)
    batch = sub.add_parser("batch", help="batch specs").add_subparsers(dest="sub", required=True)
    show = batch.add_parser("show", parents=[common], help="show an applied batch spec")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    secret = sub.add_parser("secret", help="executor secrets").add_subparsers(
        dest="sub", required=True
    )
    set_ = secret.add_parser("set", parents=[common], help="store a secret")
    set_.add_argument("name")
    set_.add_argument("value")
    secret.add_parser("list", parents=[common], help="list secret names")
    repo = sub.add_parser("repo").add_subparsers(dest="sub", required=True)
    repo.add_parser("add-samples", parents=[common], help="generate and host sample repos")
    return parser


def _client(args: argparse.Namespace) -> httpx.Client:
    token = (
        args.token
        or os.environ.get("SANDBOX_TOKEN")
        or os.environ.get("EXECUTOR_FRONTEND_PASSWORD", "")
    )
    if not token:
        raise _Exit("no token: pass --token or set SANDBOX_TOKEN")
    return httpx.Client(
        base_url=args.url.rstrip("/"),
        headers={"Authorization": f"token-executor {token}"},
        timeout=120.0,
    )


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.TransportError as err:
        raise _Exit(f"cannot reach the sandbox at {client.base_url}: {err}") from err
    if response.status_code == 422:
        raise _Exit(response.json().get("error", response.text), 2)
    if response.status_code >= 400:
        try:
            detail = response.json().get("error", response.text)
        except ValueError:
            detail = response.text
        raise _Exit(f"{method} {path}: {response.status_code} {detail}")
    return response.json()


def print_status(console: Console, status: dict[str, Any], *, summary: bool = False) -> None:
    workspaces = status["workspaces"]
    hits = sum(1 for ws in workspaces if ws["cache"] == "hit")
    jobs = sum(1 for ws in workspaces if ws["job_id"] is not None)
    console.print(
        f"batch spec [bold]{escape(status['name'])}[/] (#{status['id']}): "
        f"{len(workspaces)} workspace(s), {jobs} job(s), {hits} fully cached, "
        f"{len(status['changeset_specs'])} changeset spec(s)"
    )
    for ws in workspaces:
        if ws["state"] != "completed":
            where = ws["repository"] + (f" ({ws['path']})" if ws["path"] else "")
            why = ws.get("failure_message") or ""
            console.print(f"  [red]{ws['state']}[/]: {escape(where)} {escape(why)}")
    if summary:
        return
    ordered = sorted(
        status["changeset_specs"], key=lambda i: (i["repository"], i["spec"]["headRef"])
    )
    for item in ordered:
        spec = item["spec"]
        commit = spec["commits"][0]
        diff = base64.b64decode(commit["diff"]).decode("utf-8", "replace")
        head = spec["headRef"].removeprefix("refs/heads/")
        lines = [
            f"[bold]{escape(spec.get('title', ''))}[/]",
            f"repository  {escape(item['repository'])}",
            f"branch      {escape(head)} (base {escape(spec['baseRef'])} @ {spec['baseRev'][:12]})",
            f"published   {json.dumps(spec.get('published'))}",
            f"commit      {escape(commit.get('message', ''))}",
            f"author      {escape(commit['authorName'])} <{escape(commit['authorEmail'])}>",
        ]
        if spec.get("body"):
            lines.append(f"body        {escape(spec['body'])}")
        console.print(Panel("\n".join(lines), title=f"changeset spec #{item['id']}", expand=False))
        console.print(Syntax(diff, "diff", theme="ansi_dark", word_wrap=True))


def _run(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        if args.command == "batch":
            status = _call(client, "GET", f"/.sandbox/batches/{args.id}")
            if args.json:
                print(json.dumps(status, indent=2))
            else:
                print_status(console, status)
        elif args.command == "secret" and args.sub == "set":
            _call(client, "PUT", f"/.sandbox/secrets/{args.name}", json={"value": args.value})
            console.print(f"secret {escape(args.name)} stored")
        elif args.command == "secret":
            for name in _call(client, "GET", "/.sandbox/secrets"):
                console.print(name, highlight=False)
        else:
            for name, path in _call(client, "POST", "/.sandbox/repos/samples").items():
                console.print(f"hosting {escape(name)} from {escape(path)}", highlight=False)
    return 0


def main(argv: list[str]) -> int:
    """Run one batch/secret/sample subcommand; the exit status."""
    if argv[:1] == ["batch"] and argv[1:2] != ["show"]:
        from executor.sandbox.srccli import main as srccli_main  # src-cli's batch commands

        return srccli_main(argv[1:])
    args = _parser().parse_args(argv)
    console = Console()
    try:
        return _run(args, console)
    except _Exit as err:
        Console(stderr=True).print(f"[red]error:[/] {escape(str(err))}", highlight=False)
        return err.code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
