"""TLS options of mlcd.yaml reach the DSS client: `mlcd validate` against an HTTPS stand-in design node."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlcd.sim.launcher import SimNode
from support.pipeline_env import SAMPLE_PROJECT, copy_sample_project

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
KEY = "tls-test-key-5b1f0e2a"


@pytest.fixture
def https_design(tmp_path: Path) -> Iterator[tuple[SimNode, Path]]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    data = tmp_path / "design"
    (data / "projects").mkdir(parents=True)
    copy_sample_project(data / "projects", SAMPLE_PROJECT)
    with SimNode.start("design", data, api_key=KEY, tls_cert=cert, tls_key=key) as node:
        yield node, cert


def validate(tmp_path: Path, node: SimNode, tls: dict[str, object]) -> subprocess.CompletedProcess[str]:
    config = {
        "project": "SAMPLE",
        "design": {"url": node.url, "api_key_env": "DSS_DESIGN_API_KEY", "tls": tls},
        "environments": [
            {
                "name": "test",
                "url": "https://127.0.0.1:9",
                "api_key_env": "DSS_TEST_API_KEY",
                "smoke": "TEST_SMOKE",
            }
        ],
    }
    (tmp_path / "mlcd.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env["DSS_DESIGN_API_KEY"] = KEY
    return subprocess.run(
        [sys.executable, "-m", "mlcd", "validate", "--config", str(tmp_path / "mlcd.yaml"),
         "--out-dir", str(tmp_path / ".mlcd")],
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_ca_bundle_is_used(tmp_path: Path, https_design: tuple[SimNode, Path]) -> None:
    node, cert = https_design
    assert node.url.startswith("https://")
    proc = validate(tmp_path, node, {"verify": True, "ca_bundle": str(cert)})
    assert proc.returncode == 0, proc.stderr


def test_untrusted_certificate_is_refused_exit_6(tmp_path: Path, https_design: tuple[SimNode, Path]) -> None:
    node, _ = https_design
    proc = validate(tmp_path, node, {"verify": True})
    assert proc.returncode == 6, proc.stderr
    assert "Traceback" not in proc.stderr and KEY not in proc.stderr


def test_verify_false_is_honoured(tmp_path: Path, https_design: tuple[SimNode, Path]) -> None:
    node, _ = https_design
    proc = validate(tmp_path, node, {"verify": False})
    assert proc.returncode == 0, proc.stderr
