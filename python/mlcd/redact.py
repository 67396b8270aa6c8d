"""Keep secrets out of everything mlcd writes.

Secrets are registered once (when a key is read from the environment) and
:func:`redact` replaces every occurrence in a text with ``***``. Logs, error
messages, reports, run records and audit records all pass through it.
"""

from __future__ import annotations

import base64
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` masks it (and its Basic-auth form)."""
    if not value or len(value) < 4:
        return
    with _lock:
        _secrets.add(value)
        _secrets.add(base64.b64encode(f"{value}:".encode()).decode())


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    with _lock:
        _secrets.clear()
