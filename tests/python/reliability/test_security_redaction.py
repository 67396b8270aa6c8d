"""Security: no part of an API key survives an error body that echoes it (issue 12, item 3).

The HTTP layer shows at most ``MESSAGE_CHARS`` characters of an error body; it
must redact first and cut after, so a key that straddles the cut is masked whole.
Redaction also covers the key URL-encoded and base64-encoded (alone, as HTTP
Basic's ``key:``, and inside a longer base64 text). The end-to-end tests run
``mlcd validate`` against a hostile node that echoes the key it received into its
error body, and scan stderr, stdout, the stage file, the JUnit report and the
audit trail.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from hostile import DESIGN_KEY, TEST_KEY, Handler, hostile, run_mlcd, write_config
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcd.dss.http import MESSAGE_CHARS, error_from_response
from mlcd.redact import clear_secrets, clip, redact, register_secret
from support.canary import remember
from support.reltools import one_line_error, record_result

KEY = "Kx+y/Z=9a8b7c6d5e4f3g2h1i0jKLMN"  # has characters that URL-encoding changes
remember(KEY)  # the session-wide canary scan looks for it too (support/canary.py)
WINDOW = 8

FORMS: dict[str, Callable[[str], str]] = {
    "plain": lambda k: k,
    "url-encoded": lambda k: quote(k, safe=""),
    "basic-auth-base64": lambda k: base64.b64encode(f"{k}:".encode()).decode(),
}


def leaks(text: str, key: str = KEY) -> list[str]:
    """Every 8-character window of any form of ``key`` found in ``text``."""
    found = []
    for name, form in FORMS.items():
        encoded = form(key)
        found += [f"{name}:{encoded[i:i + WINDOW]}" for i in range(len(encoded) - WINDOW + 1)
                  if encoded[i : i + WINDOW] in text]  # fmt: skip
    return found


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    clear_secrets()
    register_secret(KEY)
    yield
    clear_secrets()


def _response(status: int, body: bytes, ctype: str) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp.headers["Content-Type"] = ctype
    resp._content = body
    resp.reason = "Server Error"
    return resp


STRADDLING = range(MESSAGE_CHARS - len(FORMS["basic-auth-base64"](KEY)) - 1, MESSAGE_CHARS + 2)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("offset", STRADDLING)
def test_error_body_cut_never_leaves_part_of_the_key(offset: int, form: str) -> None:
    """Every offset at which the key (in each form) straddles the cut: nothing of it is shown."""
    body = ("x" * offset + FORMS[form](KEY) + " and more text after it " * 20).encode()
    message = error_from_response(_response(500, body, "text/plain"), "design", "read").one_line()
    assert not leaks(message), message
    json_body = b'{"detailedMessage": "' + body.replace(b"x", b"y", 10) + b'"}'
    message = error_from_response(_response(500, json_body, "application/json"), "design", "read").one_line()
    assert not leaks(message), message


@settings(max_examples=200, deadline=None)
@given(
    key=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=12, max_size=48),
    before=st.binary(max_size=7),
    after=st.binary(max_size=7),
    limit=st.integers(min_value=1, max_value=120),
)
def test_any_key_in_any_encoding_is_masked_before_any_cut(
    key: str, before: bytes, after: bytes, limit: int
) -> None:
    clear_secrets()
    register_secret(key)
    blob = base64.b64encode(before + key.encode() + after).decode()  # the key inside a longer base64 text
    text = f"a {key} b {quote(key, safe='')} c {base64.b64encode(f'{key}:'.encode()).decode()} d {blob} e"
    shown = clip(text, limit)
    assert not leaks(shown, key), shown
    raw = key.encode()
    for shift in range(3):
        core = raw[shift:][: len(raw[shift:]) - len(raw[shift:]) % 3]
        encoded = base64.b64encode(core).decode()
        assert all(encoded[i : i + WINDOW] not in redact(text) for i in range(len(encoded) - WINDOW + 1))


def _echo_key(form: str, offset: int) -> Callable[[Handler], None]:
    def respond(h: Handler) -> None:
        h.send(500, ("x" * offset + FORMS[form](h.key()) + " was refused").encode(), ctype="text/plain")

    return respond


def _scan_validate_run(tmp_path: Path, form: str, offset: int) -> None:
    with hostile(_echo_key(form, offset)) as server:
        write_config(tmp_path, server.url)
        run = run_mlcd(tmp_path, "validate", keys={DESIGN_KEY: KEY, TEST_KEY: "t" * 24})
    one_line_error(run.stderr)
    assert run.code == 8, run
    out = tmp_path / ".mlcd"
    outputs = {"stderr": run.stderr, "stdout": run.stdout}
    for name in ("validate.json", "reports/validate.xml", "audit.jsonl"):
        outputs[name] = (out / name).read_text()  # each must exist: the scan is not vacuous
    assert "x" * 50 in outputs["validate.json"] and "x" * 50 in outputs["audit.jsonl"]
    found = {name: leaks(text) for name, text in outputs.items() if leaks(text)}
    assert not found, found
    record_result("security_redaction", case=f"echo-{form}-at-{offset}", passed=True)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("offset", [MESSAGE_CHARS - 30, MESSAGE_CHARS - 10])
def test_key_echoed_in_an_error_body_leaks_nowhere(tmp_path: Path, form: str, offset: int) -> None:
    """Two straddling offsets per form (the sweep over every offset is in the reliability suite)."""
    _scan_validate_run(tmp_path, form, offset)


@pytest.mark.reliability
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("offset", STRADDLING)
def test_key_echoed_at_every_cut_offset_leaks_nowhere(tmp_path: Path, form: str, offset: int) -> None:
    _scan_validate_run(tmp_path, form, offset)
