"""The `deployer` keys of mlcd.yaml: what a user sees for good and bad Project Deployer settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlcd.config import load_config
from mlcd.errors import ConfigError, ExitCode

BASE = """\
project: CHURN
allow_insecure_http: {insecure}
design: {{url: https://dss-design.example.com, api_key_env: DSS_DESIGN_API_KEY}}
{top}
environments:
  - name: test
    url: https://dss-test.example.com
    api_key_env: DSS_TEST_API_KEY
  - name: prod
    url: https://dss-prod.example.com
    api_key_env: DSS_PROD_API_KEY
    deployer: {prod}
"""
TOP = "deployer: {url: https://dss-deployer.example.com/, api_key_env: DSS_DEPLOYER_API_KEY}"


def load(
    tmp_path: Path, *, top: str = TOP, prod: str = "{infra: prod-infra}", insecure: str = "false"
) -> Any:
    path = tmp_path / "mlcd.yaml"
    path.write_text(BASE.format(top=top, prod=prod, insecure=insecure))
    return load_config(path)


def test_an_environment_with_deployer_is_deployed_through_it_the_others_directly(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    test, prod = cfg.environments
    assert test.deployer is None
    assert prod.deployer.infra == "prod-infra" and prod.deployer.deployment is None
    assert prod.deployer.node.url == "https://dss-deployer.example.com"
    assert prod.deployer.node.api_key_env == "DSS_DEPLOYER_API_KEY"
    assert prod.deployer.allowed_health == ("HEALTHY",)
    assert prod.node.url == "https://dss-prod.example.com"  # the infrastructure's node (scenarios)


def test_per_environment_deployer_node_and_health_policy(tmp_path: Path) -> None:
    prod = (
        "{infra: p, deployment: CHURN-prod, allow_warning: true, url: https://other.example.com, "
        "api_key_env: K2}"
    )
    cfg = load(tmp_path, top="", prod=prod)
    dep = cfg.environments[1].deployer
    assert (dep.node.url, dep.node.api_key_env) == ("https://other.example.com", "K2")
    assert dep.deployment == "CHURN-prod"
    assert dep.allowed_health == ("HEALTHY", "WARNING")


@pytest.mark.parametrize(
    ("top", "prod", "insecure", "expected"),
    [
        ("", "{infra: prod-infra}", "false", "no deployer url and api_key_env are given"),
        (TOP, "{infra: ../x}", "false", "environments[1].deployer.infra"),
        (TOP, "{infra: p, allow_warnings: true}", "false", "allow_warning"),
        (TOP.replace("https", "http"), "{infra: p}", "false", "plain http:// URL"),
        (TOP, "{infra: p, api_key: abcd1234EFGH5678ijkl9012MNOP}", "false", "literal secret"),
    ],
)
def test_bad_deployer_settings_are_one_line_exit_2(
    tmp_path: Path, top: str, prod: str, insecure: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, top=top, prod=prod, insecure=insecure)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert expected in info.value.one_line() and "\n" not in info.value.one_line()
