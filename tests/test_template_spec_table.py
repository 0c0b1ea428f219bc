"""A table of Go template examples (Batch Changes contexts), transcribed row by row.

S is the step context of the spec's replica run; D is plain JSON data (numbers are float64).
Rows marked V in the spec were verified on Go 1.19.8; rows 53, 67 and 69 use the Go 1.26
behaviour the spec derives from source.
"""

from __future__ import annotations

import json

import pytest

from executor.batch.template import (
    ChangedFiles,
    Repository,
    StepContext,
    StepResult,
    StepsContext,
    TemplateError,
    render,
    render_step_template,
)
from executor.batch.template.step_context import BatchChangeAttributes

OUTPUTS_JSON = (
    '{"s":"hello","n":1,"f":2.5,"big":1e21,"mil":1000000,"nul":null,"list":["a","b"],'
    '"m":{"b":1,"a":[1,2.5,"x"],"c":{"d":true}},"yes":"true\\n"}'
)
D_JSON = '{"a":"x","n":3,"list":["p","q","r"],"m":{"z":1,"a":2,"B":3},"e":"","nul":null}'


def go_json(text: str) -> object:
    """Decode JSON the way Go's encoding/json fills an `any`: every number is float64."""
    return json.loads(text, parse_int=float)


def s_context(outputs: dict[str, object] | None = None) -> StepContext:
    decoded = go_json(OUTPUTS_JSON)
    assert isinstance(decoded, dict)
    return StepContext(
        batch_change=BatchChangeAttributes(name="my-bc"),
        repository=Repository(
            name="github.com/sourcegraph/src-cli",
            branch="main",
            file_matches=["main.go", "README.md"],
        ),
        previous_step=StepResult(
            changed_files=ChangedFiles(modified=["go.mod"], added=["a.txt", "b.txt"]),
            stdout="out\n",
        ),
        steps=StepsContext(path="sub/dir"),
        outputs=decoded if outputs is None else outputs,
    )


def run(template: str, ctx: str) -> str:
    if ctx == "S":
        return render_step_template(template, s_context(), name="t")
    return render(template, go_json(D_JSON), name="t")


OK_ROWS: list[tuple[int, str, str, str]] = [
    (1, "a  ${{- .a -}}  b", "D", "axb"),
    (2, "${{23 -}} < ${{- 45}}", "D", "23<45"),
    (3, "${{-3}}", "D", "-3"),
    (6, "a\n${{- /* c */ -}}\nb", "D", "ab"),
    (8, '${{ "${{" }} ${{ "${{ ignore_me }}" }}', "S", "${{ ${{ ignore_me }}"),
    (9, '{{ x }} and }} and $${{ "y" }}', "S", "{{ x }} and }} and $y"),
    (10, '${{ "a\\tb\\u00e9\\x41\\101" }}', "D", "a\tbéAA"),
    (12, "${{ `a\r\nb` }}", "D", "a\nb"),
    (13, "${{ 'a' }} ${{ '\\n' }}", "D", "97 10"),
    (
        14,
        "${{ 1.0 }} ${{ 1e3 }} ${{ 0x1F }} ${{ 017 }} ${{ 0b11 }} ${{ 1_000 }}",
        "D",
        "1 1000 31 15 3 1000",
    ),
    (15, "${{ 1i }} ${{ 1+2i }}", "D", "(0+1i) (1+2i)"),
    (18, "${{ print\n1\n2 }}", "D", "1 2"),
    (19, "${{ repository.name }}", "S", "github.com/sourcegraph/src-cli"),
    (20, "${{ repository.search_result_paths }}", "S", "README.md main.go"),
    (
        21,
        "${{ repository }}",
        "S",
        "map[branch:main name:github.com/sourcegraph/src-cli "
        "search_result_paths:README.md main.go]",
    ),
    (
        22,
        "${{ previous_step.modified_files }}|${{ previous_step.deleted_files }}",
        "S",
        "[go.mod]|[]",
    ),
    (
        23,
        "${{ outputs.s }} ${{ outputs.n }} ${{ outputs.f }} ${{ outputs.big }} ${{ outputs.mil }}",
        "S",
        "hello 1 2.5 1e+21 1e+06",
    ),
    (
        25,
        "${{ outputs.nul }} ${{ outputs.list }} ${{ outputs.m }}",
        "S",
        "<no value> [a b] map[a:[1 2.5 x] b:1 c:map[d:true]]",
    ),
    (26, "${{ print outputs.nul }}", "S", "<nil>"),
    (33, '${{ index outputs "missing" }}', "S", "<no value>"),
    (36, '${{ join repository.search_result_paths "," }}', "S", "README.md,main.go"),
    (39, '${{ split repository.name "/" }}', "S", "[github.com sourcegraph src-cli]"),
    (40, '${{ split "a,b,,c" "," }}|${{ split "" "," }}', "S", "[a b  c]|[]"),
    (41, '${{ replace "a/b/c/d" "/" "-" }}|${{ replace "aaa" "" "-" }}', "S", "a-b-c-d|-a-a-a-"),
    (42, '${{ repository.name | replace "/" "-" }}', "S", "/"),
    (44, '${{ join (split repository.name "/") "-" }}', "S", "github.com-sourcegraph-src-cli"),
    (45, '${{ join_if "---" "a" "b" "" "d" }}|${{ join_if "-" }}', "S", "a---b---d|"),
    (
        46,
        '${{ matches repository.name "github.com/sourcegraph/*" }} ${{ matches "a/b/c" "a*c" }}',
        "S",
        "true true",
    ),
    (48, '${{ matches "" "?" }} ${{ matches "bb" "bb*b" }}', "S", "true true"),
    (54, '${{ eq "a" "b" "a" }} ${{ eq 1 2 3 }}', "D", "true false"),
    (55, '${{ eq .nul "x" }} ${{ eq .nul .nul }} ${{ ne .nul 1 }}', "D", "false true true"),
    (57, '${{ and 1 0 }} ${{ and 1 2 }} ${{ or 0 "" }} ${{ or 0 "y" }}', "D", "0 2  y"),
    (58, "${{ and .e .missing }}|${{ or .a .missing }}", "D", "|x"),
    (60, "${{ $x := 1 }}${{ if true }}${{ $x := 2 }}${{ $x }}${{ end }}${{ $x }}", "D", "21"),
    (61, "${{ $x := 1 }}${{ if true }}${{ $x = 2 }}${{ end }}${{ $x }}", "D", "2"),
    (63, "${{ range $i, $v := .list }}${{ $i }}=${{ $v }};${{ end }}", "D", "0=p;1=q;2=r;"),
    (64, "${{ range $k, $v := .m }}${{ $k }}=${{ $v }};${{ end }}", "D", "B=3;a=2;z=1;"),
    (65, "${{ range .nul }}x${{ else }}E${{ end }}", "D", "E"),
    (
        66,
        '${{ range .list }}${{ if eq . "q" }}${{ break }}${{ end }}${{ . }}${{ end }}',
        "D",
        "p",
    ),
    (
        66,
        '${{ range .list }}${{ if eq . "q" }}${{ continue }}${{ end }}${{ . }}${{ end }}',
        "D",
        "pr",
    ),
    (67, "${{ range 3 }}${{ . }}${{ end }}", "D", "012"),
    (69, "${{ with .e }}a${{ else with .a }}b${{ . }}${{ end }}", "D", "bx"),
    (70, '${{ print "a" 1 "b" }}|${{ print 1 2 }}|${{ println "a" 1 }}', "D", "a1b|1 2|a 1\n"),
    (71, '${{ printf "%d" "x" }}|${{ printf "%s" }}', "D", "%!d(string=x)|%!s(MISSING)"),
    (
        72,
        '${{ html "<a href=\'x\'>&" }}|${{ urlquery "a b&c=d/é" }}',
        "D",
        "&lt;a href=&#39;x&#39;&gt;&amp;|a+b%26c%3Dd%2F%C3%A9",
    ),
    (73, '${{ len "héllo" }} ${{ slice "hello" 1 3 }}', "D", "6 el"),
    (
        78,
        "${{ print 100000.0 }} ${{ print 1234567.0 }} ${{ print 0.0001 }} ${{ print 0.00001 }} "
        "${{ print 1e20 }} ${{ print -0.0 }}",
        "D",
        "100000 1.234567e+06 0.0001 1e-05 1e+20 -0",
    ),
    (79, "${{ printf \"%T %T %T\" 1 1.0 'a' }}", "D", "int float64 int"),
    (80, '${{ eq outputs.yes "true" }}', "S", "false"),
    (
        81,
        "${{ .Repository.Name }} ${{ .Steps.Path }}",
        "S",
        "github.com/sourcegraph/src-cli sub/dir",
    ),
]

for _if_value in ('""', "0", ".nul", "slice .list 0 0", "false", "0.0"):
    OK_ROWS.append((52, "${{ if " + _if_value + " }}y${{ else }}n${{ end }}", "D", "n"))


@pytest.mark.parametrize(("row", "template", "ctx", "want"), OK_ROWS)
def test_spec_table_ok(row: int, template: str, ctx: str, want: str) -> None:
    assert run(template, ctx) == want, f"row {row}"


def test_row52_empty_map_and_list_are_false() -> None:
    assert render("${{ if .x }}y${{ else }}n${{ end }}", {"x": {}}) == "n"
    assert render("${{ if .x }}y${{ else }}n${{ end }}", {"x": []}) == "n"


def test_row24_yaml_int_prints_as_integer() -> None:
    ctx = s_context(outputs={"mil": 1000000})
    assert render_step_template("${{ outputs.mil }}", ctx) == "1000000"


P = 'template: t:1:4: executing "t" at '
ERR_ROWS: list[tuple[int, str, str, str]] = [
    (4, "a ${{-.a}}", "D", 'template: t:1: bad number syntax: "-.a"'),
    (5, "${{ .a-}}", "D", "template: t:1: bad character U+002D '-'"),
    (7, "a ${{ /* c */ }} b", "D", 'template: t:1: unexpected "/" in command'),
    (11, '${{ "it\\\'s" }}', "D", "template: t:1: invalid syntax"),
    (16, "${{ nil }}", "D", P + "<nil>: nil is not a command"),
    (
        17,
        "${{ 9223372036854775808 }}",
        "D",
        P + "<9223372036854775808>: 9223372036854775808 overflows int",
    ),
    (27, "${{ outputs.missing }}", "S", P + '<outputs>: map has no entry for key "missing"'),
    (28, "${{ resipotory.name }}", "S", 'template: t:1: function "resipotory" not defined'),
    (29, "${{ repository.nam }}", "S", P + '<repository>: map has no entry for key "nam"'),
    (
        30,
        "${{ repository.name.x }}",
        "S",
        P + "<repository>: can't evaluate field x in type interface {}",
    ),
    (31, "${{ outputs.nul.x }}", "S", P + "<outputs>: nil pointer evaluating interface {}.x"),
    (
        32,
        "${{ (outputs.nul).x }}",
        "S",
        'template: t:1:5: executing "t" at <outputs>: nil data; no entry for key "x"',
    ),
    (
        34,
        "${{ index outputs.list 5 }}",
        "S",
        P + "<index outputs.list 5>: error calling index: index out of range: 5",
    ),
    (
        35,
        "${{ index outputs.list 2 }}",
        "S",
        P + "<index outputs.list 2>: error calling index: reflect: slice index out of range",
    ),
    (
        37,
        '${{ join outputs.list "," }}',
        "S",
        'template: t:1:9: executing "t" at <outputs>: wrong type for value; '
        "expected []string; got []interface {}",
    ),
    (
        38,
        '${{ join "foobar" "-" }}',
        "S",
        'template: t:1:9: executing "t" at <"foobar">: can\'t handle "foobar" '
        "for arg of type []string",
    ),
    (
        43,
        '${{ split repository.name "/" | join "+" }}',
        "S",
        'template: t:1:37: executing "t" at <"+">: can\'t handle "+" for arg of type []string',
    ),
    (
        47,
        '${{ matches "x" "[" }}',
        "S",
        P + '<matches "x" "[">: error calling matches: unexpected end of input',
    ),
    (
        49,
        '${{ replace "x" "y" }}',
        "S",
        P + "<replace>: wrong number of args for replace: want 3 got 2",
    ),
    (
        50,
        '${{ repository "x" }}',
        "S",
        P + "<repository>: wrong number of args for repository: want 0 got 1",
    ),
    (
        51,
        '${{ join_if "-" "a" 1 }}',
        "S",
        'template: t:1:20: executing "t" at <1>: expected string; found 1',
    ),
    (
        53,
        "${{ if eq .n 1 }}a${{ end }}",
        "D",
        'template: t:1:7: executing "t" at <eq .n 1>: error calling eq: '
        "incompatible types for comparison: float64 and int",
    ),
    (
        56,
        "${{ lt true false }}",
        "D",
        P + "<lt true false>: error calling lt: invalid type for comparison",
    ),
    (
        59,
        '${{ or .missing "d" }}',
        "D",
        'template: t:1:7: executing "t" at <.missing>: map has no entry for key "missing"',
    ),
    (
        62,
        "${{ if true }}${{ $x := 1 }}${{ end }}${{ $x }}",
        "D",
        'template: t:1: undefined variable "$x"',
    ),
    (
        68,
        "${{ range .n }}x${{ end }}",
        "D",
        'template: t:1:10: executing "t" at <.n>: range can\'t iterate over 3',
    ),
    (74, '${{ .a | "x" }}', "D", "template: t:1: non executable command in pipeline stage 2"),
    (75, "${{ }}", "D", "template: t:1: missing value for command"),
    (75, "${{ if .a }}x", "D", "template: t:1: unexpected EOF"),
    (75, "${{ break }}", "D", "template: t:1: {{break}} outside {{range}}"),
    (
        76,
        "line1\nline2 ${{ .a.b }}",
        "D",
        'template: t:2:12: executing "t" at <.a.b>: can\'t evaluate field b in type interface {}',
    ),
    (77, "${{ 1 2 }}", "D", P + "<1>: can't give argument to non-function 1"),
    (77, "${{ .a .b }}", "D", P + "<.a>: a is not a method but has arguments"),
    (
        82,
        "${{ .repository }}",
        "S",
        P + "<.repository>: can't evaluate field repository in type *template.StepContext",
    ),
]


@pytest.mark.parametrize(("row", "template", "ctx", "want"), ERR_ROWS)
def test_spec_table_errors(row: int, template: str, ctx: str, want: str) -> None:
    with pytest.raises(TemplateError) as info:
        run(template, ctx)
    message = str(info.value).removeprefix("parsing step run: ")
    assert message == want, f"row {row}"
