"""Signatures that the artifact repository, the workspace and other local users cannot forge.

* **Provenance**: `mlcd publish` signs the bundle metadata with HMAC-SHA256 under the
  signing key (``signing.key_env`` in mlcd.yaml); `mlcd fetch` verifies it.
* **Audit chain**: each audit record carries a MAC over itself and the previous
  record's MAC: HMAC-SHA256 under the signing key, or plain SHA-256 without one.
* **Approvals**: `mlcd approve` signs the approval with an Ed25519 private key
  (``signing.approval_key_env``) bound only where a person approves; deploy verifies
  it with the public key in ``signing.approval_public_key_file``, so a step that can
  deploy cannot approve.

Keys are read from environment variables and registered for redaction; none is
ever printed. A *key id* (a hash of the key, not the key) names which key signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcd.errors import InputError

if TYPE_CHECKING:
    from mlcd.config import MlcdConfig, SigningConfig

HMAC_ALG = "hmac-sha256"
SHA_ALG = "sha256"
APPROVAL_ALG = "ed25519"
MIN_KEY_LENGTH = 32
# the metadata fields `mlcd publish` signs: identity, content and creation facts
SIGNED_METADATA_FIELDS = (
    "bundleId",
    "project",
    "sha256",
    "size",
    "gitSha",
    "buildUrl",
    "buildNumber",
    "createdAt",
    "publishedAt",
    "publishedBy",
)
SIGNED_APPROVAL_FIELDS = ("environment", "approver", "sha256", "bundleId", "time", "comment")
APPROVAL_FIELDS = {*SIGNED_APPROVAL_FIELDS, "actor", "buildUrl", "signature"}


def canonical(data: Any) -> bytes:
    """The bytes a MAC or signature covers: compact JSON with sorted keys."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def key_id(key: bytes) -> str:
    """A short public name of a key (a hash of it, never the key)."""
    return hashlib.sha256(b"mlcd key id\0" + key).hexdigest()[:16]


def hmac_hex(key: bytes, data: bytes) -> str:
    """HMAC-SHA256 of ``data`` as hex."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()


# -- the signing key (provenance and audit chain) -------------------------------------------------
@dataclass(frozen=True)
class SigningKeys:
    """The signing key and, during a rotation, the previous one (accepted for verifying only)."""

    current: bytes | None
    previous: bytes | None = None
    env_var: str | None = None

    @property
    def configured(self) -> bool:
        """True when mlcd.yaml names a signing key."""
        return self.env_var is not None

    def all(self) -> list[bytes]:
        """Keys to verify with, current first."""
        return [k for k in (self.current, self.previous) if k]


def _read_key(env_var: str, purpose: str) -> bytes:
    from mlcd.config import read_secret

    value = read_secret(env_var, purpose)
    if len(value) < MIN_KEY_LENGTH:
        raise InputError(
            f"environment variable {env_var} ({purpose}) holds fewer than {MIN_KEY_LENGTH} characters",
            "store a random key, e.g. the output of `openssl rand -hex 32`",
        )
    return value.encode()


def signing_keys(cfg: MlcdConfig) -> SigningKeys:
    """The configured signing keys; InputError (exit 2) when mlcd.yaml names one that is not set."""
    import os

    sig = cfg.signing
    if not sig.key_env:
        return SigningKeys(None)
    current = _read_key(sig.key_env, "signing key of bundle metadata and the audit trail")
    previous = None
    if sig.previous_key_env and os.environ.get(sig.previous_key_env, "").strip():
        previous = _read_key(sig.previous_key_env, "previous signing key, accepted while rotating")
    return SigningKeys(current, previous, sig.key_env)


# -- audit chain ----------------------------------------------------------------------------------
def chain_mac(key: bytes | None, payload: bytes) -> str:
    """``hmac-sha256:<hex>`` under ``key``, or ``sha256:<hex>`` without one."""
    if key:
        return f"{HMAC_ALG}:{hmac_hex(key, payload)}"
    return f"{SHA_ALG}:{hashlib.sha256(payload).hexdigest()}"


def chain_mac_problem(value: object, payload: bytes, keys: list[bytes], require_key: bool) -> str | None:
    """Why ``value`` is not a valid chain MAC of ``payload`` (None when it is)."""
    alg, _, digest = str(value).partition(":")
    if alg == SHA_ALG:
        if require_key:
            return "it is not signed with the signing key, though mlcd.yaml configures one"
        ok = hmac.compare_digest(digest, hashlib.sha256(payload).hexdigest())
        return None if ok else "its SHA-256 does not match its content (edited)"
    if alg == HMAC_ALG:
        if not keys:
            return "it is signed with the signing key, which is not configured or not set"
        if any(hmac.compare_digest(digest, hmac_hex(k, payload)) for k in keys):
            return None
        return "its HMAC does not match its content (edited, or signed with another key)"
    return f"its MAC has an unknown form {str(value)[:20]!r}"


# -- provenance -----------------------------------------------------------------------------------
def metadata_payload(meta: dict[str, Any]) -> bytes:
    """What a metadata signature covers."""
    return canonical({name: meta.get(name) for name in SIGNED_METADATA_FIELDS})


def sign_metadata(meta: dict[str, Any], key: bytes) -> dict[str, str]:
    """The ``signature`` entry for published metadata."""
    return {"alg": HMAC_ALG, "keyId": key_id(key), "value": hmac_hex(key, metadata_payload(meta))}


def metadata_problem(meta: dict[str, Any], keys: SigningKeys) -> str | None:
    """Why ``meta`` is not signed by one of ``keys`` (None when it is)."""
    sig = meta.get("signature")
    if not isinstance(sig, dict) or not sig.get("value"):
        return "its metadata is not signed"
    if sig.get("alg") != HMAC_ALG:
        return f"its metadata is signed with an unknown algorithm {str(sig.get('alg'))[:20]!r}"
    payload = metadata_payload(meta)
    for key in keys.all():
        if hmac.compare_digest(str(sig["value"]), hmac_hex(key, payload)):
            return None
    known = ", ".join(key_id(k) for k in keys.all())
    return (
        f"its metadata signature does not match (signed with key id {str(sig.get('keyId'))[:16]}, "
        f"this key id {known}): the archive or its metadata was not published by a build holding the key"
    )


# -- approvals ------------------------------------------------------------------------------------
_signing_config: SigningConfig | None = None


def use_signing_config(sig: SigningConfig) -> None:
    """Remember the loaded configuration's signing section (for :func:`verify_approval`)."""
    global _signing_config
    _signing_config = sig


def approver_problem(text: str) -> str | None:
    """Why ``text`` cannot be an approver name (control or format characters), None when it can."""
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            return f"it contains the control character U+{ord(ch):04X}"
    return None


def _public_key(path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = bytes.fromhex(path.read_text(encoding="ascii").strip())
        return Ed25519PublicKey.from_public_bytes(raw)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not 64 hex digits"
        raise InputError(
            f"cannot read the approval public key file {path}: {reason}",
            "write the public key made by `python -m mlcd.signing keygen` there (docs/security.md)",
        ) from None


def _public_bytes(key: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return bytes(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def sign_approval(approval: dict[str, Any], sig: SigningConfig) -> dict[str, str] | None:
    """The ``signature`` of an approval, or None when mlcd.yaml configures no approval key.

    InputError (exit 2) when the key is configured but unset, malformed, or not the
    private half of ``approval_public_key_file``.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from mlcd.config import read_secret

    if not sig.approval_key_env or sig.approval_public_key_file is None:
        return None
    env = sig.approval_key_env
    seed = read_secret(env, "approval signing key; bind it only in the approval step")
    try:
        private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))
    except ValueError:
        raise InputError(
            f"environment variable {env} does not hold an Ed25519 approval key (64 hex digits)",
            "store the private key made by `python -m mlcd.signing keygen`",
        ) from None
    public = _public_bytes(private.public_key())
    if public != _public_bytes(_public_key(sig.approval_public_key_file)):
        raise InputError(
            f"the approval key in {env} is not the one whose public key is in {sig.approval_public_key_file}",
            "bind the matching approval key, or update the public key file (docs/security.md, rotation)",
        )
    payload = canonical({k: approval.get(k) for k in SIGNED_APPROVAL_FIELDS})
    return {"alg": APPROVAL_ALG, "keyId": key_id(public), "value": private.sign(payload).hex()}


def verify_approval(entry: dict[str, Any], env_name: str, sha256: str) -> str | None:
    """Why the run record's approval of ``env_name`` is not a valid signed approval of ``sha256``.

    None when it is valid, or when mlcd.yaml configures no approval public key
    (approvals are then unsigned, see docs/security.md).
    """
    from cryptography.exceptions import InvalidSignature

    sig_cfg = _signing_config
    if sig_cfg is None or sig_cfg.approval_public_key_file is None:
        return None
    approval = entry.get("approval")
    if not isinstance(approval, dict):
        return f"environment '{env_name}' needs an approval and this run has none"
    where = f"the approval of environment '{env_name}' in the run record"
    signature = approval.get("signature")
    if not isinstance(signature, dict) or signature.get("alg") != APPROVAL_ALG:
        return f"{where} is not signed (edited by hand?)"
    if set(approval) - APPROVAL_FIELDS:
        return f"{where} has unexpected fields {sorted(set(approval) - APPROVAL_FIELDS)} (edited by hand?)"
    if approval.get("environment") != env_name:
        return f"{where} was given for environment '{approval.get('environment')}'"
    payload = canonical({k: approval.get(k) for k in SIGNED_APPROVAL_FIELDS})
    public = _public_key(sig_cfg.approval_public_key_file)
    try:
        public.verify(bytes.fromhex(str(signature.get("value"))), payload)
    except (InvalidSignature, ValueError):
        return f"{where} has a signature that does not match it (edited by hand, or signed with another key)"
    return None  # signed; whether it covers ``sha256`` is approval_problem's sha check


def keygen(private_path: Path, public_path: Path) -> None:
    """Write a new Ed25519 approval key pair: private (hex, mode 0600) and public (hex)."""
    import os

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(seed + "\n")
    public_path.write_text(_public_bytes(private.public_key()).hex() + "\n", encoding="ascii")


def main(argv: list[str]) -> int:
    """``python -m mlcd.signing keygen PRIVATE_FILE PUBLIC_FILE``: make an approval key pair."""
    if len(argv) != 3 or argv[0] != "keygen":
        print("usage: python -m mlcd.signing keygen PRIVATE_FILE PUBLIC_FILE", file=sys.stderr)
        return 2
    try:
        keygen(Path(argv[1]), Path(argv[2]))
    except OSError as exc:
        print(f"mlcd signing: error: cannot write {exc.filename}: {exc.strerror} (fix: pick new paths)",
              file=sys.stderr)  # fmt: skip
        return 2
    print(f"private key written to {argv[1]} (mode 0600): store it as a Jenkins secret text, then delete it")
    print(f"public key written to {argv[2]}: commit it and name it in signing.approval_public_key_file")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
