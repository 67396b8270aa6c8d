"""Deployment targets: the thing that puts a bundle on an environment, behind one interface.

The release core (deploy steps, rollback, gates) talks only to a
:class:`DeploymentTarget`. An automation node reached with its own API key is
:class:`AutomationNodeTarget`; an environment deployed through the Project
Deployer is :class:`mlcd.release.deployer_target.ProjectDeployerTarget`, where
"the project" is its deployment on an infrastructure, "import" publishes to the
deployer and "activate" is the deployment's update, waited on with a deadline and
followed by its health gate. Both use the same decision table and ledger.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlcd.errors import MlcdError

if TYPE_CHECKING:
    from mlcd.audit import AuditTrail
    from mlcd.config import EnvironmentConfig
    from mlcd.dss.node import DSSNode
    from mlcd.testing_gate import GateOutcome


class DeploymentTarget(Protocol):
    """What the release core needs from the place a project's bundles are activated."""

    name: str  # the environment's name (used in messages and audit records)
    project: str

    def project_exists(self) -> bool:
        """Whether the project exists there."""

    def active_bundle(self) -> str | None:
        """The active bundle's id (None: no project, or nothing active)."""

    def imported_bundles(self) -> dict[str, dict[str, Any]]:
        """The imported bundles by id ({} when the project does not exist)."""

    def connections(self) -> tuple[set[str] | None, str | None]:
        """(connection names there, None), or (None, why they cannot be listed)."""

    def remappings(self) -> dict[str, str]:
        """Connection remappings already in the project's activation settings."""

    def set_remappings(self, remappings: dict[str, str]) -> bool:
        """Write connection remappings into the activation settings; True when something changed."""

    def create_from_bundle(self, archive: Path) -> None:
        """Create the project from a bundle archive (first deploy)."""

    def import_bundle(self, archive: Path, bundle_id: str) -> None:
        """Import a bundle archive into the existing project."""

    def preload(self, bundle_id: str) -> None:
        """Preload an imported bundle (code environments, plugins) before activating it."""

    def activate(self, bundle_id: str, scenarios_active: dict[str, bool] | None = None) -> dict[str, Any]:
        """Activate an imported bundle (with the remappings in its settings); the activation report.

        ``scenarios_active``: scenario id -> whether its automatic triggers are on after the
        activation (others keep their state); None: all keep theirs.

        Raises when the bundle could not be made active (through a deployer: the update failed,
        was aborted at its deadline, or ended with a health that does not pass).
        """

    def scenario_ids(self) -> list[str]:
        """Ids of the project's scenarios."""

    # -- per-environment project settings (mlcd.yaml variables / scenarios / code_env_remappings) --
    # A deployer target keeps these in the deployment's settings (localVariables, scenariosToActivate,
    # bundleContainerSettings.remapping.codeEnvs) and applies them with its update.
    def local_variables(self) -> dict[str, Any]:
        """The project's local variables there ({} when the project does not exist)."""

    def set_local_variables(self, values: dict[str, Any], remove: frozenset[str] = frozenset()) -> bool:
        """Set ``values`` and delete ``remove`` (others kept), then read back: ``DSSSettingsNotKept`` if not
        kept (exit 8). True when something changed."""

    def scenario_states(self) -> dict[str, bool]:
        """Scenario id -> whether its automatic triggers are active there."""

    def code_env_remappings(self) -> dict[str, str]:
        """Code-env remappings in the project's activation settings."""

    def set_code_env_remappings(
        self, remappings: dict[str, str], remove: frozenset[str] = frozenset()
    ) -> bool:
        """Write code-env remappings (drop ``remove``, others kept), then read back (DSSSettingsNotKept)."""

    def run_scenarios(
        self,
        env: EnvironmentConfig,
        ids: list[str],
        audit: AuditTrail,
        progress: Any,
        *,
        kind: str,
        bundle_id: str | None,
    ) -> GateOutcome:
        """Run scenarios as a gate (waiting, retrying flaky ones) and return their outcome."""


class AutomationNodeTarget:
    """An automation node: bundles are imported, preloaded and activated there directly."""

    def __init__(self, node: DSSNode, project: str, name: str) -> None:
        self.node = node
        self.project = project
        self.name = name

    def project_exists(self) -> bool:
        """Whether the project exists on the node."""
        return self.node.project_exists(self.project)

    def active_bundle(self) -> str | None:
        """The active bundle, None when the project does not exist."""
        return self.node.active_bundle_id(self.project)

    def imported_bundles(self) -> dict[str, dict[str, Any]]:
        """Imported bundles by id."""
        return {
            str(b.get("bundleId")): b
            for b in self.node.list_imported_bundles(self.project)
            if b.get("bundleId")
        }

    def connections(self) -> tuple[set[str] | None, str | None]:
        """Connection names, or why unknown (a non-admin key cannot list them); other errors propagate."""
        from mlcd.dss.errors import DSSForbidden, DSSNotFound

        try:
            listed = self.node.list_connections()
        except DSSForbidden:
            return None, "unknown (the key is not admin)"
        except DSSNotFound:
            return None, "unknown (the node cannot list connections)"
        return set(listed), None

    def remappings(self) -> dict[str, str]:
        """Remappings in the project's activation settings ({} if the node has none)."""
        from mlcd.dss.errors import DSSNotFound

        try:
            return self.node.get_connection_remappings(self.project)
        except DSSNotFound:
            return {}

    def set_remappings(self, remappings: dict[str, str]) -> bool:
        """Write remappings into the project's activation settings."""
        return self.node.set_connection_remappings(self.project, remappings)

    def create_from_bundle(self, archive: Path) -> None:
        """Create the project from the archive."""
        self.node.create_project_from_bundle(archive)

    def import_bundle(self, archive: Path, bundle_id: str) -> None:
        """Import the archive into the project."""
        self.node.import_bundle(self.project, archive, bundle_id=bundle_id)

    def preload(self, bundle_id: str) -> None:
        """Preload the bundle."""
        self.node.preload_bundle(self.project, bundle_id)

    def activate(self, bundle_id: str, scenarios_active: dict[str, bool] | None = None) -> dict[str, Any]:
        """Activate the bundle (``scenariosActiveOnActivation``); DSS's activation report."""
        return self.node.activate_bundle(self.project, bundle_id, scenarios_active or None)

    def scenario_ids(self) -> list[str]:
        """The project's scenario ids."""
        return [str(s.get("id")) for s in self.node.list_scenarios(self.project)]

    def local_variables(self) -> dict[str, Any]:
        """GET /projects/{key}/variables/ ``local``."""
        from mlcd.dss import localsettings

        return localsettings.local_variables(self.node, self.project) if self.project_exists() else {}

    def set_local_variables(self, values: dict[str, Any], remove: frozenset[str] = frozenset()) -> bool:
        """PUT /projects/{key}/variables/ with the changed ``local`` part, then read back."""
        from mlcd.dss import localsettings

        return localsettings.set_local_variables(self.node, self.project, values, remove)

    def scenario_states(self) -> dict[str, bool]:
        """``active`` of each scenario listed by GET /projects/{key}/scenarios/."""
        from mlcd.dss import localsettings

        return localsettings.scenario_states(self.node, self.project) if self.project_exists() else {}

    def code_env_remappings(self) -> dict[str, str]:
        """``bundleContainerSettings.remapping.codeEnvs`` of the project's settings (inferred key)."""
        from mlcd.dss import localsettings

        return localsettings.code_env_remappings(self.node, self.project) if self.project_exists() else {}

    def set_code_env_remappings(
        self, remappings: dict[str, str], remove: frozenset[str] = frozenset()
    ) -> bool:
        """Write code-env remappings into the project's settings, then read back."""
        from mlcd.dss import localsettings

        return localsettings.set_code_env_remappings(self.node, self.project, remappings, remove)

    def run_scenarios(
        self,
        env: EnvironmentConfig,
        ids: list[str],
        audit: AuditTrail,
        progress: Any,
        *,
        kind: str,
        bundle_id: str | None,
    ) -> GateOutcome:
        """Run scenarios on the node with :func:`mlcd.testing_gate.run_scenarios`."""
        from mlcd.testing_gate import run_scenarios

        return run_scenarios(
            self.node, self.project, env, ids, audit, progress, kind=kind, bundle_id=bundle_id
        )


def active_or_none(target: DeploymentTarget) -> str | None:
    """The active bundle, or None when the target cannot say (used only to describe a failure)."""
    try:
        return target.active_bundle()
    except MlcdError:
        return None
