"""The API-service deployment target: an API Deployer deployment switched between service versions.

It has the shape of :class:`mlcd.release.target.DeploymentTarget` (the "active bundle"
is the version the deployment maps all traffic to; "activate" switches the deployment
to a version, updates it and requires HEALTHY), so the release core's decision table
and ledger apply unchanged. The bundle-only parts of that protocol (archives,
connections, scenarios) do not exist for an API service: they answer "nothing" or,
for the calls that would put an archive somewhere, refuse.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcd.dss.apideployer import (
    APIDeployerNode,
    health_messages,
    service_urls,
    single_generation,
    with_single_generation,
)
from mlcd.dss.errors import DSSNotFound
from mlcd.dss.futures import wait_for_future
from mlcd.errors import ConfigError, DeployFailed, MlcdError

if TYPE_CHECKING:
    from mlcd.apiservice.config import ApiEnvironment, ApiServiceConfig
    from mlcd.audit import AuditTrail
    from mlcd.config import EnvironmentConfig
    from mlcd.testing_gate import GateOutcome


class UnhealthyDeployment(MlcdError):
    """The deployment did not end HEALTHY on the version asked for."""

    category = "deploy"


class ApiServiceTarget:
    """One service's deployment on one API Deployer infrastructure."""

    def __init__(self, node: APIDeployerNode, service: ApiServiceConfig, env: ApiEnvironment) -> None:
        self.node = node
        self.service = service
        self.env = env
        self.name = service.ledger_name(env.name)
        self.project = service.project
        self.last_report: dict[str, Any] = {}

    # -- reads -----------------------------------------------------------------------------------
    def check_infra(self) -> None:
        """ConfigError (exit 2) when the API Deployer has no such infrastructure."""
        try:
            self.node.infra(self.env.infra)
        except DSSNotFound:
            raise ConfigError(
                f"the API Deployer has no infrastructure '{self.env.infra}' (API service "
                f"'{self.service.id}', environment '{self.env.name}')",
                "fix api_services.services[].environments.<env>.infra in mlcd.yaml, "
                "or create the infrastructure on the API Deployer",
            ) from None

    def check_service(self) -> None:
        """ConfigError (exit 2) when the design node lacks the service or one of its configured endpoints."""
        try:
            settings = self.node.service_settings(self.project, self.service.id)
        except DSSNotFound:
            raise ConfigError(
                f"the design node has no API service '{self.service.id}' in project {self.project}",
                "fix api_services.services[].id (or project) in mlcd.yaml",
            ) from None
        there = [str(e.get("id")) for e in settings.get("endpoints") or [] if isinstance(e, dict)]
        missing = [e for e in self.service.endpoints if e not in there]
        if missing:
            raise ConfigError(
                f"API service '{self.service.id}' has no endpoint '{missing[0]}' on the design node",
                "fix api_services.services[].endpoints in mlcd.yaml "
                f"(the service has: {', '.join(there) or 'none'})",
            )

    def settings(self) -> dict[str, Any] | None:
        """The deployment's settings, None when it does not exist yet."""
        try:
            settings = self.node.deployment_settings(self.env.deployment)
        except DSSNotFound:
            return None
        for key, want in (("publishedServiceId", self.service.id), ("infraId", self.env.infra)):
            if settings.get(key) not in (None, want):
                raise ConfigError(
                    f"deployment '{self.env.deployment}' on the API Deployer has {key} "
                    f"'{settings.get(key)}', not '{want}'",
                    "give this environment its own deployment id (environments.<env>.deployment)",
                )
        return settings

    def project_exists(self) -> bool:
        """Whether the deployment exists."""
        return self.settings() is not None

    def active_bundle(self) -> str | None:
        """The version the deployment maps all traffic to (None: no deployment yet)."""
        settings = self.settings()
        if settings is None:
            return None
        mapping = settings.get("generationsMapping")
        version = single_generation(settings)
        if version is None and mapping:
            raise ConfigError(
                f"deployment '{self.env.deployment}' does not map traffic to a single version "
                f"(mode {mapping.get('mode') if isinstance(mapping, dict) else mapping!r})",
                "set a single-generation mapping on the API Deployer first (mlcd reverts to single versions)",
            )
        return version

    def imported_bundles(self) -> dict[str, dict[str, Any]]:
        """The service's versions published on the API Deployer."""
        published = self.node.published_service(self.service.id) or {}
        return {str(p.get("id")): p for p in published.get("packages") or [] if p.get("id")}

    def status(self) -> tuple[str, list[str], list[str]]:
        """(health, health messages, service URLs) of the deployment."""
        light, heavy = self.node.deployment_status(self.env.deployment)
        return str(heavy.get("health") or "UNKNOWN"), health_messages(heavy), service_urls(light, heavy)

    # -- changes ---------------------------------------------------------------------------------
    def publish(self, version: str, release_notes: str | None) -> bool:
        """Package ``version`` on the design node and publish it (False: it was published already)."""
        if version in self.imported_bundles():
            return False
        try:
            self.node.create_package(self.project, self.service.id, version, release_notes)
        except DSSNotFound:
            raise ConfigError(
                f"the design node has no API service '{self.service.id}' in project {self.project}",
                "fix api_services.services[].id (or project) in mlcd.yaml",
            ) from None
        self.node.publish_package(self.project, self.service.id, version)
        return True

    def activate(self, bundle_id: str, scenarios_active: dict[str, bool] | None = None) -> dict[str, Any]:
        """Map all traffic to version ``bundle_id``, update, wait, require HEALTHY on it; the report."""
        version = bundle_id
        settings = self.settings()
        if settings is None:
            self.node.create_deployment(self.env.deployment, self.service.id, self.env.infra, version)
            settings = self.settings() or {}
        if single_generation(settings) != version:
            self.node.save_deployment_settings(self.env.deployment, with_single_generation(settings, version))
        kept = single_generation(self.settings() or {})
        if kept != version:
            raise DeployFailed(
                f"the API Deployer did not keep version {version} in deployment '{self.env.deployment}' "
                f"(it maps {kept})",
                "look at the deployment's settings on the API Deployer",
            )
        future = self.node.start_update(self.env.deployment)
        wait_for_future(
            self.node, future, self.service.update_timeout_s,
            operation=f"update deployment {self.env.deployment} to {version}",
        )  # fmt: skip
        health, messages, urls = self.status()
        self.last_report = {"version": version, "health": health, "messages": messages, "urls": urls}
        if health != "HEALTHY":
            raise UnhealthyDeployment(
                f"deployment '{self.env.deployment}' is {health} after the update to {version}"
                + (f": {messages[0]}" if messages else ""),
                "read the health messages in the stage file and on the API Deployer",
            )
        if not urls:
            raise UnhealthyDeployment(
                f"deployment '{self.env.deployment}' reports no API node URL", "check the infrastructure"
            )
        return self.last_report

    # -- the bundle-only parts of DeploymentTarget -----------------------------------------------
    def connections(self) -> tuple[set[str] | None, str | None]:
        """An API service has no connections to check."""
        return None, "not applicable to an API service"

    def remappings(self) -> dict[str, str]:
        """No connection remappings."""
        return {}

    def set_remappings(self, remappings: dict[str, str]) -> bool:
        """Nothing to write."""
        return False

    def create_from_bundle(self, archive: Path) -> None:
        """Refused: an API version is packaged and published (:meth:`publish`), not imported."""
        raise MlcdError("an API service target takes published versions, not bundle archives", "use mlcd api")

    def import_bundle(self, archive: Path, bundle_id: str) -> None:
        """Refused, as :meth:`create_from_bundle`."""
        self.create_from_bundle(archive)

    def preload(self, bundle_id: str) -> None:
        """The API Deployer has no separate preload step."""

    def scenario_ids(self) -> list[str]:
        """No scenarios: the gates are prediction requests."""
        return []

    def local_variables(self) -> dict[str, Any]:
        """An API service has no project variables."""
        return {}

    def set_local_variables(self, values: dict[str, Any], remove: frozenset[str] = frozenset()) -> bool:
        """Refused: project variables belong to automation-node environments."""
        raise MlcdError("an API service has no project variables", "set them per environment")

    def scenario_states(self) -> dict[str, bool]:
        """No scenarios."""
        return {}

    def code_env_remappings(self) -> dict[str, str]:
        """No code-env remappings (the API Deployer's infrastructure holds them)."""
        return {}

    def set_code_env_remappings(
        self, remappings: dict[str, str], remove: frozenset[str] = frozenset()
    ) -> bool:
        """Refused, as :meth:`set_local_variables`."""
        raise MlcdError("an API service has no code-env remappings here", "set them on the API Deployer")

    def run_scenarios(
        self, env: EnvironmentConfig, ids: list[str], audit: AuditTrail, progress: Any, *,
        kind: str, bundle_id: str | None,
    ) -> GateOutcome:  # fmt: skip
        """Refused: an API service is gated by :mod:`mlcd.apiservice.gates`."""
        raise MlcdError("an API service has no scenarios", "use mlcd api gate")


if TYPE_CHECKING:
    from mlcd.release.target import DeploymentTarget

    def _is_a_deployment_target(target: ApiServiceTarget) -> DeploymentTarget:
        """mypy checks here that the API target has the release core's target protocol."""
        return target
