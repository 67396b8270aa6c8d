"""`nodes:` of an environment in mlcd.yaml: what loads, and what a user is told when it is wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlcd.config import load_config
from mlcd.errors import ConfigError, ExitCode

FLEET = """\
project: CHURN
design:
  url: https://design.example.com
  api_key_env: DSS_DESIGN_API_KEY
environments:
  - name: test
    url: https://test.example.com
    api_key_env: DSS_TEST_API_KEY
  - name: prod
    connection_remappings: {warehouse: warehouse_prod}
    smoke: TEST_SMOKE
    nodes:
      - name: eu
        url: https://dss-eu.example.com
        api_key_env: DSS_PROD_EU_API_KEY
      - name: us
        url: https://dss-us.example.com
        api_key_env: DSS_PROD_US_API_KEY
        tls: {verify: true, ca_bundle: /etc/ssl/us.pem}
        connection_remappings: {warehouse: warehouse_us}
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "mlcd.yaml"
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    return info.value.one_line()


def test_a_multi_node_environment_loads_beside_a_single_node_one(tmp_path: Path) -> None:
    from mlcd.release.fleet import node_environment

    cfg = load(tmp_path, FLEET)
    test, prod = cfg.environments  # type: ignore[attr-defined]
    assert test.nodes == () and test.node.url == "https://test.example.com"
    assert [n.name for n in prod.nodes] == ["eu", "us"]
    us = node_environment(prod, prod.nodes[1])
    assert us.name == "prod@us" and us.node.url == "https://dss-us.example.com"
    assert us.node.tls.ca_bundle == "/etc/ssl/us.pem"
    assert us.connection_remappings == {"warehouse": "warehouse_us"}
    assert node_environment(prod, prod.nodes[0]).connection_remappings == {"warehouse": "warehouse_prod"}
    assert us.smoke == ("TEST_SMOKE",)


def test_an_environment_needs_a_url_or_nodes(tmp_path: Path) -> None:
    text = FLEET.replace("    url: https://test.example.com\n", "")
    assert "missing required key 'url'" in error(tmp_path, text)


def test_a_node_needs_a_name_and_is_checked_like_a_node(tmp_path: Path) -> None:
    assert "name" in error(tmp_path, FLEET.replace("      - name: eu\n        url", "      - url"))
    assert "plain http://" in error(tmp_path, FLEET.replace("https://dss-eu", "http://dss-eu"))
    typo = FLEET.replace("        tls: {verify", "        tlz: {verify")
    assert "unknown key" in error(tmp_path, typo).lower()


def test_commands_without_fleet_support_refuse_a_multi_node_environment(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    path = tmp_path / "mlcd.yaml"
    path.write_text(FLEET)
    env = {**os.environ, "MLCD_CONFIG": str(path), "MLCD_OUT_DIR": str(tmp_path / ".mlcd")}
    proc = subprocess.run(
        [sys.executable, "-m", "mlcd", "run", "--envs", "prod"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("mlcd run: error:")]
    assert lines == [
        "mlcd run: error: mlcd run does not support environment(s) with several nodes yet: prod "
        "(fix: run deploy, test and smoke on them as separate commands (as the Jenkins steps do))"
    ]
