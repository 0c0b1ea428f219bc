"""Property test: a secret is unrecoverable from redacted text in every common encoding, whatever
text surrounds it and wherever a line break or a prefix falls (`executor.redaction`).

The check is independent of the implementation: it decodes whatever is left (every base64 run
at every offset, hex runs, percent-decoding, JSON) and looks for the secret's bytes."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import string
import urllib.parse

from hypothesis import given, settings
from hypothesis import strategies as st

from executor.redaction import MIN_DERIVED, Redactor

SECRETS = st.text(
    alphabet=string.ascii_letters + string.digits + "-_.:/+=!@#$%&*",
    min_size=MIN_DERIVED + 2,
    max_size=40,
)
AROUND = st.text(alphabet=string.ascii_letters + string.digits + " :=", max_size=12)
ENCODINGS = [
    "plain",
    "b64",
    "b64url",
    "b64wrapped",
    "pct-upper",
    "pct-lower",
    "hex-lower",
    "hex-upper",
    "json",
]


def _encode(kind: str, data: str) -> str:
    raw = data.encode()
    if kind == "plain":
        return data
    if kind == "b64":
        return base64.b64encode(raw).decode()
    if kind == "b64url":
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    if kind == "b64wrapped":
        text = base64.b64encode(raw * 3).decode()  # long enough to wrap
        return "\nstdout: ".join(text[i : i + 76] for i in range(0, len(text), 76))
    if kind == "pct-upper":
        return urllib.parse.quote(data, safe="")
    if kind == "pct-lower":
        return re.sub(
            r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(data, safe="")
        )
    if kind == "hex-lower":
        return raw.hex()
    if kind == "hex-upper":
        return raw.hex().upper()
    return json.dumps(data)[1:-1]


def _recoverable(text: str, secret: str) -> bool:
    needle = secret.encode()
    candidates = [text.encode(), urllib.parse.unquote(text).encode()]
    with contextlib.suppress(ValueError):
        candidates.append(json.loads(f'"{text}"').encode())
    joined = re.sub(r"\nstdout: ", "", text)
    for run in re.findall(r"[A-Za-z0-9+/_=-]{4,}", joined):
        std = run.replace("-", "+").replace("_", "/").rstrip("=")
        for offset in range(4):
            part = std[offset:]
            if len(part) % 4 == 1:
                part = part[:-1]
            part += "=" * (-len(part) % 4)
            try:
                candidates.append(base64.b64decode(part))
            except (binascii.Error, ValueError):
                continue
    for run in re.findall(r"[0-9A-Fa-f]{2,}", text):
        for offset in (0, 1):
            chunk = run[offset:]
            candidates.append(bytes.fromhex(chunk[: len(chunk) - len(chunk) % 2]))
    return any(needle in c for c in candidates)


@settings(max_examples=300, deadline=None)
@given(secret=SECRETS, before=AROUND, after=AROUND, kind=st.sampled_from(ENCODINGS))
def test_no_encoding_of_a_secret_survives(secret: str, before: str, after: str, kind: str) -> None:
    redactor = Redactor({secret: "[REDACTED]"}, line_prefixes=("stdout: ",))
    text = "stdout: " + _encode(kind, before + secret + after)
    assert _recoverable(text, secret)  # the check can see it before redaction
    out = redactor.redact(text)
    assert not _recoverable(out, secret), (kind, text, out)


@settings(max_examples=100, deadline=None)
@given(secret=SECRETS, cut=st.integers(min_value=1, max_value=MIN_DERIVED))
def test_a_secret_split_across_lines_is_removed(secret: str, cut: int) -> None:
    redactor = Redactor({secret: "[REDACTED]"}, line_prefixes=("stdout: ",))
    text = f"stdout: x {secret[:cut]}\nstdout: {secret[cut:]} y"
    out = redactor.redact(text)
    assert secret not in out.replace("\nstdout: ", "")


def test_a_short_value_does_not_garble_text() -> None:
    out = Redactor({"ab": "***"}).redact("YWJj and 6162 and abc")
    assert out == "YWJj and 6162 and ***c"
