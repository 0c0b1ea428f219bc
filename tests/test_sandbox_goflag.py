"""`executor.sandbox.goflag`: Go's `flag` package rules, as src-cli's commands see them."""

from __future__ import annotations

import io

import pytest

from executor.sandbox.goflag import FlagExit, FlagSet, go_duration


def _set() -> tuple[FlagSet, io.StringIO]:
    err = io.StringIO()
    fs = FlagSet("demo", stderr=err)
    fs.add("string", "f", "", "The file.")
    fs.add("string", "namespace", "", "The namespace.")
    fs.add("string", "n", "", "Alias for -namespace.", dest="namespace")
    fs.add("bool", "skip-errors", False, "Skip errors.")
    fs.add("bool", "clean-archives", True, "Clean.")
    fs.add("int", "j", 0, "Jobs.")
    fs.add("duration", "timeout", 3600.0, "Per step.")
    return fs, err


def test_forms_of_a_flag() -> None:
    fs, _ = _set()
    opts, args = fs.parse(["-f", "a.yaml", "--n=org", "-skip-errors", "-clean-archives=false"])
    assert (opts["f"], opts["namespace"], opts["skip-errors"], opts["clean-archives"]) == (
        "a.yaml", "org", True, False,
    )  # fmt: skip
    assert args == []
    opts, args = fs.parse(["--f=b.yaml", "-j", "0x10", "-timeout", "1m30s", "spec.yaml"])
    assert (opts["f"], opts["j"], opts["timeout"], args) == ("b.yaml", 16, 90.0, ["spec.yaml"])


def test_positional_arguments_and_the_double_dash() -> None:
    fs, _ = _set()
    opts, args = fs.parse(["spec.yaml", "-skip-errors"])  # ours: flags after FILE still parse
    assert args == ["spec.yaml"] and opts["skip-errors"] is True
    opts, args = fs.parse(["-", "--", "-skip-errors"])
    assert args == ["-", "-skip-errors"] and opts["skip-errors"] is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-nope"], "flag provided but not defined: -nope"),
        (["-f"], "flag needs an argument: -f"),
        (["---f", "x"], "bad flag syntax: ---f"),
        (["-=x"], "bad flag syntax: -=x"),
        (["-skip-errors=yes"], 'invalid boolean value "yes" for -skip-errors: parse error'),
        (["-j", "many"], 'invalid value "many" for flag -j: parse error'),
        (["-timeout", "5"], 'invalid value "5" for flag -timeout: parse error'),
    ],
)
def test_errors_print_one_line_and_the_usage_and_exit_2(argv: list[str], message: str) -> None:
    fs, err = _set()
    with pytest.raises(FlagExit) as exit_:
        fs.parse(argv)
    assert exit_.value.code == 2
    first, rest = err.getvalue().split("\n", 1)
    assert first == message and rest.startswith("Usage of demo:\n")


def test_help_and_the_defaults_as_go_prints_them() -> None:
    fs, err = _set()
    with pytest.raises(FlagExit) as exit_:
        fs.parse(["-h"])
    assert exit_.value.code == 0
    assert err.getvalue() == (
        "Usage of demo:\n"
        "  -clean-archives\n    \tClean. (default true)\n"
        "  -f string\n    \tThe file.\n"
        "  -j int\n    \tJobs.\n"
        "  -n string\n    \tAlias for -namespace.\n"
        "  -namespace string\n    \tThe namespace.\n"
        "  -skip-errors\n    \tSkip errors.\n"
        "  -timeout duration\n    \tPer step. (default 1h0m0s)\n"
    )


def test_go_duration_strings() -> None:
    assert [go_duration(s) for s in (0, 5, 90, 3600, 3725)] == [
        "0s",
        "5s",
        "1m30s",
        "1h0m0s",
        "1h2m5s",
    ]
