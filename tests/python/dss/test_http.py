"""Unit tests of the node session: auth, TLS, timeouts, retries and typed errors."""

from __future__ import annotations

import base64
import logging
import pickle
from pathlib import Path

import pytest
import requests

from mlcd.dss.errors import (
    DSSBadRequest,
    DSSConflict,
    DSSError,
    DSSForbidden,
    DSSNotFound,
    DSSServerError,
    DSSUnauthorized,
    DSSUnavailable,
    DSSUnreachable,
)
from mlcd.dss.http import RetryPolicy
from mlcd.dss.node import DSSNode
from mlcd.errors import ConfigError, ExitCode, MlcdError, NodeError
from support.dssfakes import API_KEY, FakeClock, Reply, Seen, dss_error, make_node


def ok_info(seen: Seen | None = None) -> Reply:
    return Reply(200, json_body={"nodeName": "auto", "nodeType": "AUTOMATION"})


def test_basic_auth_key_as_user_empty_password_and_public_api_prefix(clock: FakeClock) -> None:
    node, t = make_node(ok_info, clock)
    assert node.instance_info()["nodeType"] == "AUTOMATION"
    (seen,) = t.seen
    assert seen.path == "instance-info"
    scheme, _, value = seen.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(value).decode() == f"{API_KEY}:"


def test_every_request_has_connect_and_read_timeouts(clock: FakeClock) -> None:
    node, t = make_node(ok_info, clock, connect_timeout=3.0, read_timeout=42.0)
    node.instance_info()
    node.auth_info()
    assert [s.timeout for s in t.seen] == [(3.0, 42.0), (3.0, 42.0)]


def test_tls_verification_default_on_and_ca_bundle_passed(
    clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    node, t = make_node(ok_info, clock, url="https://dss.example")
    node.instance_info()
    assert t.seen[-1].verify is True
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    # an explicit CA bundle wins over a bundle named in the environment
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    node, t = make_node(ok_info, clock, url="https://dss.example", verify=str(ca))
    node.instance_info()
    assert t.seen[-1].verify == str(ca)


def test_verify_false_warns_once_per_node(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    with caplog.at_level(logging.WARNING, logger="mlcd.dss"):
        node, t = make_node(ok_info, clock, url="https://dss.example", verify=False)
    node.instance_info()
    assert t.seen[-1].verify is False
    warnings = [r for r in caplog.records if "verification is OFF" in r.getMessage()]
    assert len(warnings) == 1
    assert API_KEY not in caplog.text


def test_missing_ca_bundle_is_a_config_error(clock: FakeClock, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        make_node(ok_info, clock, verify=str(tmp_path / "nope.pem"))


def test_empty_key_and_bad_url_refused() -> None:
    with pytest.raises(ConfigError, match="no API key"):
        DSSNode("http://x", "", name="design")
    with pytest.raises(ConfigError, match="not http"):
        DSSNode("ftp://x", API_KEY, name="design")


def test_key_not_in_reprs(clock: FakeClock) -> None:
    node, _ = make_node(ok_info, clock)
    assert API_KEY not in repr(node)
    assert API_KEY not in repr(node.http)
    assert API_KEY not in repr(node.http._session.auth)
    assert base64.b64encode(f"{API_KEY}:".encode()).decode() not in repr(node.http._session.auth)


@pytest.mark.parametrize("status", [503, 502, 504])
def test_get_retried_on_transient_status_then_succeeds(clock: FakeClock, status: int) -> None:
    answers = [Reply(status, body=b"<html>Bad gateway</html>"), dss_error(status), ok_info()]
    node, t = make_node(lambda s: answers.pop(0), clock)
    assert node.instance_info()["nodeName"] == "auto"
    assert len(t.seen) == 3
    assert len(clock.sleeps) == 2 and all(s > 0 for s in clock.sleeps)


def test_each_retry_is_a_warning_naming_request_status_delay_and_attempt(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    answers = [dss_error(503), Reply(raise_exc=requests.exceptions.ConnectionError("refused")), ok_info()]
    node, _ = make_node(lambda s: answers.pop(0), clock, name="test")
    with caplog.at_level(logging.WARNING, logger="mlcd.dss"):
        node.instance_info()
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.WARNING, logging.WARNING]
    first, second = (r.getMessage() for r in retries)
    assert first.startswith("GET /instance-info on test: 503, retrying in ")
    assert first.endswith(f"s (attempt 2/{node.http.retry.max_attempts})")
    assert f"{clock.sleeps[0]:.1f} s" in first
    assert "connection failed" in second and "(attempt 3/" in second
    assert API_KEY not in caplog.text


def test_get_retried_on_connection_error(clock: FakeClock) -> None:
    answers = [Reply(raise_exc=requests.exceptions.ConnectionError("refused")), ok_info()]
    node, t = make_node(lambda s: answers.pop(0), clock)
    assert node.instance_info()["nodeName"] == "auto"
    assert len(t.seen) == 2


def test_429_retry_after_is_honoured(clock: FakeClock) -> None:
    answers = [Reply(429, body=b"slow down", headers={"Retry-After": "7"}), ok_info()]
    node, t = make_node(lambda s: answers.pop(0), clock)
    node.instance_info()
    assert len(t.seen) == 2
    assert clock.sleeps and clock.sleeps[0] >= 7.0


def test_retry_after_beyond_total_bound_gives_up(clock: FakeClock) -> None:
    node, t = make_node(
        lambda s: Reply(429, body=b"", headers={"Retry-After": "3600"}),
        clock,
        retry=RetryPolicy(max_attempts=5, max_total_s=20.0),
    )
    with pytest.raises(DSSUnavailable) as info:
        node.instance_info()
    assert len(t.seen) == 1
    assert info.value.status == 429
    assert info.value.exit_code == ExitCode.NODE_UNREACHABLE


def test_retries_bounded_by_attempts_and_total_time(clock: FakeClock) -> None:
    node, t = make_node(lambda s: dss_error(503), clock, retry=RetryPolicy(max_attempts=4, max_total_s=1000))
    with pytest.raises(DSSUnavailable):
        node.list_projects()
    assert len(t.seen) == 4
    clock2 = FakeClock()
    node, t = make_node(
        lambda s: dss_error(503),
        clock2,
        retry=RetryPolicy(max_attempts=100, max_total_s=10.0, initial_s=1.0, max_wait_s=4.0),
    )
    with pytest.raises(DSSUnavailable):
        node.list_projects()
    assert 3 <= len(t.seen) < 100
    assert clock2.now - 1000.0 <= 10.0 + 1e-9


def test_backoff_grows_and_is_capped() -> None:
    p = RetryPolicy(initial_s=0.5, max_wait_s=4.0)
    assert p.backoff(1, rng=lambda: 1.0) == 0.5
    assert p.backoff(3, rng=lambda: 1.0) == 2.0
    assert p.backoff(10, rng=lambda: 1.0) == 4.0
    assert p.backoff(10, rng=lambda: 0.0) == 0.25  # jitter never goes to zero


def test_400_is_not_retried(clock: FakeClock) -> None:
    node, t = make_node(lambda s: dss_error(400, "ERR_BAD"), clock)
    with pytest.raises(DSSBadRequest):
        node.list_projects()
    assert len(t.seen) == 1


@pytest.mark.parametrize(
    ("status", "cls", "exit_code"),
    [
        (400, DSSBadRequest, ExitCode.DEPLOY_FAILED),
        (401, DSSUnauthorized, ExitCode.NODE_UNREACHABLE),
        (403, DSSForbidden, ExitCode.NODE_UNREACHABLE),
        (404, DSSNotFound, ExitCode.BAD_INPUT),
        (409, DSSConflict, ExitCode.DEPLOY_FAILED),
        (500, DSSServerError, ExitCode.DEPLOY_FAILED),
    ],
)
def test_typed_errors_carry_status_type_code_node_operation(
    clock: FakeClock, status: int, cls: type[DSSError], exit_code: ExitCode
) -> None:
    msg = f"nope, key {API_KEY} is wrong"  # a node echoing the key must not leak it
    node, _ = make_node(
        lambda s: dss_error(status, "ERR_X_Y", msg, "com.dataiku.dip.exceptions.UnauthorizedException"), clock
    )
    with pytest.raises(DSSError) as info:
        node.activate_bundle("CHURN", "b42")
    exc = info.value
    assert type(exc) is cls
    assert isinstance(exc, MlcdError)
    assert exc.status == status and exc.code == "ERR_X_Y"
    assert exc.error_type == "com.dataiku.dip.exceptions.UnauthorizedException"
    assert exc.node == "automation-test"
    assert exc.operation == "activate bundle b42 of project CHURN"
    assert exc.exit_code == exit_code
    text = str(exc)
    assert "activate bundle b42 of project CHURN" in text and "automation-test" in text
    assert f"HTTP {status}" in text and "ERR_X_Y" in text and "UnauthorizedException" in text
    assert "\n" not in text
    for rendered in (text, repr(exc), exc.one_line(), str(exc.args)):
        assert API_KEY not in rendered
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is cls and again.status == status and API_KEY not in str(again)


def test_unauthorized_is_a_node_error(clock: FakeClock) -> None:
    node, _ = make_node(lambda s: dss_error(401), clock)
    with pytest.raises(NodeError) as info:
        node.auth_info()
    assert "API key" in str(info.value)


@pytest.mark.parametrize(
    ("body", "ctype", "expected"),
    [
        (b"Internal failure in the proxy", "text/plain", "Internal failure in the proxy"),
        (b"<html><body><h1>500</h1></body></html>", "text/html", "Fake"),
        (b"", "text/plain", "Fake"),
        (b'{"weird": true}', "application/json", '{"weird": true}'),
    ],
)
def test_non_json_error_bodies(clock: FakeClock, body: bytes, ctype: str, expected: str) -> None:
    node, _ = make_node(lambda s: Reply(500, body=body, headers={"Content-Type": ctype}), clock)
    with pytest.raises(DSSServerError) as info:
        node.get_project("CHURN")
    assert info.value.status == 500
    assert info.value.error_type is None
    assert expected in str(info.value)
    assert "<html>" not in str(info.value)


def test_connection_error_maps_to_unreachable_with_hint(clock: FakeClock) -> None:
    node, t = make_node(
        lambda s: Reply(raise_exc=requests.exceptions.ConnectionError(f"refused http://x?k={API_KEY}")),
        clock,
        retry=RetryPolicy(max_attempts=2, max_total_s=5),
    )
    with pytest.raises(DSSUnreachable) as info:
        node.instance_info()
    assert len(t.seen) == 2
    assert info.value.exit_code == ExitCode.NODE_UNREACHABLE
    assert "node URL" in str(info.value)
    assert API_KEY not in str(info.value)


def test_tls_error_not_retried_and_explained(clock: FakeClock) -> None:
    node, t = make_node(
        lambda s: Reply(raise_exc=requests.exceptions.SSLError("CERTIFICATE_VERIFY_FAILED")), clock
    )
    with pytest.raises(DSSUnreachable, match="TLS verification failed") as info:
        node.instance_info()
    assert len(t.seen) == 1
    assert "ca_bundle" in str(info.value)


def test_non_json_success_answer_is_a_typed_error(clock: FakeClock) -> None:
    node, _ = make_node(lambda s: Reply(200, body=b"<html>login page</html>"), clock)
    with pytest.raises(DSSServerError, match="not JSON"):
        node.list_projects()


def test_json_answer_over_the_cap_is_refused_not_retried(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCD_MAX_JSON_BYTES", "1024")
    node, t = make_node(lambda s: Reply(200, json_body={"pad": "x" * 5000}), clock)
    with pytest.raises(DSSUnreachable, match="larger than the 1024 bytes allowed") as info:
        node.instance_info()
    assert info.value.exit_code == ExitCode.NODE_UNREACHABLE and len(t.seen) == 1


def test_compressed_answer_is_refused_and_identity_is_asked(clock: FakeClock) -> None:
    node, t = make_node(lambda s: Reply(200, body=b"{}", headers={"Content-Encoding": "gzip"}), clock)
    with pytest.raises(DSSUnreachable, match="came compressed"):
        node.instance_info()
    assert t.seen[0].headers["Accept-Encoding"] == "identity"


def test_408_is_transient(clock: FakeClock) -> None:
    answers = iter([Reply(408, body=b"slow"), ok_info()])
    node, t = make_node(lambda s: next(answers), clock)
    assert node.instance_info()["nodeType"] == "AUTOMATION" and len(t.seen) == 2
