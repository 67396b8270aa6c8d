"""API-key authentication as DSS accepts it: Basic (key as user or as password) or Bearer."""

from __future__ import annotations

import base64
import binascii
import hmac


def key_from_header(header: str | None) -> str | None:
    """Return the API key an ``Authorization`` header carries, or None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    if user and not password:
        return user
    if password and not user:
        return password
    return None


def is_authorised(header: str | None, api_key: str) -> bool:
    """True when ``header`` carries ``api_key`` (compared in constant time)."""
    key = key_from_header(header)
    return key is not None and hmac.compare_digest(key.encode(), api_key.encode())
