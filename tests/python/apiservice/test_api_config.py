"""`api_services:` in mlcd.yaml: what is accepted, and the one-line refusals of what makes no sense."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlcd.apiservice.config import load_api_services
from mlcd.config import load_config
from mlcd.errors import ConfigError

BASE: dict[str, Any] = {
    "project": "CHURN",
    "design": {"url": "https://design.example.com", "api_key_env": "DESIGN_KEY"},
    "environments": [{"name": "prod", "url": "https://auto.example.com", "api_key_env": "PROD_KEY"}],
}


def _service(**over: Any) -> dict[str, Any]:
    svc: dict[str, Any] = {
        "id": "churn",
        "endpoints": ["predict_churn"],
        "environments": {"prod": {"infra": "api-prod"}},
        "gates": {
            "correctness": {"requests": "req.jsonl", "threshold": 0.8},
            "load": {"concurrency": 2, "duration_s": 3, "p95_ms": 100},
        },
    }
    svc.update(over)
    return svc


def _load(tmp_path: Path, section: dict[str, Any]) -> Any:
    path = tmp_path / "mlcd.yaml"
    path.write_text(yaml.safe_dump({**BASE, "api_services": section}))
    return load_api_services(load_config(path))


def test_defaults_and_paths(tmp_path: Path) -> None:
    services = _load(tmp_path, {"services": [_service()]})
    svc = services.service("churn")
    assert services.deployer.url == "https://design.example.com"  # the design node runs the deployer
    assert svc.project == "CHURN" and svc.environment("prod").deployment == "churn-on-api-prod"
    assert svc.correctness is not None and svc.correctness.requests == tmp_path / "req.jsonl"
    assert svc.load is not None and svc.load.duration_s == 3 and svc.load.requests is None
    assert svc.ledger_name("prod") == "api:churn@prod"


@pytest.mark.parametrize(
    ("load", "words"),
    [
        ({"concurrency": 0, "duration_s": 3, "p95_ms": 100}, "concurrency"),
        ({"concurrency": 2, "duration_s": 3, "p95_ms": 0}, "p95_ms"),
        ({"concurrency": 2, "duration_s": 3, "p95_ms": -5}, "p95_ms"),
        ({"concurrency": 2, "p95_ms": 100}, "exactly one of duration_s and requests"),
        ({"concurrency": 2, "duration_s": 3, "requests": 10, "p95_ms": 100}, "exactly one of"),
        ({"concurrency": 2, "duration_s": 3, "p95_ms": 100, "p50_ms": 200}, "p50_ms"),
        ({"concurrency": 2, "duration_s": 3, "p95_ms": 100, "p99_ms": 50}, "p99_ms"),
        ({"concurrency": 2, "duration_s": 3, "p95_ms": 100, "max_error_rate": 2}, "max_error_rate"),
    ],
)
def test_thresholds_that_make_no_sense_are_refused(tmp_path: Path, load: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(
            tmp_path,
            {"services": [_service(gates={"load": load, "correctness": {"requests": "r", "threshold": 1}})]},
        )
    assert words in info.value.one_line() and "(fix: " in info.value.one_line()


def test_unknown_service_and_environment_name_the_known_ones(tmp_path: Path) -> None:
    services = _load(tmp_path, {"services": [_service()]})
    with pytest.raises(ConfigError, match="did you mean 'churn'"):
        services.service("chrun")
    with pytest.raises(ConfigError, match="use one of: prod"):
        services.service("churn").environment("staging")


def test_plain_http_deployer_is_refused_without_allow_insecure_http(tmp_path: Path) -> None:
    deployer = {"url": "http://deployer.example.com", "api_key_env": "DEPLOYER_KEY"}
    with pytest.raises(ConfigError, match="plain http://"):
        _load(tmp_path, {"deployer": deployer, "services": [_service()]})


def test_a_plain_http_api_node_is_refused_when_a_key_would_travel_to_it() -> None:
    from types import SimpleNamespace

    from mlcd.apiservice.release import refuse_plain_http

    rel: Any = SimpleNamespace(service=SimpleNamespace(id="churn"), api_key="k", allow_insecure_http=False)
    refuse_plain_http(rel, ["https://api-1.example.com/public/api/v1/churn"])
    with pytest.raises(ConfigError, match="plain http://"):
        refuse_plain_http(rel, ["http://api-2.example.com/public/api/v1/churn"])
    rel.allow_insecure_http = True
    refuse_plain_http(rel, ["http://api-2.example.com/public/api/v1/churn"])
