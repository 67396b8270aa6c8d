"""mlcd.signing and the `signing` section of mlcd.yaml: keys, metadata signatures, approval signatures."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcd.config import SigningConfig, parse_config
from mlcd.errors import ConfigError, InputError
from mlcd.signing import (
    SigningKeys,
    approver_problem,
    keygen,
    metadata_problem,
    sign_approval,
    sign_metadata,
    use_signing_config,
    verify_approval,
)

BASE = """
project: P
design: {url: "https://design.example.com", api_key_env: DK}
environments:
  - {name: prod, url: "https://prod.example.com", api_key_env: PK}
"""


def test_signing_section_is_parsed_and_the_public_key_resolved_beside_the_file(tmp_path: Path) -> None:
    text = BASE + "signing: {key_env: SK, approval_key_env: AK, approval_public_key_file: keys/a.pub}\n"
    cfg = parse_config(text, tmp_path / "mlcd.yaml")
    assert cfg.signing == SigningConfig("SK", None, "AK", tmp_path / "keys" / "a.pub")
    assert parse_config(BASE, tmp_path / "mlcd.yaml").signing == SigningConfig()


def test_approval_key_without_public_key_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"approval_key_env needs signing\.approval_public_key_file"):
        parse_config(BASE + "signing: {approval_key_env: AK}\n", tmp_path / "mlcd.yaml")
    with pytest.raises(ConfigError):
        parse_config(BASE + "signing: {key: abc}\n", tmp_path / "mlcd.yaml")


def test_metadata_signature_covers_every_signed_field() -> None:
    key = b"s" * 40
    meta = {"bundleId": "B", "project": "P", "sha256": "a" * 64, "size": 3, "createdAt": "t"}
    meta["signature"] = sign_metadata(meta, key)
    keys = SigningKeys(key, env_var="SK")
    assert metadata_problem(meta, keys) is None
    assert metadata_problem(meta, SigningKeys(b"o" * 40, key, "SK")) is None  # previous key accepted
    for field, value in [("bundleId", "C"), ("project", "Q"), ("sha256", "b" * 64), ("size", 4)]:
        assert "does not match" in str(metadata_problem({**meta, field: value}, keys))
    assert metadata_problem({k: v for k, v in meta.items() if k != "signature"}, keys) == (
        "its metadata is not signed"
    )


def test_approval_signature_round_trip_and_tampering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keygen(tmp_path / "a.key", tmp_path / "a.pub")
    assert oct((tmp_path / "a.key").stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("AK", (tmp_path / "a.key").read_text().strip())
    sig = SigningConfig(approval_key_env="AK", approval_public_key_file=tmp_path / "a.pub")
    use_signing_config(sig)
    try:
        approval = {"environment": "prod", "approver": "bob", "sha256": "a" * 64, "bundleId": "B",
                    "time": "t", "comment": ""}  # fmt: skip
        signature = sign_approval(approval, sig)
        assert signature is not None
        entry = {"approval": {**approval, "signature": signature}}
        assert verify_approval(entry, "prod", "a" * 64) is None
        assert "was given for environment 'prod'" in str(verify_approval(entry, "test", "a" * 64))
        edited = {"approval": {**entry["approval"], "time": "later"}}
        assert "does not match" in str(verify_approval(edited, "prod", "a" * 64))
        monkeypatch.setenv("AK", "zz")
        with pytest.raises(InputError, match="does not hold an Ed25519 approval key"):
            sign_approval(approval, sig)
    finally:
        use_signing_config(SigningConfig())


@pytest.mark.parametrize("text", ["bob\nalice", "bob\x1b[31m", "bob\u202eecila", "bob\x00"])
def test_approver_control_characters(text: str) -> None:
    assert approver_problem(text) is not None
    assert approver_problem("Zoë O'Brien (release manager)") is None
