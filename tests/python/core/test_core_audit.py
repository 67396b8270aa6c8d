"""The audit trail: one redacted JSON line per action, appended, never rewritten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcd.audit import AuditChainError, AuditTrail, read_audit, verify_chain
from mlcd.errors import GateFailed
from mlcd.redact import register_secret
from mlcd.signing import canonical, chain_mac

FIELDS = {"time", "actor", "buildUrl", "node", "environment", "operation", "bundleId", "sha256",
          "outcome", "durationMs", "detail"}  # fmt: skip


def test_records_are_appended_with_all_fields(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditTrail(path, "alice", "http://ci/job/1/").record("export", "SUCCESS", node="design", bundle_id="B1")
    before = path.read_bytes()
    trail = AuditTrail(path, "bob", None)
    with trail.action("import", node="test", environment="test", bundle_id="B1", sha256="ab") as detail:
        detail["size"] = 42
    trail.deployment_outcome("test", "SUCCEEDED", bundle_id="B1", active_bundle_id="B1", message="ok")
    assert path.read_bytes().startswith(before)  # earlier lines untouched
    records = read_audit(path)
    assert [r["operation"] for r in records] == ["export", "import", "deployment"]
    for rec in records:
        assert set(rec) == FIELDS
        assert rec["time"].endswith("Z")
    assert records[0]["actor"] == "alice" and records[0]["buildUrl"] == "http://ci/job/1/"
    assert records[1]["outcome"] == "SUCCESS" and records[1]["detail"] == {"size": 42}
    assert isinstance(records[1]["durationMs"], int)
    assert records[2]["outcome"] == "SUCCEEDED" and records[2]["detail"]["activeBundleId"] == "B1"


def test_failed_action_records_error_and_reraises(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit.jsonl", "ci", None)
    with pytest.raises(GateFailed), trail.action("test", environment="test"):
        raise GateFailed("2 of 3 test scenarios failed", "fix them")
    (rec,) = read_audit(tmp_path / "audit.jsonl")
    assert rec["outcome"] == "FAILED"
    assert "2 of 3 test scenarios failed" in rec["detail"]["error"]
    assert rec["detail"]["errorCategory"] == "gate"


def test_deployment_outcome_is_checked(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit.jsonl", "ci", None)
    with pytest.raises(ValueError):
        trail.deployment_outcome("test", "OK", bundle_id=None, active_bundle_id=None, message="")
    assert read_audit(tmp_path / "audit.jsonl") == []


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    register_secret("k3y-abcdef-123456")
    trail = AuditTrail(tmp_path / "audit.jsonl", "ci", None)
    trail.record("x", "FAILED", detail={"error": "auth failed for k3y-abcdef-123456"})
    assert "k3y-abcdef-123456" not in (tmp_path / "audit.jsonl").read_text()


def test_unparseable_line_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditTrail(path, "ci", None).record("a", "SUCCESS")
    with open(path, "a") as fh:
        fh.write('{"operation": "b", "outc')
    with pytest.raises(AuditChainError, match="line 2: it is not a JSON record") as err:
        read_audit(path)
    assert err.value.exit_code == 2


# -- the chain (issue 12, finding 8) -----------------------------------------------------------------
KEY = b"k" * 40


def _trail_of_three(path: Path, key: bytes | None) -> None:
    trail = AuditTrail(path, "ci", None, key=key)
    trail.record("deploy", "SUCCESS", environment="test", bundle_id="B1")
    trail.deployment_outcome("test", "FAILED_ROLLED_BACK", bundle_id="B1", active_bundle_id="B0", message="m")
    trail.record("status", "SUCCESS", environment="test", bundle_id="B1")


@pytest.mark.parametrize("key", [KEY, None], ids=["hmac", "sha256"])
def test_intact_chain_verifies(tmp_path: Path, key: bytes | None) -> None:
    path = tmp_path / "audit.jsonl"
    _trail_of_three(path, key)
    keys = [key] if key else []
    assert verify_chain(path, keys, require_key=key is not None) == 3
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["prev"] == "" and lines[1]["prev"] == lines[0]["mac"]
    assert lines[0]["mac"].startswith("hmac-sha256:" if key else "sha256:")


@pytest.mark.parametrize("key", [KEY, None], ids=["hmac", "sha256"])
def test_sed_edit_of_an_outcome_is_named_by_line(tmp_path: Path, key: bytes | None) -> None:
    path = tmp_path / "audit.jsonl"
    _trail_of_three(path, key)
    path.write_text(path.read_text().replace("FAILED_ROLLED_BACK", "SUCCEEDED"))
    with pytest.raises(AuditChainError, match=r"broken at line 2: its .* does not match its content"):
        verify_chain(path, [key] if key else [], require_key=key is not None)


def test_recomputed_sha256_chain_is_caught_only_with_a_key(tmp_path: Path) -> None:
    """An attacker who recomputes the plain chain defeats SHA-256 mode, not HMAC mode."""
    path = tmp_path / "audit.jsonl"
    _trail_of_three(path, KEY)
    forged = tmp_path / "forged.jsonl"
    prev = ""
    out = []
    for line in path.read_text().splitlines():
        item = json.loads(line.replace("FAILED_ROLLED_BACK", "SUCCEEDED"))
        item.pop("mac")
        item["prev"] = prev
        item["mac"] = prev = chain_mac(None, canonical(item))
        out.append(json.dumps(item))
    forged.write_text("\n".join(out) + "\n")
    assert verify_chain(forged, [], require_key=False) == 3  # documented limit of the keyless chain
    with pytest.raises(AuditChainError, match="line 1: it is not signed with the signing key"):
        verify_chain(forged, [KEY], require_key=True)


def test_removed_and_reordered_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _trail_of_three(path, KEY)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    with pytest.raises(AuditChainError, match="line 2: it does not follow the line before it"):
        verify_chain(path, [KEY], require_key=True)
    path.write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(AuditChainError, match="line 1: the trail does not start at its first record"):
        verify_chain(path, [KEY], require_key=True)


def test_hmac_line_without_the_key_and_a_wrong_key_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _trail_of_three(path, KEY)
    with pytest.raises(AuditChainError, match="line 1: it is signed with the signing key, which is not"):
        verify_chain(path, [], require_key=False)
    with pytest.raises(AuditChainError, match="line 1: its HMAC does not match"):
        verify_chain(path, [b"x" * 40], require_key=True)
    assert verify_chain(path, [b"x" * 40, KEY], require_key=True) == 3  # rotation: previous key accepted


def test_hand_added_line_without_chain_fields_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _trail_of_three(path, None)
    with open(path, "a") as fh:
        fh.write(json.dumps({"operation": "approve", "outcome": "SUCCESS"}) + "\n")
    with pytest.raises(AuditChainError, match="line 4: it carries no chain fields"):
        verify_chain(path, [], require_key=False)


def _append_many(path: str, actor: str, count: int) -> None:
    trail = AuditTrail(Path(path), actor, None)
    for n in range(count):
        trail.record("step", "SUCCESS", detail={"n": n, "pad": "x" * 3000})


def test_concurrent_writers_never_interleave_lines(tmp_path: Path) -> None:
    import multiprocessing

    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), f"w{i}", 40)) for i in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    lines = path.read_text().splitlines()
    records = read_audit(path)
    assert len(lines) == len(records) == 160
    assert verify_chain(path, [], require_key=False) == 160  # one chain across all writers
    for i in range(4):
        assert [r["detail"]["n"] for r in records if r["actor"] == f"w{i}"] == list(range(40))


def test_run_record_supplies_bundle_and_sha256_when_not_given(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text('{"bundleId": "B2", "sha256": "f00d"}')
    trail = AuditTrail(tmp_path / "audit.jsonl", "ci", None)
    trail.record("run_scenario", "SUCCESS", node="test", environment="test")
    trail.record("rollback", "SUCCESS", node="test", environment="test", bundle_id="B1")
    trail.record("validate", "SUCCESS", node="design")
    trail.deployment_outcome(
        "test", "SUCCEEDED", bundle_id="B2", active_bundle_id="B2", message="ok", duration_ms=1234
    )
    scenario, rollback, validate, final = read_audit(tmp_path / "audit.jsonl")
    assert (scenario["bundleId"], scenario["sha256"]) == ("B2", "f00d")
    assert (rollback["bundleId"], rollback["sha256"]) == ("B1", None)  # another bundle: not the run's bytes
    assert (validate["bundleId"], validate["sha256"]) == (None, None)  # not about an environment
    assert (final["node"], final["sha256"], final["durationMs"]) == ("test", "f00d", 1234)
    trail.deployment_outcome("test", "SUCCEEDED", bundle_id="B2", active_bundle_id="B2", message="ok")
    assert isinstance(read_audit(tmp_path / "audit.jsonl")[-1]["durationMs"], int)
