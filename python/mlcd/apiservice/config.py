"""The ``api_services:`` section of `mlcd.yaml`, read after :func:`mlcd.config.load_config` validated it.

The schema (``schema/mlcd.schema.json``, ``$defs/api_service``) checks shapes and
ranges (concurrency at least 1, latency budgets above 0); this module builds typed
objects and checks what a schema cannot (a load gate needs a duration or a
request count; the deployer URL is https unless ``allow_insecure_http``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlcd.config import MlcdConfig, NodeConfig, _node
from mlcd.errors import ConfigError

DEFAULT_UPDATE_TIMEOUT_S = 600.0
DEFAULT_REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CorrectnessGate:
    """Labelled requests (JSON lines) and the score they must reach."""

    requests: Path
    threshold: float
    metric: str = "accuracy"  # accuracy (at least threshold) | mae (at most threshold)
    classes: tuple[Any, ...] = ()


@dataclass(frozen=True)
class LoadGate:
    """Fixed concurrency for a fixed duration (or request count) and the limits the numbers must keep."""

    concurrency: int
    p95_ms: float
    duration_s: float | None = None
    requests: int | None = None
    warmup_requests: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    min_rps: float | None = None
    max_error_rate: float = 0.0
    max_p95_ratio: float | None = None  # regression gate: new p95 at most this times the live version's


@dataclass(frozen=True)
class ApiEnvironment:
    """Where a service goes in one environment: an API Deployer infrastructure and a deployment id."""

    name: str
    infra: str
    deployment: str


@dataclass(frozen=True)
class ApiServiceConfig:
    """One API service: its design-node id, project, endpoints, environments and gates."""

    id: str
    project: str
    endpoints: tuple[str, ...]
    environments: dict[str, ApiEnvironment]
    api_key_env: str | None
    correctness: CorrectnessGate | None
    load: LoadGate | None
    update_timeout_s: float = DEFAULT_UPDATE_TIMEOUT_S
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    rollback_on_failure: bool = True

    def environment(self, name: str) -> ApiEnvironment:
        """The service's environment ``name``; ConfigError (one line, a fix) otherwise."""
        if name in self.environments:
            return self.environments[name]
        raise ConfigError(
            f"API service '{self.id}' has no environment '{name}' in api_services",
            _choose(name, list(self.environments), "environment"),
        )

    def ledger_name(self, env: str) -> str:
        """The name under which the ledger records this service on ``env`` (``api:<service>@<env>``)."""
        return f"api:{self.id}@{env}"


@dataclass(frozen=True)
class ApiServices:
    """The whole ``api_services`` section."""

    deployer: NodeConfig
    services: dict[str, ApiServiceConfig]
    source_path: Path

    def service(self, name: str) -> ApiServiceConfig:
        """The service ``name``; ConfigError naming the configured ones otherwise."""
        if name in self.services:
            return self.services[name]
        raise ConfigError(
            f"API service '{name}' is not defined in api_services of {self.source_path}",
            _choose(name, list(self.services), "service"),
        )


def _choose(name: str, names: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}use one of: {', '.join(names)}" if names else f"add the {what} to mlcd.yaml"


def load_api_services(config: MlcdConfig) -> ApiServices:
    """The ``api_services`` section of the (already validated) configuration file."""
    data = yaml.safe_load(config.source_path.read_text(encoding="utf-8")) or {}
    section = data.get("api_services")
    if not section:
        raise ConfigError(
            f"{config.source_path} has no api_services section",
            "add api_services (docs/configuration.md, `api_services`)",
        )
    deployer = _node(section["deployer"]) if section.get("deployer") else config.design
    if deployer.url.lower().startswith("http://") and not config.allow_insecure_http:
        raise ConfigError(
            "api_services.deployer.url is a plain http:// URL, so API keys would travel unencrypted",
            "use https://, or set allow_insecure_http: true at the top of mlcd.yaml (loopback only)",
        )
    services: dict[str, ApiServiceConfig] = {}
    for item in section["services"]:
        svc = _service(item, config)
        if svc.id in services:
            raise ConfigError(
                f"API service '{svc.id}' is defined twice in api_services", "give each service one entry"
            )
        services[svc.id] = svc
    return ApiServices(deployer=deployer, services=services, source_path=config.source_path)


def _service(item: dict[str, Any], config: MlcdConfig) -> ApiServiceConfig:
    sid = str(item["id"])
    envs = {
        name: ApiEnvironment(name, str(e["infra"]), str(e.get("deployment") or f"{sid}-on-{e['infra']}"))
        for name, e in item["environments"].items()
    }
    gates = item.get("gates") or {}
    timeouts = item.get("timeouts") or {}
    return ApiServiceConfig(
        id=sid,
        project=str(item.get("project") or config.project),
        endpoints=tuple(str(e) for e in item["endpoints"]),
        environments=envs,
        api_key_env=item.get("api_key_env"),
        correctness=_correctness(gates.get("correctness"), config.source_path.parent),
        load=_load(sid, gates.get("load")),
        update_timeout_s=float(timeouts.get("update", DEFAULT_UPDATE_TIMEOUT_S)),
        request_timeout_s=float(timeouts.get("request", DEFAULT_REQUEST_TIMEOUT_S)),
        rollback_on_failure=bool(item.get("rollback_on_failure", True)),
    )


def _correctness(data: dict[str, Any] | None, base: Path) -> CorrectnessGate | None:
    if not data:
        return None
    return CorrectnessGate(
        requests=base / str(data["requests"]),
        threshold=float(data["threshold"]),
        metric=str(data.get("metric", "accuracy")),
        classes=tuple(data.get("classes") or ()),
    )


def _load(sid: str, data: dict[str, Any] | None) -> LoadGate | None:
    if not data:
        return None
    if ("duration_s" in data) == ("requests" in data):
        raise ConfigError(
            f"the load gate of API service '{sid}' needs exactly one of duration_s and requests",
            "give either duration_s (seconds) or requests (a count)",
        )
    p95 = float(data["p95_ms"])
    for key, sign in (("p50_ms", 1.0), ("p99_ms", -1.0)):
        if key in data and sign * (float(data[key]) - p95) > 0:
            raise ConfigError(
                f"the load gate of API service '{sid}' has {key} {data[key]} on the wrong side of "
                f"p95_ms {p95:g}",
                "make p50_ms <= p95_ms <= p99_ms",
            )
    return LoadGate(
        concurrency=int(data["concurrency"]),
        p95_ms=p95,
        duration_s=float(data["duration_s"]) if "duration_s" in data else None,
        requests=int(data["requests"]) if "requests" in data else None,
        warmup_requests=int(data.get("warmup_requests", 0)),
        p50_ms=float(data["p50_ms"]) if "p50_ms" in data else None,
        p99_ms=float(data["p99_ms"]) if "p99_ms" in data else None,
        min_rps=float(data["min_rps"]) if "min_rps" in data else None,
        max_error_rate=float(data.get("max_error_rate", 0.0)),
        max_p95_ratio=float(data["max_p95_ratio"]) if "max_p95_ratio" in data else None,
    )
