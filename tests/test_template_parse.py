"""Lexer and parser behaviour: parse-error texts and line numbers.

Cases follow Go's `parse/lex_test.go` and `parse/parse_test.go` where they apply.
"""

from __future__ import annotations

import pytest

from executor.batch.template import TemplateError, render
from executor.batch.template.lexer import ItemType, lex
from executor.batch.template.parse import parse


def parse_error(text: str, *, name: str = "t", delims: tuple[str, str] = ("{{", "}}")) -> str:
    with pytest.raises(TemplateError) as info:
        render(text, {}, name=name, delims=delims, helpers=False)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("{{", "template: t:1: unclosed action"),
        ("{{.x", "template: t:1: unclosed action"),
        ("{{\n.x", "template: t:2: unclosed action started at t:1"),
        ("{{(.x}}", "template: t:1: unclosed left paren"),
        ("{{.x)}}", "template: t:1: unexpected right paren"),
        ('{{"abc}}', "template: t:1: unterminated quoted string"),
        ("{{'a}}", "template: t:1: unterminated character constant"),
        ("{{'ab'}}", "template: t:1: malformed character constant: 'ab'"),
        ("{{/* x", "template: t:1: unclosed comment"),
        ("{{/* x */ }}", "template: t:1: comment ends before closing delimiter"),
        ("{{3a}}", 'template: t:1: bad number syntax: "3a"'),
        ("{{ - }}", 'template: t:1: illegal number syntax: "-"'),
        ("{{08}}", 'template: t:1: integer overflow: "08"'),
        ("{{1e400}}", 'template: t:1: illegal number syntax: "1e400"'),
        ("{{:}}", "template: t:1: expected :="),
        ("{{#}}", 'template: t:1: unexpected "#" in command'),
        ("{{\x01}}", "template: t:1: unrecognized character in action: U+0001"),
        ("{{foo}}", 'template: t:1: function "foo" not defined'),
        ("{{$x}}", 'template: t:1: undefined variable "$x"'),
        ("{{1.5.x}}", 'template: t:1: unexpected . after term "1.5"'),
        ('{{"x".y}}', 'template: t:1: unexpected . after term "\\"x\\""'),
        ("{{.a | 3}}", "template: t:1: non executable command in pipeline stage 2"),
        ("{{$x := }}", "template: t:1: missing value for command"),
        ("{{if}}{{end}}", "template: t:1: missing value for if"),
        ("{{( )}}", "template: t:1: missing value for parenthesized pipeline"),
        ("{{end}}", "template: t:1: unexpected {{end}}"),
        ("{{else}}", "template: t:1: unexpected {{else}}"),
        ("{{if true}}\nx", "template: t:2: unexpected EOF"),
        ("{{continue}}", "template: t:1: {{continue}} outside {{range}}"),
        ("{{range .}}{{break 1}}{{end}}", 'template: t:1: unexpected "1" in {{break}}'),
        ("{{$x, $y := 1}}", "template: t:1: too many declarations in command"),
        ("{{range $a, $b, $c := .}}{{end}}", "template: t:1: too many declarations in range"),
        ("{{range $a, 3 := .}}{{end}}", "template: t:1: range can only initialize variables"),
        ("{{if .x}}{{else}}{{else}}{{end}}", "template: t:1: expected end; found {{else}}"),
        ("{{with $x := 1}}{{end}}{{$x}}", 'template: t:1: undefined variable "$x"'),
        ("{{template .x}}", 'template: t:1: unexpected ".x" in template clause'),
        (
            '{{if true}}{{define "a"}}{{end}}{{end}}',
            "template: t:1: unexpected <define> in command",
        ),
        (
            '{{define "a"}}x{{end}}{{define "a"}}y{{end}}',
            'template: t:1: template: multiple definition of template "a"',
        ),
        ('{{ printf "%d" 1 "a\\q" }}', "template: t:1: invalid syntax"),
        (
            "{{ 12345678901234567890123 }}",
            'template: t:1: integer overflow: "12345678901234567890123"',
        ),
    ],
)
def test_parse_errors(text: str, want: str) -> None:
    assert parse_error(text) == want


def test_parse_error_line_is_that_of_the_failing_token() -> None:
    assert parse_error("a\nb\n{{ nope }}") == 'template: t:3: function "nope" not defined'
    assert parse_error("x\n${{ .a\n.b", delims=("${{", "}}")) == (
        "template: t:3: unclosed action started at t:2"
    )


def test_long_token_is_cut_in_unexpected() -> None:
    assert parse_error('{{ "abcdefghijklmnop" | "x" }}') == (
        "template: t:1: non executable command in pipeline stage 2"
    )
    assert parse_error("{{ .a ,abcdefghijklm }}") == 'template: t:1: unexpected "," in operand'


def test_sourcegraph_delimiters_and_literal_braces() -> None:
    assert render("{{ .a }} ${{ .a }}", {"a": 1}) == "{{ .a }} 1"
    assert render('${{ print "}}" }}', {}) == "}}"
    assert render("hello-{.}}-world", {}) == "hello-{.}}-world"
    assert render("x${{-\t.a}}", {"a": "y"}) == "xy"
    assert render('a\r\n${{- "x" -}}\r\n b', {}) == "axb"
    # Only ASCII space, tab, CR and LF are trimmed; NBSP is not.
    assert render("a\u00a0${{- 1 }}", {}) == "a\u00a01"


def test_lexer_items_and_positions() -> None:
    items = lex("ab{{.x | f 'c'}}", "{{", "}}", frozenset())
    kinds = [i.typ for i in items]
    assert kinds == [
        ItemType.TEXT,
        ItemType.LEFT_DELIM,
        ItemType.FIELD,
        ItemType.SPACE,
        ItemType.PIPE,
        ItemType.SPACE,
        ItemType.IDENTIFIER,
        ItemType.SPACE,
        ItemType.CHAR_CONSTANT,
        ItemType.RIGHT_DELIM,
        ItemType.EOF,
    ]
    assert [i.pos for i in items][:3] == [0, 2, 4]


def test_break_is_an_identifier_when_a_function_has_that_name() -> None:
    items = lex("{{break}}", "{{", "}}", frozenset({"break"}))
    assert items[1].typ is ItemType.IDENTIFIER
    assert render("{{break}}", {}, delims=("{{", "}}"), funcs={"break": lambda: "b"}) == "b"


def test_node_text_uses_standard_delimiters() -> None:
    tree = parse(
        "t",
        '${{ if $x := eq .a "b" }}${{ range $i, $e := .l }}${{ ($e).y | print }}${{ end }}'
        "${{ else }}z${{ end }}",
        ("${{", "}}"),
        frozenset({"eq", "print"}),
    )
    assert str(tree.root) == (
        '{{if $x := eq .a "b"}}{{range $i, $e := .l}}{{($e).y | print}}{{end}}{{else}}z{{end}}'
    )


def test_error_column_counts_bytes() -> None:
    with pytest.raises(TemplateError) as info:
        render("é ${{ .a.b }}", {"a": 1}, name="t")
    # `.b` starts at character 8 but byte 9 (é is two bytes in UTF-8).
    assert str(info.value).startswith('template: t:1:9: executing "t" at <.a.b>:')


def test_long_node_text_is_cut_to_20_runes() -> None:
    with pytest.raises(TemplateError) as info:
        render('${{ index .l 5 "aaaaaaaaaaaaaaaaaa" }}', {"l": [1]}, name="t")
    assert '<index .l 5 "aaaaaaaa...>' in str(info.value)
