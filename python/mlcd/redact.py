"""Keep secrets out of everything mlcd writes.

Secrets are registered once (when a key is read from the environment) and
:func:`redact` replaces every occurrence in a text with ``***``: the secret as
is, URL-encoded, JSON-escaped, and base64-encoded (alone, as HTTP Basic's
``key:``, and at any alignment inside a longer base64 text). Logs, error
messages, reports, run records and audit records all pass through it. Text that
must be shortened goes through :func:`clip`, which redacts *before* cutting, so
a cut can never leave a recognisable part of a secret behind.
"""

from __future__ import annotations

import base64
import json
import threading
from urllib.parse import quote, quote_plus

_lock = threading.Lock()
_secrets: set[str] = set()
MASK = "***"
MIN_FORM = 6  # shorter derived forms would mask innocent text


def _base64_forms(raw: bytes) -> set[str]:
    """Base64 (standard and URL-safe) of ``raw``, and of its 3-byte-aligned cores at offsets 0, 1, 2.

    Wherever ``raw`` sits inside a longer base64-encoded text, one of the three
    cores starts on a 3-byte boundary and so appears verbatim in the encoding.
    """
    forms: set[str] = set()
    for shift in range(3):
        core = raw[shift:]
        core = core[: len(core) - len(core) % 3]
        if len(core) >= MIN_FORM:
            forms.add(base64.b64encode(core).decode())
            forms.add(base64.urlsafe_b64encode(core).decode())
    forms.add(base64.b64encode(raw).decode())
    forms.add(base64.b64encode(raw + b":").decode())
    return forms


def forms_of(value: str) -> set[str]:
    """Every form of ``value`` that :func:`redact` masks."""
    raw = value.encode()
    forms = {value, quote(value, safe=""), quote_plus(value, safe=""), quote(value), json.dumps(value)[1:-1]}
    forms |= _base64_forms(raw)
    return {f for f in forms if len(f) >= min(MIN_FORM, len(value))}


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` masks it in every form."""
    if not value or len(value) < 4:
        return
    with _lock:
        _secrets.update(forms_of(value))


def redact(text: str) -> str:
    """Return ``text`` with every registered secret (in any form) replaced by ``***``."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def clip(text: str, limit: int) -> str:
    """``text`` redacted, then cut to ``limit`` characters (with ``…`` when cut)."""
    text = redact(text)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    with _lock:
        _secrets.clear()
