"""Finding secrets in text, in every form they commonly take, for every place text leaves us.

One `Redactor` serves every caller: stored log entries (`executor.logstream`), failure messages
(the worker redacts before it marks), the daemon's own log lines (`executor.logsetup`), config
and payload error messages (`executor.config.settings`, `executor.wire.decode`). Sourcegraph
replaces each plain value with `strings.Replace` (`cmd/executor/internal/worker/cmdlogger/
logger.go`, `redact`), with no minimum length; a step that prints the value encoded leaks it
there.

🚨 SECURITY: for each secret of at least `MIN_DERIVED` bytes these forms are redacted too:

- base64, standard and URL alphabets, padded and unpadded, and for each of the three alignments
  the secret can have inside a longer text (`user:SECRET` in a Basic auth header): the secret's
  bytes at offset k mod 3 give one encoding, of which the characters that also depend on the
  neighbouring bytes (up to two at each edge) are dropped, so the inner characters are matched
  whatever surrounds them;
- percent-encoding (`quote` with and without `/` safe, `quote_plus`), upper and lower case hex;
- hex, upper and lower case;
- JSON string escaping (`\\"`, `\\\\`, `\\n`, `\\u00e9`, Go's `\\u003c` for `<>&`).

Derived forms shorter than `MIN_DERIVED` characters are not used: a short secret's inner base64
or hex is a few characters that ordinary text holds by chance, and redacting them would garble
everything (plain values keep Sourcegraph's rule: any non-empty value, unless the caller asks
for a minimum, as error messages do).

Text that spans lines is searched joined: a secret (or its base64, wrapped at 76 columns)
broken across lines, with a `stdout: ` prefix on each line, is found on the joined window and
every piece is replaced. Joined matching uses only keys of at least `MIN_DERIVED` characters,
so a short value is never assembled from unrelated lines. `spans` gives positions so that a
caller holding text back at a boundary (`executor.logstream`) can cut where no secret is.

Imports nothing from the project.
"""

from __future__ import annotations

import base64
import bisect
import contextvars
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping

__all__ = [
    "MIN_DERIVED",
    "SECRET_REMOVED",
    "Redactor",
    "apply_spans",
    "derived_forms",
    "job_redactor",
]

SECRET_REMOVED = "SECRET_REMOVED"

#: Secrets shorter than this (in UTF-8 bytes) get no derived forms, and no form shorter than
#: this (in characters) is matched: 8 bytes cover every base64 alignment with 8 inner characters.
MIN_DERIVED = 8

# Beyond this many distinct keys one regex pass is cheaper than a substring search per key.
_MAX_NEEDLES = 64


def _b64_forms(data: bytes) -> set[str]:
    forms: set[str] = set()
    n = len(data)
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(data).decode("ascii")
        forms.update((whole, whole.rstrip("=")))
        for k in range(3):
            # Characters j with 6j >= 8k and 6j + 6 <= 8(k + n) depend on the secret alone.
            padded = encode(b"\0" * k + data + b"\0\0").decode("ascii")
            forms.add(padded[-(-8 * k // 6) : (8 * (k + n)) // 6])
    return forms


def _percent_forms(text: str) -> set[str]:
    forms = {
        urllib.parse.quote(text, safe=""),
        urllib.parse.quote(text, safe="/"),
        urllib.parse.quote_plus(text, safe=""),
    }
    lower = {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in forms}
    return forms | lower


def _json_forms(text: str) -> set[str]:
    ascii_form = json.dumps(text)[1:-1]
    native = json.dumps(text, ensure_ascii=False)[1:-1]
    go = ascii_form.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return {ascii_form, native, go}


def derived_forms(secret: str) -> set[str]:
    """Every encoded form of `secret` that is redacted besides the value itself."""
    data = secret.encode("utf-8", errors="surrogatepass")
    if len(data) < MIN_DERIVED:
        return set()
    forms = _b64_forms(data) | _percent_forms(secret) | _json_forms(secret)
    forms |= {data.hex(), data.hex().upper()}
    if "\n" in secret:
        # Each line of a multi-line secret (a PEM key) on its own: in a log every line carries
        # a `stdout: ` prefix, so the value never appears verbatim.
        forms.update(part.strip() for part in secret.splitlines())
    forms.discard(secret)
    return {f for f in forms if len(f) >= MIN_DERIVED}


class Redactor:
    """Replaces secrets (and their derived forms) by their replacement text.

    `replacements` maps each secret to what replaces it; explicit keys win over derived forms.
    Keys shorter than `min_length` are ignored (empty keys always are: they match everywhere).
    `line_prefixes` are stripped after each newline when text is joined across lines (the
    log's `stdout: ` and `stderr: `).
    """

    def __init__(
        self,
        replacements: Mapping[str, str],
        *,
        min_length: int = 1,
        line_prefixes: Iterable[str] = (),
    ) -> None:
        table = {k: v for k, v in replacements.items() if k and len(k) >= max(min_length, 1)}
        for secret, replacement in list(table.items()):
            for form in derived_forms(secret):
                table.setdefault(form, replacement)
        self._table = table
        keys = sorted(table, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, keys))) if keys else None
        long_keys = [k for k in keys if len(k) >= MIN_DERIVED]
        # Every start position, overlapping ones included: a joined match must not be shadowed.
        self._joined = (
            re.compile("(?=(" + "|".join(map(re.escape, long_keys)) + "))") if long_keys else None
        )
        prefixes = "|".join(re.escape(p) for p in sorted(set(line_prefixes), key=len)[::-1])
        self._sep = re.compile(f"\n(?:{prefixes})?" if prefixes else "\n")
        # Most text holds no secret; a substring search per key (fast) decides whether the
        # regex needs to run at all. A key containing another key needs no search of its own.
        needles = [k for k in keys if not any(o != k and o in k for o in keys)]
        self._needles = needles if len(needles) <= _MAX_NEEDLES else None
        #: The longest key, in characters: how much text a caller must keep to see a secret
        #: that continues past a boundary.
        self.longest = len(keys[0]) if keys else 0

    @classmethod
    def for_secrets(
        cls, secrets: Iterable[str], replacement: str = SECRET_REMOVED, *, min_length: int = 1
    ) -> Redactor:
        """Every value in `secrets` replaced by the same text."""
        return cls(dict.fromkeys(secrets, replacement), min_length=min_length)

    @classmethod
    def for_values(cls, redacted_values: Mapping[str, str], secrets: Iterable[str]) -> Redactor:
        """A job's `redactedValues` (which win) and `secrets` (tokens) as `SECRET_REMOVED`."""
        return cls({**dict.fromkeys(secrets, SECRET_REMOVED), **redacted_values})

    def __bool__(self) -> bool:
        return self._pattern is not None

    def _may_match(self, text: str) -> bool:
        return self._needles is None or any(k in text for k in self._needles)

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Sorted, disjoint `(start, end, replacement)` ranges of `text` to replace.

        A secret broken across lines gives one range per piece: the first carries the
        replacement, the others are removed, and the line breaks and prefixes stay."""
        if self._pattern is None or not text:
            return []
        multiline = "\n" in text and self._joined is not None
        joined = self._sep.sub("", text) if multiline else text
        if not self._may_match(joined):
            return []
        found = [
            (m.start(), m.end(), self._table[m.group(0)]) for m in self._pattern.finditer(text)
        ]
        if multiline:
            found += self._joined_spans(text, joined)
            found.sort()
        return _merge(found)

    def _joined_spans(self, text: str, joined: str) -> list[tuple[int, int, str]]:
        assert self._joined is not None
        # Segment i is text[starts[i]:ends[i]], at joined[jstarts[i]:...].
        starts = [0]
        ends: list[int] = []
        for m in self._sep.finditer(text):
            ends.append(m.start())
            starts.append(m.end())
        ends.append(len(text))
        jstarts: list[int] = []
        at = 0
        for s, e in zip(starts, ends, strict=True):
            jstarts.append(at)
            at += e - s
        out: list[tuple[int, int, str]] = []
        for m in self._joined.finditer(joined):
            key = m.group(1)
            js, je = m.start(), m.start() + len(key)
            first = bisect.bisect_right(jstarts, js) - 1
            last = bisect.bisect_right(jstarts, je - 1) - 1
            if first == last:
                continue  # within one line: the plain pass found it
            replacement = self._table[key]
            for i in range(first, last + 1):
                lo = starts[i] + max(js - jstarts[i], 0)
                hi = starts[i] + min(je - jstarts[i], ends[i] - starts[i])
                if hi > lo:
                    out.append((lo, hi, replacement if i == first else ""))
        return out

    def redact(self, text: str) -> str:
        """`text` with every secret replaced."""
        return apply_spans(text, self.spans(text))


def _merge(found: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    merged: list[tuple[int, int, str]] = []
    for start, end, replacement in found:
        if merged and start < merged[-1][1]:
            s, e, r = merged[-1]
            merged[-1] = (s, max(e, end), r or replacement)
        else:
            merged.append((start, end, replacement))
    return merged


def apply_spans(text: str, spans: list[tuple[int, int, str]], end: int | None = None) -> str:
    """`text[:end]` with `spans` (from `Redactor.spans`) replaced."""
    if not spans:
        return text if end is None else text[:end]
    parts: list[str] = []
    at = 0
    for start, stop, replacement in spans:
        parts.append(text[at:start])
        parts.append(replacement)
        at = stop
    parts.append(text[at:end])
    return "".join(parts)


#: The running job's redactor, set by the worker in the job's task (and so seen by every task
#: it starts): the daemon's log processor (`executor.logsetup`) applies it to every event
#: logged on the job's behalf, so a secret in an image name or a path never reaches a log line.
job_redactor: contextvars.ContextVar[Redactor | None] = contextvars.ContextVar(
    "job_redactor", default=None
)
