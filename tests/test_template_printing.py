"""Go `%v` printing and `printf` verbs (Go `fmt_test.go`, strconv
`ftoa_test.go`)."""

from __future__ import annotations

import pytest

from executor.batch.template import FileMatchPathList, StrList
from executor.batch.template.printf import sprintf
from executor.batch.template.printing import format_float, format_value, sprint, sprintln
from executor.batch.template.values import NO_VALUE


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (1.0, "1"),
        (2.5, "2.5"),
        (3.5, "3.5"),
        (100000.0, "100000"),
        (123456.0, "123456"),
        (999999.0, "999999"),
        (1000000.0, "1e+06"),
        (2000000.0, "2e+06"),
        (1234567.0, "1.234567e+06"),
        (1e20, "1e+20"),
        (1e21, "1e+21"),
        (1e23, "1e+23"),
        (1e100, "1e+100"),
        (0.0001, "0.0001"),
        (0.000123, "0.000123"),
        (0.00001, "1e-05"),
        (-0.0, "-0"),
        (0.0, "0"),
        (-2.5, "-2.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
        (float("nan"), "NaN"),
    ],
)
def test_format_float(value: float, want: str) -> None:
    assert format_float(value) == want


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (None, "<nil>"),
        (True, "true"),
        (-7, "-7"),
        (1 + 2j, "(1+2i)"),
        (16.2 - 17j, "(16.2-17i)"),
        ([], "[]"),
        (StrList([""]), "[]"),
        ([1, [2, 3]], "[1 [2 3]]"),
        ([None, "x"], "[<nil> x]"),
        ({}, "map[]"),
        ({"k": None}, "map[k:<nil>]"),
        ({"b": 1, "a": 2, "B": 3, "_": 4, "10": 5, "9": 6}, "map[10:5 9:6 B:3 _:4 a:2 b:1]"),
        ({"m": FileMatchPathList(["a", "b"])}, "map[m:a b]"),
        (FileMatchPathList([]), ""),
        ([1, "hello", 2.5, None], "[1 hello 2.5 <nil>]"),
    ],
)
def test_format_value(value: object, want: str) -> None:
    assert format_value(value) == want


def test_no_value_prints_differently_at_top_level() -> None:
    assert format_value(NO_VALUE, top=True) == "<no value>"
    assert format_value(NO_VALUE) == "<nil>"


def test_sprint_spacing() -> None:
    assert sprint(["a", 1, "b"]) == "a1b"
    assert sprint([1, 2]) == "1 2"
    assert sprint([1, "a", 2]) == "1a2"
    assert sprint([]) == ""
    assert sprintln(["a", 1]) == "a 1\n"
    assert sprintln([]) == "\n"


@pytest.mark.parametrize(
    ("fmt", "args", "want"),
    [
        ("%d", [42], "42"),
        ("%5d|%-5d|%05d", [42, 42, 42], "   42|42   |00042"),
        ("%+d % d", [5, 5], "+5  5"),
        ("%x %X %#x %o %#o %O %b", [255, 255, 255, 8, 8, 8, 5], "ff FF 0xff 10 010 0o10 101"),
        ("%04x", [127], "007f"),
        ("%c %q %U %#U", [65, 97, 0x1F600, 65], "A 'a' U+1F600 U+0041 'A'"),
        ("%s|%10s|%-10s|%.2s", ["hi", "hi", "hi", "hello"], "hi|        hi|hi        |he"),
        ("%q %+q %#q", ["héllo\n", "é", "raw"], '"héllo\\n" "\\u00e9" `raw`'),
        ("%x %X", ["hi", "hi"], "6869 6869"),
        ("%t %v", [True, False], "true false"),
        (
            "%v %g %e %f %.2f",
            [2.5, 1e6, 1234.5678, 3.0, 3.14159],
            "2.5 1e+06 1.234568e+03 3.000000 3.14",
        ),
        ("%E %G %.3g", [1234.5678, 1e-7, 1234.5678], "1.234568E+03 1E-07 1.23e+03"),
        ("%v %s %d", [[1, 2], StrList(["a", "b"]), [1, 2]], "[1 2] [a b] [1 2]"),
        ("%q", [StrList(["a", "b"])], '["a" "b"]'),
        ("%v", [{"b": 1, "a": 2}], "map[a:2 b:1]"),
        ("%s", [FileMatchPathList(["a", "b"])], "a b"),
        (
            "%T %T %T %T %T",
            [1, 1.0, "s", [1], {"a": 1}],
            "int float64 string []interface {} map[string]interface {}",
        ),
        ("%T %T", [StrList(), None], "[]string <nil>"),
        ("%d", ["x"], "%!d(string=x)"),
        ("%s", [1], "%!s(int=1)"),
        ("%d", [1.5], "%!d(float64=1.5)"),
        ("%z", [1], "%!z(int=1)"),
        ("%d", [None], "%!d(<nil>)"),
        ("%v", [None], "<nil>"),
        ("%s", [], "%!s(MISSING)"),
        ("%d", [1, 2, "x"], "1%!(EXTRA int=2, string=x)"),
        ("abc%", [], "abc%!(NOVERB)"),
        ("100%%", [], "100%"),
        ("%*d|%-*d", [4, 7, 3, 7], "   7|7  "),
        ("%.*f", [2, 3.14159], "3.14"),
        ("%d %s", [[1, "a"], [None]], "[1 %!d(string=a)] [<nil>]"),
        ("%v", [1 + 2j], "(1+2i)"),
        ("%.1f", [1 + 2j], "(1.0+2.0i)"),
    ],
)
def test_sprintf(fmt: str, args: list[object], want: str) -> None:
    assert sprintf(fmt, args) == want
