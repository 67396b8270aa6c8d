"""mlcd.yaml validation: what a user sees for good and bad configuration files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlcd.config import load_config, read_secret
from mlcd.errors import ConfigError, ExitCode, InputError
from mlcd.redact import redact

GOOD = """\
project: CHURN
allow_insecure_http: true
design:
  url: http://127.0.0.1:11200
  api_key_env: DSS_DESIGN_API_KEY
bundle:
  id_format: "{project}_{git_sha}_b{build}"
artifact_repository:
  url: http://127.0.0.1:8081/mlcd-bundles/
  username_env: ARTIFACTS_USER
  password_env: ARTIFACTS_PASSWORD
environments:
  - name: test
    url: http://127.0.0.1:11201
    api_key_env: DSS_TEST_API_KEY
    tls: {verify: false}
    connection_remappings: {warehouse: warehouse_test}
    tests: {prefix: TEST_, exclude: [TEST_BROKEN]}
    smoke: TEST_SMOKE
    flaky: {TEST_SLOW_IO: 2}
    timeouts: {scenario: 30}
  - name: prod
    url: https://dss-prod.example.com
    api_key_env: DSS_PROD_API_KEY
    tls: {verify: true, ca_bundle: /etc/ssl/corp.pem}
    approval: true
    tests: false
    smoke: [TEST_SMOKE]
    warning: pass
    rollback_on_failure: false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mlcd.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def load_error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert "\n" not in info.value.one_line()
    return info.value


def test_good_config_loads_with_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.project == "CHURN"
    assert cfg.environment_names == ["test", "prod"]
    test, prod = cfg.environments
    assert test.node.tls.requests_verify() is False
    assert prod.node.tls.requests_verify() == "/etc/ssl/corp.pem"
    assert test.smoke == ("TEST_SMOKE",)
    assert test.flaky == {"TEST_SLOW_IO": 2}
    assert test.timeouts.scenario == 30 and test.timeouts.deploy == 900
    assert test.warning == "fail" and prod.warning == "pass"
    assert test.approval is False and prod.approval is True
    assert test.rollback_on_failure is True and prod.rollback_on_failure is False
    assert cfg.artifact_repository is not None
    assert cfg.artifact_repository.url == "http://127.0.0.1:8081/mlcd-bundles"
    assert cfg.bundle.release_notes == "git"


def test_tests_selection(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    test, prod = cfg.environments
    ids = ["TEST_B", "TEST_A", "TEST_BROKEN", "TEST_SMOKE", "BUILD"]
    assert test.tests.select(ids, test.smoke) == ["TEST_A", "TEST_B"]
    assert prod.tests.select(ids, prod.smoke) == []
    explicit = load_config(
        write(tmp_path, GOOD.replace("tests: false", "tests: {scenarios: [TEST_SMOKE, TEST_B]}"))
    ).environments[1]
    assert explicit.tests.select(ids, explicit.smoke) == ["TEST_SMOKE", "TEST_B"]


def test_unknown_key_did_you_mean_with_line(tmp_path: Path) -> None:
    err = load_error(tmp_path, GOOD.replace("    approval: true", "    aproval: true"))
    text = err.one_line()
    assert "unknown key 'aproval'" in text
    assert "did you mean 'approval'" in text
    assert f"mlcd.yaml:{line_of(GOOD, 'approval: true')}:" in text


def test_unknown_top_level_key(tmp_path: Path) -> None:
    err = load_error(tmp_path, GOOD.replace("environments:", "enviroments:"))
    assert "did you mean 'environments'" in err.one_line()
    assert f"mlcd.yaml:{line_of(GOOD, 'environments:')}:" in err.one_line()


def test_missing_required_key(tmp_path: Path) -> None:
    text = GOOD.replace("    api_key_env: DSS_PROD_API_KEY\n", "")
    err = load_error(tmp_path, text)
    assert "missing required key 'api_key_env'" in err.one_line()
    assert "environments[1]" in err.one_line()
    assert f"mlcd.yaml:{line_of(GOOD, 'name: prod')}:" in err.one_line()


def test_wrong_type_names_key_and_line(tmp_path: Path) -> None:
    err = load_error(tmp_path, GOOD.replace("approval: true", "approval: sometimes"))
    assert "'environments[1].approval' must be true or false, not text" in err.one_line()
    assert f"mlcd.yaml:{line_of(GOOD, 'approval: true')}:" in err.one_line()


def test_bad_enum(tmp_path: Path) -> None:
    err = load_error(tmp_path, GOOD.replace("warning: pass", "warning: ignore"))
    assert "warning" in err.one_line() and "fail, pass" in err.one_line()


def test_duplicate_environment_names(tmp_path: Path) -> None:
    err = load_error(tmp_path, GOOD.replace("name: prod", "name: test"))
    assert "environment name 'test' is used twice" in err.one_line()
    assert f"mlcd.yaml:{line_of(GOOD, 'name: prod')}:" in err.one_line()


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    err = load_error(tmp_path, GOOD.replace("project: CHURN\n", "project: CHURN\nproject: OTHER\n"))
    assert "appears twice" in err.one_line()


def test_bad_yaml_names_line(tmp_path: Path) -> None:
    err = load_error(tmp_path, GOOD.replace("  url: http://127.0.0.1:11200", "  url: [http://x"))
    assert "not valid YAML" in err.one_line()
    assert "mlcd.yaml:" in err.one_line()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("api_key_env: DSS_TEST_API_KEY", "api_key_env: 9fA3kLq7ZxW2mN8pR4tY6vB1cD5eG0hJ"),
        ("api_key_env: DSS_TEST_API_KEY", "api_key_env: DSS_TEST_API_KEY\n    api_key: hunter2hunter2"),
        ("username_env: ARTIFACTS_USER", "username_env: ARTIFACTS_USER\n  password: hunter2"),
        ("{warehouse: warehouse_test}", "{warehouse: Qm9vZ2xlS2V5MTIzNDU2Nzg5MGFiY2RlZg}"),
        ("url: http://127.0.0.1:8081/mlcd-bundles/", "url: http://ci:pw@127.0.0.1:8081/mlcd-bundles/"),
    ],
)
def test_literal_secret_rejected_without_echoing_it(tmp_path: Path, old: str, new: str) -> None:
    err = load_error(tmp_path, GOOD.replace(old, new))
    text = err.one_line()
    assert "secret" in text or "credentials" in text
    for secret in (
        "9fA3kLq7ZxW2mN8pR4tY6vB1cD5eG0hJ",
        "hunter2",
        "Qm9vZ2xlS2V5MTIzNDU2Nzg5MGFiY2RlZg",
        ":pw@",
    ):
        assert secret not in text


def test_env_var_name_must_be_a_name(tmp_path: Path) -> None:
    err = load_error(tmp_path, GOOD.replace("api_key_env: DSS_TEST_API_KEY", "api_key_env: 'my key'"))
    assert "api_key_env" in err.one_line() and "environment variable" in err.one_line()


def test_unknown_environment_did_you_mean(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="did you mean 'prod'"):
        cfg.environment("prd")


def test_read_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSS_X_API_KEY", raising=False)
    with pytest.raises(InputError, match="set DSS_X_API_KEY"):
        read_secret("DSS_X_API_KEY", "API key of node x")
    monkeypatch.setenv("DSS_X_API_KEY", "k-123456789")
    assert read_secret("DSS_X_API_KEY", "API key of node x") == "k-123456789"
    assert redact("key is k-123456789") == "key is ***"


def test_example_configs_load() -> None:
    root = Path(__file__).resolve().parents[3]
    for path in [root / "examples" / "churn" / "mlcd.yaml", *root.glob("tests/fixtures/configs/*.yaml")]:
        if path.exists():
            assert load_config(path).environments


def test_names_and_paths_are_not_mistaken_for_secrets(tmp_path: Path) -> None:
    text = GOOD.replace("{warehouse: warehouse_test}", "{warehouse: snowflake_prod_eu_west_1_analytics2024}")
    text = text.replace("/etc/ssl/corp.pem", "/etc/pki/tls/certs/ca-bundle-2024Q3x7.crt")
    text = text.replace("smoke: TEST_SMOKE", "smoke: TEST_MODEL_PERFORMANCE_2024Q1_REGRESSION")
    cfg = load_config(write(tmp_path, text))
    assert cfg.environments[0].connection_remappings == {
        "warehouse": "snowflake_prod_eu_west_1_analytics2024"
    }


# -- ranges (declared once in the schema): the error names the value and the range ------------------
RANGE_CASES = {
    # yaml replacement of "timeouts: {scenario: 30}": (key path, value shown, range shown)
    "read_timeout: 99999999999": ("environments[0].read_timeout", "99999999999", "at most 3600"),
    "read_timeout: .inf": ("environments[0].read_timeout", ".inf", "at most 3600"),
    "read_timeout: .nan": ("environments[0].read_timeout", ".nan", "at most 3600"),
    "connect_timeout: .inf": ("environments[0].connect_timeout", ".inf", "greater than 0 and at most 300"),
    "connect_timeout: -.inf": ("environments[0].connect_timeout", "-.inf", "greater than 0"),
    "connect_timeout: 0": ("environments[0].connect_timeout", "is 0,", "greater than 0"),
    "connect_timeout: 1e15": ("environments[0].connect_timeout", "1e+15", "at most 300"),
    "timeouts: {scenario: 99999999999}": ("environments[0].timeouts.scenario", "99999999999", "86400"),
    "timeouts: {deploy: .nan}": ("environments[0].timeouts.deploy", ".nan", "at most 86400"),
    "timeouts: {lock: -5}": ("environments[0].timeouts.lock", "-5", "from 0 to 86400"),
    "timeouts: {lock: -1}": ("environments[0].timeouts.lock", "-1", "from 0 to 86400"),
    "timeouts: {lock: 86401}": ("environments[0].timeouts.lock", "86401", "from 0 to 86400"),
    "flaky: {TEST_X: 11}": ("environments[0].flaky.TEST_X", "11", "an integer from 0 to 10"),
    "flaky: {TEST_X: -1}": ("environments[0].flaky.TEST_X", "-1", "an integer from 0 to 10"),
}


def _replace_number(replacement: str) -> str:
    if replacement.startswith("flaky"):
        return GOOD.replace("flaky: {TEST_SLOW_IO: 2}", replacement)
    return GOOD.replace("timeouts: {scenario: 30}", replacement)


@pytest.mark.parametrize("replacement", sorted(RANGE_CASES))
def test_numbers_out_of_range_name_value_and_range(tmp_path: Path, replacement: str) -> None:
    """Absurd numbers (huge, .inf, .nan, 1e15, negative) are refused at load, the range in the error."""
    key, shown, wanted = RANGE_CASES[replacement]
    text = _replace_number(replacement)
    line = load_error(tmp_path, text).one_line()
    assert f"mlcd.yaml:{line_of(text, replacement.split(':')[0])}: '{key}' is " in line, line
    assert shown in line and wanted in line, line
    assert f"(fix: set '{key}' to " in line and wanted in line.split("(fix:")[1], line


@pytest.mark.parametrize(
    "replacement",
    ["read_timeout: 3600", "connect_timeout: 300", "connect_timeout: 0.01", "timeouts: {lock: 0}",
     "timeouts: {scenario: 86400, deploy: 1e3}", "flaky: {TEST_X: 0}", "flaky: {TEST_X: 10}"],
)  # fmt: skip
def test_numbers_at_the_range_boundaries_load(tmp_path: Path, replacement: str) -> None:
    """The bounds themselves are accepted; `1e3` is read as a number (YAML 1.1 would read text)."""
    cfg = load_config(write(tmp_path, _replace_number(replacement)))
    assert cfg.environments[0].name == "test"


def test_exponent_without_dot_is_a_number_not_text(tmp_path: Path) -> None:
    """`1e15` used to be reported as "must be a number, not str"; it is a number, out of range."""
    line = load_error(tmp_path, GOOD.replace("scenario: 30", "scenario: 1e15")).one_line()
    assert "is 1e+15, out of range" in line and "not str" not in line


def test_number_as_text_does_not_echo_the_text(tmp_path: Path) -> None:
    """A string where a number belongs: named as text, never echoed (it might be a secret)."""
    line = load_error(tmp_path, GOOD.replace("scenario: 30", "scenario: ten-minutes")).one_line()
    assert "must be a number, not text" in line and "ten-minutes" not in line


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("{warehouse: warehouse_test}", '{warehouse: "warehouse\\ntest"}'),
        ("{warehouse: warehouse_test}", '{"ware\\x1bhouse": warehouse_test}'),
        ("prefix: TEST_,", 'prefix: "TEST_\\t",'),
        ('"{project}_{git_sha}_b{build}"', '"{project}\\r{build}"'),
        ("ca_bundle: /etc/ssl/corp.pem", 'ca_bundle: "/etc/ssl/\\u2028corp.pem"'),
        ("url: http://127.0.0.1:11201", 'url: "http://127.0.0.1:11201/\\x00"'),
    ],
)
def test_control_characters_in_text_are_refused(tmp_path: Path, old: str, new: str) -> None:
    """Text that goes into records and messages may not hold control characters; the line stays one line."""
    line = load_error(tmp_path, GOOD.replace(old, new)).one_line()
    assert len(line.splitlines()) == 1 and "\x1b" not in line
    assert "control character" in line or "http" in line, line


def test_unknown_key_with_control_character_prints_on_one_line(tmp_path: Path) -> None:
    line = load_error(tmp_path, GOOD.replace("approval: true", '"appro\\x0bval": true')).one_line()
    assert "unknown key 'appro\\x0bval'" in line and len(line.splitlines()) == 1
