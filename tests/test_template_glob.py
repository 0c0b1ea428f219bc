"""The `matches` helper's glob dialect (gobwas/glob v0.2.3 without separators)."""

from __future__ import annotations

import pytest

from executor.batch.template.glob import GlobError, compile_glob


@pytest.mark.parametrize(
    ("pattern", "value", "want"),
    [
        ("github.com/sourcegraph/*", "github.com/sourcegraph/src-cli", True),
        ("github.com/*", "github.com/a/b", True),
        ("a*c", "a/b/c", True),
        ("*foo*", "xxfooyy", True),
        ("*foo*", "xxfoyy", False),
        ("*/src-*", "github.com/sourcegraph/src-cli", True),
        ("a**b", "a/x/y/b", True),
        ("?", "a", True),
        ("?", "ab", False),
        ("a?c", "a/c", True),
        ("[abc]", "b", True),
        ("[abc]", "d", False),
        ("[!abc]", "d", True),
        ("[!abc]", "a", False),
        ("[a-z]x", "qx", True),
        ("[a-z]x", "Qx", False),
        ("[!a-z]", "Q", True),
        ("{*.go,*.md}", "README.md", True),
        ("{*.go,*.md}", "main.py", False),
        ("src/{*.go,*.md}", "src/main.go", True),
        ("*.{md,txt}", "notes.txt", True),
        ("{a,{b,c}}x", "cx", True),
        ("{a,b", "b", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("abc\\", "abc", True),
        ("a,b}", "a,b}", True),
        ("", "", True),
        ("", "x", False),
        ("ABC", "abc", False),
        ("a*", "a\nb", True),
        # gobwas quirks: one-rune patterns match "", and prefix/suffix may overlap.
        ("?", "", True),
        ("[!a]", "", True),
        ("[ab]", "", False),
        ("bb*b", "bb", True),
        ("ab*ba", "aba", True),
        ("ab*ba", "abxba", True),
        ("ab*ba", "ab", False),
    ],
)
def test_matches(pattern: str, value: str, want: bool) -> None:
    assert compile_glob(pattern)(value) is want


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("[", "unexpected end of input"),
        ("[]", "could not parse range"),
        ("[!]", "could not parse range"),
        ("[a-]", "unexpected end of input"),
        ("[z-a]", "hi character 'a' should be greater than lo 'z'"),
        ("[a-z0-9]", "expected close range character"),
        ("[abc", "unexpected end of input"),
    ],
)
def test_compile_errors(pattern: str, message: str) -> None:
    with pytest.raises(GlobError) as info:
        compile_glob(pattern)
    assert str(info.value) == message
