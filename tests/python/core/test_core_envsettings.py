"""mlcd.yaml's per-environment settings: variables, scenario states, code-env remappings (issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcd.config import parse_config
from mlcd.envsettings import SecretValue
from mlcd.errors import ConfigError

BASE = """project: CHURN
allow_insecure_http: true
design: {url: "http://127.0.0.1:11200", api_key_env: DSS_DESIGN_API_KEY}
environments:
  - name: test
    url: http://127.0.0.1:11201
    api_key_env: DSS_TEST_API_KEY
"""


def load(extra: str):  # type: ignore[no-untyped-def]
    return parse_config(BASE + extra, Path("mlcd.yaml")).environments[0].settings


def test_all_three_are_read() -> None:
    s = load(
        "    variables: {env: prod, threshold: 0.8, token: {value_env: PROD_TOKEN}}\n"
        "    scenarios: {active: [NIGHTLY], inactive: [RETRAIN]}\n"
        "    code_env_remappings: {py39: py39_prod}\n"
    )
    assert s.variables == {"env": "prod", "threshold": 0.8, "token": SecretValue("PROD_TOKEN")}
    assert s.scenarios_active == {"NIGHTLY": True, "RETRAIN": False}
    assert s.code_env_remappings == {"py39": "py39_prod"}
    assert s.secret_names() == {"token"}


def test_defaults_manage_nothing() -> None:
    assert load("").empty
    assert load("    scenarios: keep\n").scenarios_active is None


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("    scenarios: {active: [A], inactive: [A]}\n", "listed both as active and inactive"),
        ("    scenarios: sometimes\n", "'environments[0].scenarios'"),
        ("    scenarios: {actve: [A]}\n", "did you mean 'active'"),
        ("    variables: {pw: {value_envv: X}}\n", "did you mean 'value_env'"),
        ("    variables: {pw: {value_env: 'not a name'}}\n", "variables.pw.value_env"),
        ("    code_env_remappings: {py39: ''}\n", "code_env_remappings"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_key(extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(extra)
    line = info.value.one_line()
    assert "\n" not in line and expected in line and "mlcd.yaml:" in line


def test_a_literal_secret_as_a_variable_value_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load("    variables: {token_value: 'sk9Jq2LmX8vPz4RtY7wK3nB6'}\n")
    assert "literal secret" in info.value.one_line()
    assert "sk9Jq2" not in info.value.one_line()


def test_changes_and_the_record_before_never_hold_a_secret_value() -> None:
    from mlcd.envsettings import EnvSettings
    from mlcd.release.envapply import SettingsNow, before_record, changes

    settings = EnvSettings(
        {"env": "prod", "token": SecretValue("T"), "added": 1},
        {"NIGHTLY": True},
        {"py39": "py39_prod"},
    )
    now = SettingsNow({"env": "test", "token": "old-secret-value", "other": "x"}, {"NIGHTLY": False}, {})
    lines = [
        c.line() for c in changes(settings, now, {"env": "prod", "token": "new-secret-value", "added": 1})
    ]
    assert lines == [
        "variable added: (unset) -> 1",
        'variable env: "test" -> "prod"',
        "variable token: (secret) -> (secret)",
        "scenario NIGHTLY: inactive -> active",
        "code env remapping py39: (none) -> py39_prod",
    ]
    unknown = changes(settings, now, {"env": "prod", "added": 1})  # the secret's variable is not set here
    assert [c.compared for c in unknown if c.name == "token"] == [False]
    record = before_record(settings, now)
    assert record["variables"] == {"env": "test"} and record["secretVariables"] == ["token"]
    assert record["absentVariables"] == ["added"] and record["scenarios"] == {"NIGHTLY": False}
    assert "secret-value" not in repr(record)
    same = SettingsNow({"env": "prod", "token": "v", "added": 1}, {"NIGHTLY": True}, {"py39": "py39_prod"})
    assert changes(settings, same, {"env": "prod", "token": "v", "added": 1}) == []
