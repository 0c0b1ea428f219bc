"""The command line: `executor run | validate | batch exec | batch helper | sandbox …`.

Parses arguments, loads the settings once and calls the composition root (`executor.run`).
Exit codes: 0 after a clean stop or drain, 1 on a runtime failure (or a signal while still
connecting, as Sourcegraph does), 2 on bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping

import structlog

from executor import __version__
from executor.config.settings import Settings, help_text, load_settings, no_effect
from executor.errors import ApiError, ConfigError

__all__ = ["main"]

log = structlog.get_logger("executor.cli")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `executor` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["sandbox"]:
        from executor.sandbox.cli import main as sandbox_main

        sys.exit(sandbox_main(args[1:]))
    if args[:2] == ["batch", "helper"]:
        from executor.batch.cli import helper_main

        sys.exit(helper_main(args[2:], os.environ))
    if args[:2] == ["batch", "exec"]:
        from executor.batch.cli import (  # type: ignore[import-not-found,unused-ignore]
            main as batch_main,
        )

        sys.exit(batch_main(args[2:], os.environ))
    parser = _parser()
    ns = parser.parse_args(args or ["run"])
    if ns.version:
        from executor.run.host import WIRE_VERSION

        print(f"executor {__version__} (wire version {WIRE_VERSION})")
        return
    if ns.command == "validate":
        sys.exit(_validate(os.environ, config_only=ns.config_only))
    sys.exit(_run(os.environ))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="executor",
        description="Runs Sourcegraph executor jobs (batch changes, code intel) in Docker.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser(
        "run",
        help="run the daemon (default)",
        description="Poll the frontend for jobs and run them. Configured by the environment.",
        epilog=help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate = sub.add_parser("validate", help="check config, git, Docker and the frontend")
    validate.add_argument(
        "--config-only", action="store_true", help="only validate the environment variables"
    )
    sub.add_parser("sandbox", help="the reference frontend (see `executor sandbox --help`)")
    sub.add_parser(
        "batch", help="`executor batch exec …` (the batch spec engine), `batch helper pre|post <i>`"
    )
    parser.set_defaults(command="run")
    return parser


def _load(environ: Mapping[str, str]) -> Settings | None:
    try:
        return load_settings(environ)
    except ConfigError as err:
        print(f"executor: invalid configuration: {err}", file=sys.stderr)
        return None


def _validate(environ: Mapping[str, str], *, config_only: bool) -> int:
    settings = _load(environ)
    if settings is None:
        return 2
    if config_only:
        for warning in no_effect(environ):
            print(f"⚠ {warning}")
        print("Configuration is valid.")
        return 0
    from executor.run.validate import advisories, validate

    for warning in advisories(settings, environ):
        print(f"⚠ {warning}")
    failures = asyncio.run(validate(settings, environ))
    for failure in failures:
        print(f"✗ {failure}")
    if failures:
        return 1
    print("All checks passed!")
    return 0


def _run(environ: Mapping[str, str]) -> int:
    settings = _load(environ)
    if settings is None:
        return 2
    from executor.logsetup import add_secret, configure_logging
    from executor.run.serve import serve

    configure_logging(settings.log_format)
    add_secret(settings.token)
    try:
        return asyncio.run(serve(settings, environ))
    except ApiError as err:
        log.error("executor stopped", error=str(err))
        return 1
