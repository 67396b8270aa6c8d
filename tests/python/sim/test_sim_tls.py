"""The stand-in over HTTPS with a self-signed certificate (generated with the openssl CLI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mlcd.sim.launcher import SimNode
from support.simclient import Api

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def test_https_with_trusted_and_untrusted_ca(tmp_path: Path, sim_api_key: str) -> None:
    cert, key = _self_signed(tmp_path)
    auto = tmp_path / "auto"
    with SimNode.start("automation", auto, api_key=sim_api_key, tls_cert=cert, tls_key=key) as node:
        assert node.url.startswith("https://127.0.0.1:")
        api = Api(node)
        with pytest.raises(requests.exceptions.SSLError):
            api.call("GET", "/instance-info")
        assert api.json("GET", "/instance-info", verify=str(cert))["nodeType"] == "AUTOMATION"
        assert node.stats()["total"] >= 1


def test_tls_flags_must_come_together(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "mlcd", "sim", "serve", "--role", "design"]
    argv += ["--data-dir", str(tmp_path), "--tls-cert", "x.pem"]
    env = {**os.environ, "MLCD_SIM_API_KEY": "k" * 12}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert "--tls-key" in proc.stderr and "Traceback" not in proc.stderr
