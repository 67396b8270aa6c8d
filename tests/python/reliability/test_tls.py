"""TLS: the stand-in nodes serve HTTPS with a certificate signed by a test CA made here (openssl CLI).

mlcd verifies certificates by default: against an untrusted one it fails with
exit 6 and one line naming the CA-bundle option. With ``tls: {ca_bundle: ...}``
the whole release works; a CA bundle of another CA is refused; ``tls: {verify:
false}`` works too, but only when asked, and says so with a warning.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlcd.sim.launcher import SimNode
from support import canary
from support.pipeline_env import SAMPLE_PROJECT, copy_sample_project
from support.reltools import NodeReader, one_line_error, record_result

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
KEYS = {"DSS_DESIGN_API_KEY": canary.new_canary(), "DSS_TEST_API_KEY": canary.new_canary()}


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (cert, key)."""
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / f"{name}.pem", d / f"{name}.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", key, "-out", cert, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    return cert, key


def make_server_cert(d: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 (subjectAltName IP:127.0.0.1) signed by ``ca``: (chain, key)."""
    key, csr, cert, ext = d / "server.key", d / "server.csr", d / "server.pem", d / "server.ext"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr)
    ext.write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-days", "2",
            "-out", cert, "-extfile", ext)  # fmt: skip
    chain = d / "server-chain.pem"
    chain.write_text(cert.read_text() + ca[0].read_text())
    return chain, key


def openssl(*args: str | Path) -> None:
    """Run the openssl CLI; fail the test with its stderr."""
    proc = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@dataclass
class TlsSetup:
    """An HTTPS design node and an HTTPS automation node, their CA, and another CA."""

    root: Path
    design: SimNode
    test: SimNode
    ca: Path
    other_ca: Path

    def mlcd(self, tls: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
        """Run the CLI with ``tls`` as both nodes' TLS options."""
        config = {
            "project": "SAMPLE",
            "design": {"url": self.design.url, "api_key_env": "DSS_DESIGN_API_KEY", "tls": tls},
            "environments": [{
                "name": "test", "url": self.test.url, "api_key_env": "DSS_TEST_API_KEY", "tls": tls,
                "connection_remappings": {"warehouse": "warehouse_test"},
                "tests": False, "smoke": ["TEST_SMOKE"], "read_timeout": 10,
            }],
        }  # fmt: skip
        path = self.root / "mlcd.yaml"
        path.write_text(yaml.safe_dump(config))
        skip = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
        env = {k: v for k, v in os.environ.items() if k not in skip}
        env.update(KEYS, MLCD_LOCK_DIR=str(self.root / "locks"))
        proc = subprocess.run(
            [sys.executable, "-m", "mlcd", *args, "--config", str(path),
             "--out-dir", str(self.root / ".mlcd")],
            cwd=self.root, env=env, capture_output=True, text=True, check=False, timeout=180,
        )  # fmt: skip
        canary.capture("mlcd " + " ".join(args), proc.stdout, proc.stderr)
        return proc


@pytest.fixture
def tls_nodes(tmp_path: Path) -> Iterator[TlsSetup]:
    """Both nodes on HTTPS with a chain signed by a fresh test CA."""
    ca = make_ca(tmp_path / "pki", "mlcd-test-ca")
    other = make_ca(tmp_path / "pki-other", "some-other-ca")
    chain, key = make_server_cert(tmp_path / "pki", ca)
    design_dir = tmp_path / "design"
    (design_dir / "projects").mkdir(parents=True)
    copy_sample_project(design_dir / "projects", SAMPLE_PROJECT)
    design = SimNode.start("design", design_dir, api_key=KEYS["DSS_DESIGN_API_KEY"], tls_cert=chain,
                           tls_key=key, connections={"warehouse": {"type": "PostgreSQL"}})  # fmt: skip
    with design:
        test = SimNode.start("automation", tmp_path / "auto", api_key=KEYS["DSS_TEST_API_KEY"],
                             tls_cert=chain, tls_key=key,
                             connections={"warehouse_test": {"type": "PostgreSQL"}})  # fmt: skip
        with test:
            assert design.url.startswith("https://127.0.0.1:") and test.url.startswith("https://")
            yield TlsSetup(tmp_path, design, test, ca[0], other[0])


def test_untrusted_certificate_fails_clearly_with_exit_6(tls_nodes: TlsSetup) -> None:
    """Default verification against the system CAs: refused, one line naming the ca_bundle option."""
    for args in (("validate",), ("status", "--env", "test")):
        proc = tls_nodes.mlcd({}, *args)
        line = one_line_error(proc.stderr)
        assert proc.returncode == 6, line
        assert "ca_bundle" in line and "certificate" in line.lower(), line
    record_result("tls", case="untrusted-default", passed=True)


@pytest.mark.reliability
def test_a_ca_bundle_of_another_ca_is_refused(tls_nodes: TlsSetup) -> None:
    """A CA bundle that did not sign the node's certificate does not make it trusted."""
    proc = tls_nodes.mlcd({"ca_bundle": str(tls_nodes.other_ca)}, "validate")
    line = one_line_error(proc.stderr)
    assert proc.returncode == 6 and "ca_bundle" in line, line
    record_result("tls", case="other-ca", passed=True)


def test_release_over_https_with_the_ca_bundle(tls_nodes: TlsSetup) -> None:
    """validate, bundle, deploy and smoke over verified HTTPS; the node has the bundle active."""
    tls = {"ca_bundle": str(tls_nodes.ca)}
    for args in (("validate",), ("bundle", "--build-number", "1"), ("deploy", "--env", "test"),
                 ("smoke", "--env", "test")):  # fmt: skip
        proc = tls_nodes.mlcd(tls, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "verify" not in proc.stderr.lower()  # no warning when verifying
    bundle_id = json.loads((tls_nodes.root / ".mlcd" / "run.json").read_text())["bundleId"]
    node = NodeReader(tls_nodes.test.url, KEYS["DSS_TEST_API_KEY"], verify=str(tls_nodes.ca))
    try:
        assert node.active("SAMPLE") == bundle_id
    finally:
        node.close()
    record_result("tls", case="ca-bundle-release", passed=True)


def test_verification_is_skipped_only_when_asked_and_with_a_warning(tls_nodes: TlsSetup) -> None:
    """``verify: false`` works against the untrusted node and warns; ``verify: true`` still refuses."""
    proc = tls_nodes.mlcd({"verify": False}, "validate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = (proc.stdout + proc.stderr).lower()
    assert "certificate verification is off" in out and tls_nodes.design.url in out, out
    refused = tls_nodes.mlcd({"verify": True}, "validate")
    assert refused.returncode == 6, refused.stderr
    record_result("tls", case="verify-false-warns", passed=True)
