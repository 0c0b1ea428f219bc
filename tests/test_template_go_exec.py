"""Cases ported from Go's `text/template/exec_test.go` (golang/go, src/text/template).

Go's fixture struct `tVal` becomes a dict (its fields are map keys), so cases that need Go
methods, pointers, channels or unsigned ints are left out. Go runs these with the default
`missingkey` option, so these tests do too.
"""

from __future__ import annotations

import re

import pytest

from executor.batch.template import GoFunc, StrList, Template, TemplateError
from executor.batch.template.gofunc import ANY
from executor.batch.template.printf import sprintf

T_VAL: dict[str, object] = {
    "True": True,
    "I": 17,
    "U16": 16,
    "X": "x",
    "FloatZero": 0.0,
    "ComplexZero": 0j,
    "U": {"V": "v"},
    "MSI": {"one": 1, "two": 2, "three": 3},
    "MSIone": {"one": 1},
    "MSIEmpty": {},
    "MXI": {"one": 1},
    "SMSI": [{"one": 1, "two": 2}, {"eleven": 11, "twelve": 12}],
    "SI": [3, 4, 5],
    "SIEmpty": [],
    "SB": [True, False],
    "Empty0": None,
    "Empty1": 3,
    "Empty2": "empty2",
    "Empty3": [7, 8],
    "Empty4": {"V": "UinEmpty"},
    "PSI": [21, 22, 23],
    "PS": "a string",
    "NegOne": -1,
    "Three": 3,
}

FUNCS: dict[str, GoFunc] = {
    "add": GoFunc(lambda *a: sum(a), (), "int"),
    "echo": GoFunc(lambda x: x, (ANY,)),
    "makemap": GoFunc(lambda *a: dict(zip(a[::2], a[1::2], strict=True)), (), "string"),
    "mapOfThree": GoFunc(lambda: {"three": 3}),
    "oneArg": GoFunc(lambda a: "oneArg=" + a, ("string",)),
    "twoArgs": GoFunc(lambda a, b: "twoArgs=" + a + b, ("string", "string")),
    "dddArg": GoFunc(lambda a, *b: f"{a} {b}", ("int",), "string"),
    "returnInt": GoFunc(lambda: 7),
    "typeOf": GoFunc(lambda x: sprintf("%T", [x]), (ANY,)),
    "valueString": GoFunc(lambda v: "value is ignored", ("string",)),
    "zeroArgs": GoFunc(lambda: "zeroArgs"),
}


def run(template: str, data: object = None, *, delims: tuple[str, str] = ("{{", "}}")) -> str:
    return Template(
        "t", template, delims=delims, funcs=FUNCS, helpers=False, missingkey="default"
    ).execute(data)


EXEC_OK: list[tuple[str, str, object, str]] = [
    ("empty", "", None, ""),
    ("text", "some text", None, "some text"),
    ("ideal int", "{{typeOf 3}}", 0, "int"),
    ("ideal float", "{{typeOf 1.0}}", 0, "float64"),
    ("ideal exp float", "{{typeOf 1e1}}", 0, "float64"),
    ("ideal complex", "{{typeOf 1i}}", 0, "complex128"),
    ("ideal int max", "{{typeOf 0x7fffffffffffffff}}", 0, "int"),
    (".X", "-{{.X}}-", T_VAL, "-x-"),
    (".U.V", "-{{.U.V}}-", T_VAL, "-v-"),
    ("map .one", "{{.MSI.one}}", T_VAL, "1"),
    ("map .two", "{{.MSI.two}}", T_VAL, "2"),
    ("map .NO", "{{.MSI.NO}}", T_VAL, "<no value>"),
    ("map .one interface", "{{.MXI.one}}", T_VAL, "1"),
    ("dot int", "<{{.}}>", 13, "<13>"),
    ("dot float", "<{{.}}>", 15.1, "<15.1>"),
    ("dot bool", "<{{.}}>", True, "<true>"),
    ("dot complex", "<{{.}}>", 16.2 - 17j, "<(16.2-17i)>"),
    ("dot string", "<{{.}}>", "hello", "<hello>"),
    ("dot slice", "<{{.}}>", [-1, -2, -3], "<[-1 -2 -3]>"),
    ("dot map", "<{{.}}>", {"two": 22}, "<map[two:22]>"),
    ("$ int", "{{$}}", 123, "123"),
    ("$.I", "{{$.I}}", T_VAL, "17"),
    ("$.U.V", "{{$.U.V}}", T_VAL, "v"),
    ("declare in action", "{{$x := $.U.V}}{{$x}}", T_VAL, "v"),
    ("*string", "{{.PS}}", T_VAL, "a string"),
    ("*[]int", "{{.PSI}}", T_VAL, "[21 22 23]"),
    ("*[]int[1]", "{{index .PSI 1}}", T_VAL, "22"),
    ("empty nil", "{{.Empty0}}", T_VAL, "<no value>"),
    ("empty with int", "{{.Empty1}}", T_VAL, "3"),
    ("empty with string", "{{.Empty2}}", T_VAL, "empty2"),
    ("empty with slice", "{{.Empty3}}", T_VAL, "[7 8]"),
    ("empty with struct, field", "{{.Empty4.V}}", T_VAL, "UinEmpty"),
    ("pipeline func", "{{`llo` | printf `%s%s` `he`}}", T_VAL, "hello"),
    (
        "parens in pipeline",
        "{{printf `%d %d %d` (1) (2 | add 3) (add 4 (add 5 6))}}",
        T_VAL,
        "1 5 15",
    ),
    ("parens: $ in paren", "{{($).X}}", T_VAL, "x"),
    ("parens: $ in paren in pipe", "{{($ | echo).X}}", T_VAL, "x"),
    ("parens: spaces and args", '{{(makemap "up" "down" "left" "right").left}}', T_VAL, "right"),
    ("if true", "{{if true}}TRUE{{end}}", T_VAL, "TRUE"),
    ("if false", "{{if false}}TRUE{{else}}FALSE{{end}}", T_VAL, "FALSE"),
    ("if 1", "{{if 1}}NON-ZERO{{else}}ZERO{{end}}", T_VAL, "NON-ZERO"),
    ("if 0", "{{if 0}}NON-ZERO{{else}}ZERO{{end}}", T_VAL, "ZERO"),
    ("if 1.5", "{{if 1.5}}NON-ZERO{{else}}ZERO{{end}}", T_VAL, "NON-ZERO"),
    ("if 0.0", "{{if .FloatZero}}NON-ZERO{{else}}ZERO{{end}}", T_VAL, "ZERO"),
    ("if 1.5i", "{{if 1.5i}}NON-ZERO{{else}}ZERO{{end}}", T_VAL, "NON-ZERO"),
    ("if 0.0i", "{{if .ComplexZero}}NON-ZERO{{else}}ZERO{{end}}", T_VAL, "ZERO"),
    ("if emptystring", "{{if ``}}NON-EMPTY{{else}}EMPTY{{end}}", T_VAL, "EMPTY"),
    ("if string", "{{if `notempty`}}NON-EMPTY{{else}}EMPTY{{end}}", T_VAL, "NON-EMPTY"),
    ("if emptyslice", "{{if .SIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", T_VAL, "EMPTY"),
    ("if slice", "{{if .SI}}NON-EMPTY{{else}}EMPTY{{end}}", T_VAL, "NON-EMPTY"),
    ("if emptymap", "{{if .MSIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", T_VAL, "EMPTY"),
    ("if map", "{{if .MSI}}NON-EMPTY{{else}}EMPTY{{end}}", T_VAL, "NON-EMPTY"),
    ("if map unset", "{{if .MXI.none}}NON-ZERO{{else}}ZERO{{end}}", T_VAL, "ZERO"),
    ("if map not unset", "{{if not .MXI.none}}ZERO{{else}}NON-ZERO{{end}}", T_VAL, "ZERO"),
    (
        "if $x with $y int",
        "{{if $x := true}}{{with $y := .I}}{{$x}},{{$y}}{{end}}{{end}}",
        T_VAL,
        "true,17",
    ),
    (
        "if $x with $x int",
        "{{if $x := true}}{{with $x := .I}}{{$x}},{{end}}{{$x}}{{end}}",
        T_VAL,
        "17,true",
    ),
    ("if else if", "{{if false}}FALSE{{else if true}}TRUE{{end}}", T_VAL, "TRUE"),
    (
        "if else chain",
        "{{if eq 1 3}}1{{else if eq 2 3}}2{{else if eq 3 3}}3{{end}}",
        T_VAL,
        "3",
    ),
    ("print", '{{print "hello, print"}}', T_VAL, "hello, print"),
    ("print 123", "{{print 1 2 3}}", T_VAL, "1 2 3"),
    ("print nil", "{{print nil}}", T_VAL, "<nil>"),
    ("println", "{{println 1 2 3}}", T_VAL, "1 2 3\n"),
    ("printf int", '{{printf "%04x" 127}}', T_VAL, "007f"),
    ("printf float", '{{printf "%g" 3.5}}', T_VAL, "3.5"),
    ("printf complex", '{{printf "%g" 1+7i}}', T_VAL, "(1+7i)"),
    ("printf string", '{{printf "%s" "hello"}}', T_VAL, "hello"),
    ("printf function", '{{printf "%#q" zeroArgs}}', T_VAL, "`zeroArgs`"),
    ("printf field", '{{printf "%s" .U.V}}', T_VAL, "v"),
    ("printf dot", '{{with .I}}{{printf "%d" .}}{{end}}', T_VAL, "17"),
    ("printf var", '{{with $x := .I}}{{printf "%d" $x}}{{end}}', T_VAL, "17"),
    ("printf lots", '{{printf "%d %s %g" 127 "hello" 7-3i}}', T_VAL, "127 hello (7-3i)"),
    (
        "html",
        '{{html "<script>alert(\\"XSS\\");</script>"}}',
        None,
        "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;",
    ),
    (
        "html pipeline",
        '{{printf "<script>alert(\\"XSS\\");</script>" | html}}',
        None,
        "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;",
    ),
    ("html untyped nil", "{{html .Empty0}}", T_VAL, "&lt;no value&gt;"),
    ("html", "{{html .PS}}", T_VAL, "a string"),
    ("js", "{{js .}}", "It'd be nice.", "It\\'d be nice."),
    ("urlquery", '{{"http://www.example.org/"|urlquery}}', None, "http%3A%2F%2Fwww.example.org%2F"),
    ("not", "{{not true}} {{not false}}", None, "false true"),
    ("and", "{{and false 0}} {{and 1 0}} {{and 0 true}} {{and 1 1}}", None, "false 0 0 1"),
    ("or", "{{or 0 0}} {{or 1 0}} {{or 0 true}} {{or 1 1}}", None, "0 1 true 1"),
    ("or short-circuit", "{{or 0 1 (die)}}", None, "1"),
    ("and short-circuit", "{{and 1 0 (die)}}", None, "0"),
    ("and pipe-true", "{{1 | and 1}}", None, "1"),
    ("and pipe-false", "{{0 | and 1}}", None, "0"),
    ("or pipe-true", "{{1 | or 0}}", None, "1"),
    ("or pipe-false", "{{0 | or 0}}", None, "0"),
    ("boolean if", "{{if and true 1 `hi`}}TRUE{{else}}FALSE{{end}}", T_VAL, "TRUE"),
    ("boolean if not", "{{if and true 1 `hi` | not}}TRUE{{else}}FALSE{{end}}", None, "FALSE"),
    ("slice[0]", "{{index .SI 0}}", T_VAL, "3"),
    ("slice[1]", "{{index .SI 1}}", T_VAL, "4"),
    ("map[one]", "{{index .MSI `one`}}", T_VAL, "1"),
    ("map[two]", "{{index .MSI `two`}}", T_VAL, "2"),
    ("map[NO]", "{{index .MSI `XXX`}}", T_VAL, "<no value>"),
    ("map[``]", "{{index .MSI ``}}", T_VAL, "<no value>"),
    ("double index", "{{index .SMSI 1 `eleven`}}", T_VAL, "11"),
    ("string[1]", "{{index `abc` 1}}", None, "98"),
    ("slice[:]", "{{slice .SI}}", T_VAL, "[3 4 5]"),
    ("slice[1:]", "{{slice .SI 1}}", T_VAL, "[4 5]"),
    ("slice[1:2]", "{{slice .SI 1 2}}", T_VAL, "[4]"),
    ("slice[1:2:3]", "{{slice .SI 1 2 3}}", T_VAL, "[4]"),
    ("string[:]", "{{slice `abc`}}", None, "abc"),
    ("string[1:]", "{{slice `abc` 1}}", None, "bc"),
    ("string[1:2]", "{{slice `abc` 1 2}}", None, "b"),
    ("len slice", "{{len .SI}}", T_VAL, "3"),
    ("len map", "{{len .MSI }}", T_VAL, "3"),
    ("with true", "{{with true}}{{.}}{{end}}", T_VAL, "true"),
    ("with false", "{{with false}}{{.}}{{else}}FALSE{{end}}", T_VAL, "FALSE"),
    ("with 1", "{{with 1}}{{.}}{{else}}ZERO{{end}}", T_VAL, "1"),
    ("with 0", "{{with 0}}{{.}}{{else}}ZERO{{end}}", T_VAL, "ZERO"),
    ("with 1.5", "{{with 1.5}}{{.}}{{else}}ZERO{{end}}", T_VAL, "1.5"),
    ("with 0.0", "{{with .FloatZero}}{{.}}{{else}}ZERO{{end}}", T_VAL, "ZERO"),
    ("with 1.5i", "{{with 1.5i}}{{.}}{{else}}ZERO{{end}}", T_VAL, "(0+1.5i)"),
    ("with 0.0i", "{{with .ComplexZero}}{{.}}{{else}}ZERO{{end}}", T_VAL, "ZERO"),
    ("with emptystring", "{{with ``}}{{.}}{{else}}EMPTY{{end}}", T_VAL, "EMPTY"),
    ("with string", "{{with `notempty`}}{{.}}{{else}}EMPTY{{end}}", T_VAL, "notempty"),
    ("with emptyslice", "{{with .SIEmpty}}{{.}}{{else}}EMPTY{{end}}", T_VAL, "EMPTY"),
    ("with slice", "{{with .SI}}{{.}}{{else}}EMPTY{{end}}", T_VAL, "[3 4 5]"),
    ("with emptymap", "{{with .MSIEmpty}}{{.}}{{else}}EMPTY{{end}}", T_VAL, "EMPTY"),
    ("with map", "{{with .MSIone}}{{.}}{{else}}EMPTY{{end}}", T_VAL, "map[one:1]"),
    ("with empty interface, struct field", "{{with .Empty4}}{{.V}}{{end}}", T_VAL, "UinEmpty"),
    ("with $x int", "{{with $x := .I}}{{$x}}{{end}}", T_VAL, "17"),
    ("with $x struct.U.V", "{{with $x := $}}{{$x.U.V}}{{end}}", T_VAL, "v"),
    ("with variable and action", "{{with $x := $}}{{$y := $.U.V}}{{$y}}{{end}}", T_VAL, "v"),
    ("with on typed nil interface value", "{{with .Empty0}}X{{else}}nil{{end}}", T_VAL, "nil"),
    ("with else with", "{{with 0}}{{.}}{{else with true}}{{.}}{{end}}", T_VAL, "true"),
    (
        "with else with chain",
        "{{with 0}}{{.}}{{else with false}}{{.}}{{else with `notempty`}}{{.}}{{end}}",
        T_VAL,
        "notempty",
    ),
    ("range []int", "{{range .SI}}-{{.}}-{{end}}", T_VAL, "-3--4--5-"),
    ("range empty no else", "{{range .SIEmpty}}-{{.}}-{{end}}", T_VAL, ""),
    ("range []int else", "{{range .SI}}-{{.}}-{{else}}EMPTY{{end}}", T_VAL, "-3--4--5-"),
    ("range empty else", "{{range .SIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", T_VAL, "EMPTY"),
    (
        "range []int break else",
        "{{range .SI}}-{{.}}-{{break}}NOTREACHED{{else}}EMPTY{{end}}",
        T_VAL,
        "-3-",
    ),
    (
        "range []int continue else",
        "{{range .SI}}-{{.}}-{{continue}}NOTREACHED{{else}}EMPTY{{end}}",
        T_VAL,
        "-3--4--5-",
    ),
    ("range []bool", "{{range .SB}}-{{.}}-{{end}}", T_VAL, "-true--false-"),
    ("range map", "{{range .MSI}}-{{.}}-{{end}}", T_VAL, "-1--3--2-"),
    ("range empty map no else", "{{range .MSIEmpty}}-{{.}}-{{end}}", T_VAL, ""),
    ("range map else", "{{range .MSI}}-{{.}}-{{else}}EMPTY{{end}}", T_VAL, "-1--3--2-"),
    ("range empty map else", "{{range .MSIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", T_VAL, "EMPTY"),
    ("range empty interface", "{{range .Empty3}}-{{.}}-{{else}}EMPTY{{end}}", T_VAL, "-7--8-"),
    ("range empty nil", "{{range .Empty0}}-{{.}}-{{end}}", T_VAL, ""),
    ("range $x SI", "{{range $x := .SI}}<{{$x}}>{{end}}", T_VAL, "<3><4><5>"),
    ("range $x $y SI", "{{range $x, $y := .SI}}<{{$x}}={{$y}}>{{end}}", T_VAL, "<0=3><1=4><2=5>"),
    ("range $x MSIone", "{{range $x := .MSIone}}<{{$x}}>{{end}}", T_VAL, "<1>"),
    ("range $x $y MSIone", "{{range $x, $y := .MSIone}}<{{$x}}={{$y}}>{{end}}", T_VAL, "<one=1>"),
    ("range $x PSI", "{{range $x := .PSI}}<{{$x}}>{{end}}", T_VAL, "<21><22><23>"),
    ("declare in range", "{{range $x := .PSI}}<{{$foo:=$x}}{{$x}}>{{end}}", T_VAL, "<21><22><23>"),
    ("range 5", "{{range $v := 5}}{{$v}}{{end}}", None, "01234"),
    ("range 0 else", "{{range 0}}x{{else}}empty{{end}}", None, "empty"),
    (
        "issue60801",
        "{{$k := 0}}{{$v := 0}}{{range $k, $v = .}}{{$k}}={{$v}} {{end}}",
        [3, 4, 5],
        "0=3 1=4 2=5 ",
    ),
    ("or as if true", '{{or .SI "slice is empty"}}', T_VAL, "[3 4 5]"),
    ("or as if false", '{{or .SIEmpty "slice is empty"}}', T_VAL, "slice is empty"),
    ("bug4", "{{if .Empty0}}non-nil{{else}}nil{{end}}", T_VAL, "nil"),
    ("bug9", "{{.cause}}", {"cause": "neglect"}, "neglect"),
    ("bug10", "{{mapOfThree.three}}-{{(mapOfThree).three}}", 0, "3-3"),
    ("bug12xe", "{{printf `%T` 0xef}}", 0, "int"),
    ("bug12xE", "{{printf `%T` 0xEE}}", 0, "int"),
    ("bug12Xe", "{{printf `%T` 0Xef}}", 0, "int"),
    ("bug12XE", "{{printf `%T` 0XEE}}", 0, "int"),
    ("bug16g", '{{"aaa" |twoArgs "bbb"}}', T_VAL, "twoArgs=bbbaaa"),
    ("bug16i", '{{"aaa"|oneArg}}', T_VAL, "oneArg=aaa"),
    ("bug16j", '{{1+2i|printf "%v"}}', T_VAL, "(1+2i)"),
    ("bug16k", '{{"aaa"|printf }}', T_VAL, "aaa"),
    ("bug18a", "{{eq . '.'}}", ord("."), "true"),
    ("bug18b", "{{eq . 'e'}}", ord("e"), "true"),
    ("bug18c", "{{eq . 'P'}}", ord("P"), "true"),
    ("decimal _", "{{print 1_000}}", None, "1000"),
    ("hex", "{{print 0x1F}}", None, "31"),
    ("octal0", "{{print 017}}", None, "15"),
    ("octal0o", "{{print 0o17}}", None, "15"),
    ("binary", "{{print 0b101}}", None, "5"),
    ("hex float", "{{print 0x1p-2}}", None, "0.25"),
    ("StrList ok for []string", "{{join . `,`}}", StrList(["a", "b"]), "a,b"),
]


@pytest.mark.parametrize(("name", "template", "data", "want"), EXEC_OK)
def test_exec(name: str, template: str, data: object, want: str) -> None:
    if name == "StrList ok for []string":
        out = Template("t", template, delims=("{{", "}}")).execute(data)
    else:
        out = run(template, data)
    assert out == want, name


EXEC_ERR: list[tuple[str, str, object, str]] = [
    ("nil action", "{{nil}}", None, "nil is not a command"),
    ("ideal too big", "{{typeOf 0x8000000000000000}}", 0, "overflows int"),
    ("map .WRONG args", "{{.MSI.one 1}}", T_VAL, "one is not a method but has arguments"),
    ("if nil", "{{if nil}}TRUE{{end}}", T_VAL, "nil is not a command"),
    ("slice[HUGE]", "{{index .SI 10}}", T_VAL, "index out of range: 10"),
    ("slice[WRONG]", "{{index .SI `hello`}}", T_VAL, "cannot index slice/array with type string"),
    ("slice[nil]", "{{index .SI nil}}", T_VAL, "cannot index slice/array with nil"),
    ("map[WRONG]", "{{index .MSI 10}}", T_VAL, "value has type int; should be string"),
    ("nil[1]", "{{index nil 1}}", T_VAL, "index of untyped nil"),
    ("slice[2:1]", "{{slice .SI 2 1}}", T_VAL, "invalid slice index: 2 > 1"),
    ("slice 3-index string", "{{slice `abc` 1 2 3}}", None, "cannot 3-index slice a string"),
    ("too many slice indexes", "{{slice .SI 1 2 3 4}}", T_VAL, "too many slice indexes: 4"),
    ("len of int", "{{len 3}}", T_VAL, "len of type int"),
    ("len of nothing", "{{len .Empty0}}", T_VAL, "len of nil pointer"),
    ("bug7a", "{{3 2}}", T_VAL, "can't give argument to non-function 3"),
    ("bug7b", "{{$x := 1}}{{$x 2}}", T_VAL, "can't give argument to non-function $x"),
    ("bug7c", "{{$x := 1}}{{3 | $x}}", T_VAL, "can't give argument to non-function $x"),
    ("bug8a", "{{3|oneArg}}", T_VAL, "wrong type for value; expected string; got int"),
    ("bug8b", "{{4|dddArg 3}}", T_VAL, "wrong type for value; expected string; got int"),
    ("bug14a", "{{(nil).True}}", T_VAL, "nil is not a command"),
    ("bug14b", "{{$x := nil}}{{$x.anything}}", T_VAL, "nil is not a command"),
    (
        "bug14c",
        '{{$x := (1.0)}}{{$y := ("hello")}}{{$x.anything}}{{$y.true}}',
        T_VAL,
        "can't evaluate field anything in type float64",
    ),
    ("bug15", "{{valueString returnInt}}", T_VAL, "wrong type for value; expected string; got int"),
    ("bug16a", "{{true|printf}}", T_VAL, "wrong type for value; expected string; got bool"),
    ("bug16b", "{{1|printf}}", T_VAL, "wrong type for value; expected string; got int"),
    ("bug16c", "{{1.1|printf}}", T_VAL, "expected string; got float64"),
    ("bug16d", "{{'x'|printf}}", T_VAL, "expected string; got int"),
    ("bug16e", "{{0i|printf}}", T_VAL, "expected string; got complex128"),
    ("bug16f", '{{true|twoArgs "xxx"}}', T_VAL, "expected string; got bool"),
    ("bug16h", "{{1|oneArg}}", T_VAL, "expected string; got int"),
    ("range 5 two vars", "{{range $i, $v := 5}}{{end}}", None, "can't use 5 to iterate over"),
    ("range string", "{{range `ab`}}{{end}}", None, "range can't iterate over ab"),
    ("undefined assign", "{{$x = 1}}", None, "undefined variable: $x"),
    ("die", "{{die}}", None, "error calling die: die"),
]


@pytest.mark.parametrize(("name", "template", "data", "fragment"), EXEC_ERR)
def test_exec_errors(name: str, template: str, data: object, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        run(template, data)
    assert fragment in str(info.value), name


def _die() -> object:
    raise ValueError("die")


FUNCS["die"] = GoFunc(_die)


@pytest.mark.parametrize(
    ("expr", "truth"),
    [
        ("eq true true", "true"),
        ("eq true false", "false"),
        ("eq 1+2i 1+2i", "true"),
        ("eq 1+2i 1+3i", "false"),
        ("eq 1.5 1.5", "true"),
        ("eq 1.5 2.5", "false"),
        ("eq 1 1", "true"),
        ("eq 1 2", "false"),
        ("eq `xy` `xy`", "true"),
        ("eq `xy` `xyz`", "false"),
        ("eq .Three .Three", "true"),
        ("eq .Three .NegOne", "false"),
        ("eq 3 4 5 6 3", "true"),
        ("eq 3 4 5 6 7", "false"),
        ("ne true true", "false"),
        ("ne true false", "true"),
        ("ne 1+2i 1+2i", "false"),
        ("ne 1+2i 1+3i", "true"),
        ("ne 1.5 1.5", "false"),
        ("ne 1.5 2.5", "true"),
        ("ne 1 1", "false"),
        ("ne 1 2", "true"),
        ("ne `xy` `xy`", "false"),
        ("ne `xy` `xyz`", "true"),
        ("lt 1.5 1.5", "false"),
        ("lt 1.5 2.5", "true"),
        ("lt 1 1", "false"),
        ("lt 1 2", "true"),
        ("lt `xy` `xy`", "false"),
        ("lt `xy` `xyz`", "true"),
        ("lt .NegOne .Three", "true"),
        ("le 1.5 1.5", "true"),
        ("le 1.5 2.5", "true"),
        ("le 2.5 1.5", "false"),
        ("le 1 1", "true"),
        ("le 1 2", "true"),
        ("le 2 1", "false"),
        ("le `xy` `xy`", "true"),
        ("le `xy` `xyz`", "true"),
        ("le `xyz` `xy`", "false"),
        ("gt 1.5 1.5", "false"),
        ("gt 1.5 2.5", "false"),
        ("gt 1 1", "false"),
        ("gt 2 1", "true"),
        ("gt 1 2", "false"),
        ("gt `xy` `xy`", "false"),
        ("gt `xy` `xyz`", "false"),
        ("ge 1.5 1.5", "true"),
        ("ge 1.5 2.5", "false"),
        ("ge 2.5 1.5", "true"),
        ("ge 1 1", "true"),
        ("ge 1 2", "false"),
        ("ge 2 1", "true"),
        ("ge `xy` `xy`", "true"),
        ("ge `xy` `xyz`", "false"),
        ("ge `xyz` `xy`", "true"),
        ("eq (index `x` 0) 'x'", "true"),
        ("eq (index `x` 0) 'y'", "false"),
        ("eq .NIL .NIL", "true"),
        ("eq .Empty0 `x`", "false"),
    ],
)
def test_comparison(expr: str, truth: str) -> None:
    data = dict(T_VAL, NIL=None)
    assert run("{{if " + expr + "}}true{{else}}false{{end}}", data) == truth


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("eq `xy` 1", "incompatible types for comparison: string and int"),
        ("eq 2 2.0", "incompatible types for comparison: int and float64"),
        ("lt true true", "invalid type for comparison"),
        ("lt 1+0i 1+0i", "invalid type for comparison"),
        ("eq .SI .SI", "non-comparable type [3 4 5]: []interface {}"),
        ("eq 1", "missing argument for comparison"),
    ],
)
def test_comparison_errors(expr: str, message: str) -> None:
    with pytest.raises(
        TemplateError, match="error calling (eq|lt): " + message.replace("[", r"\[")
    ):
        run("{{if " + expr + "}}true{{else}}false{{end}}", T_VAL)


@pytest.mark.parametrize(
    ("left", "right"), [("{{", "}}"), ("<<", ">>"), ("|", "|"), ("(日)", "(本)")]
)
def test_delims(left: str, right: str) -> None:
    text = left + ".Str" + right + left + "/*comment*/" + right + left + '"' + left + '"' + right
    assert run(text, {"Str": "Hello, world"}, delims=(left, right)) == "Hello, world" + left


def test_exec_error_in_nested_template() -> None:
    text = (
        'line 1\nline 2\nline 3\n{{template "one" .}}\n{{define "one"}}{{template "two" .}}{{end}}'
        '\n{{define "two"}}{{template "three" .}}{{end}}\n{{define "three"}}{{index "hi" $}}{{end}}'
    )
    with pytest.raises(TemplateError) as info:
        Template("top", text, delims=("{{", "}}")).execute(5)
    assert str(info.value) == (
        'template: top:7:20: executing "three" at <index "hi" $>: '
        "error calling index: index out of range: 5"
    )


def test_missing_map_key_modes() -> None:
    data = {"x": 99}
    for mode, want in (("default", "99 <no value>"), ("invalid", "99 <no value>")):
        assert (
            Template("t1", "{{.x}} {{.y}}", delims=("{{", "}}"), missingkey=mode).execute(data)
            == want
        )
    with pytest.raises(TemplateError, match='map has no entry for key "y"'):
        Template("t1", "{{.x}} {{.y}}", delims=("{{", "}}")).execute(data)
    with pytest.raises(TemplateError, match='nil data; no entry for key "x"'):
        Template("t1", "{{.x}}", delims=("{{", "}}")).execute(None)


def test_unterminated_raw_string_reports_opening_line() -> None:
    with pytest.raises(TemplateError, match="X:3: unterminated raw quoted string"):
        Template("X", "hello\n\n{{`unterminated\n\n\n\n}}\n some more\n\n", delims=("{{", "}}"))


def test_tree_with_define_template_and_trim() -> None:
    text = """
	(- define "tree" -)
	[
		(- .Val -)
		(- with .Left -)
			(template "tree" . -)
		(- end -)
		(- with .Right -)
			(- template "tree" . -)
		(- end -)
	]
	(- end -)
(- template "tree" . -)"""

    def node(val: int, left: object = None, right: object = None) -> dict[str, object]:
        return {"Val": val, "Left": left, "Right": right}

    tree = node(
        1,
        node(2, node(3, node(4)), node(5, node(6))),
        node(7, node(8, node(9)), node(10, node(11))),
    )
    out = Template("root", text, delims=("(", ")")).execute(tree)
    assert out == "[1[2[3[4]][5[6]]][7[8[9]][10[11]]]]"


def test_block() -> None:
    text = 'a({{block "inner" .}}bar({{.}})baz{{end}})b'
    assert Template("o", text, delims=("{{", "}}")).execute("hello") == "a(bar(hello)baz)b"


def test_template_not_defined() -> None:
    with pytest.raises(
        TemplateError, match=re.escape('at <{{template "nope"}}>: template "nope" not defined')
    ):
        Template("t", '{{template "nope"}}', delims=("{{", "}}")).execute(None)


def test_js_escaping() -> None:
    cases = [
        ("a", "a"),
        ("'foo", "\\'foo"),
        ('Go "jump" \\', 'Go \\"jump\\" \\\\'),
        ('Yukihiro says "今日は世界"', 'Yukihiro says \\"今日は世界\\"'),
        # Go's case uses U+FDFF, which Unicode 14 assigned; U+0378 is still unassigned.
        ("unprintable \u0378", "unprintable \\u0378"),
        ("<html>", "\\u003Chtml\\u003E"),
        ("no = in attributes", "no \\u003D in attributes"),
        ("&#x27; does not become HTML entity", "\\u0026#x27; does not become HTML entity"),
    ]
    for given, want in cases:
        assert run("{{js .}}", given) == want
