"""`ProjectDeployerTarget`: an environment deployed through the DSS Project Deployer.

The release core (deploy, rollback, gates, decision table, ledger) is the same as
for an automation node; only the steps differ:

* the environment *holds* a bundle through its deployment (the published
  project on the configured infrastructure): its settings' ``bundleId``;
* "import" publishes the archive to the deployer (read back before the update);
* "create" creates the deployment: nothing was there before, so nothing to roll back to;
* "activate" points the deployment at the bundle (read back), starts its update,
  waits on the update's future with the ``timeouts.deploy`` deadline (aborted
  past it), then requires the deployment's health (``HEALTHY``; ``WARNING``
  too with ``deployer.allow_warning``) and reads the active bundle back from
  the infrastructure's automation node, with the deployment's local variables,
  scenario states and code-env remappings (see :meth:`ProjectDeployerTarget._check_applied`);
* scenarios run on that automation node with mlcd's own waiter.

Every health message goes to ``reports/<env>/deployment-health-<bundle>.xml`` (JUnit) and
to :attr:`ProjectDeployerTarget.health` (the deploy stage file).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcd.dss import answers
from mlcd.dss.deployer import ProjectDeployer, health_messages
from mlcd.dss.errors import DSSSettingsNotKept
from mlcd.dss.transfer import bundle_manifest
from mlcd.errors import ConfigError, DeployFailed, ExitCode, MlcdError, NodeError
from mlcd.release.target import AutomationNodeTarget

if TYPE_CHECKING:
    from mlcd.audit import AuditTrail
    from mlcd.commands.context import StageContext
    from mlcd.config import EnvironmentConfig
    from mlcd.deployer_config import DeployerConfig
    from mlcd.testing_gate import GateOutcome

REMAP_PATH = ("bundleContainerSettings", "remapping", "connections")


class InfraRefused(NodeError):
    """The deployer's key may not deploy to the infrastructure (exit 6)."""

    exit_code = ExitCode.NODE_UNREACHABLE
    category = "auth"


class DeploymentUnhealthy(MlcdError):
    """The deployment's update failed, or its health does not pass the health gate."""

    exit_code = ExitCode.ROLLED_BACK
    category = "deployment"


class GovernRefused(DeployFailed):
    """``deployer.govern``: the deployer's governance status does not approve the bundle (exit 8)."""

    category = "govern"


class ProjectDeployerTarget:
    """A Project Deployer deployment (a published project on an infrastructure) as a deployment target."""

    #: its local variables reach the automation node only with an update (see envapply)
    variables_applied_by_update = True

    def __init__(
        self,
        deployer: ProjectDeployer,
        direct: AutomationNodeTarget,
        env: EnvironmentConfig,
        cfg: DeployerConfig,
        out_dir: Path,
        progress: Callable[[str], None],
    ) -> None:
        self.deployer = deployer
        self.direct = direct
        self.env = env
        self.cfg = cfg
        self.out_dir = out_dir
        self.progress = progress
        self.project = direct.project
        self.name = env.name
        self.health: list[dict[str, Any]] = []  # every health gate of this process (for the stage file)
        self._infra_checked = False
        self._unset_on_node: frozenset[str] = frozenset()  # local variables to remove at the next update

    # -- the deployment ----------------------------------------------------------------------------
    def _check_infra(self) -> None:
        """ConfigError (exit 2) naming the known infrastructures; InfraRefused (exit 6) without rights."""
        if self._infra_checked:
            return
        infras = self.deployer.list_infras()
        by_id = {str((i.get("infraBasicInfo") or {}).get("id")): i for i in infras}
        infra = by_id.get(self.cfg.infra)
        if infra is None:
            known = ", ".join(sorted(k for k in by_id if k != "None")) or "none"
            raise ConfigError(
                f"infrastructure '{self.cfg.infra}' of environment {self.name} is not on the Project "
                f"Deployer (known infrastructures: {known})",
                f"set deployer.infra of environment {self.name} in mlcd.yaml to one of them",
            )
        if infra.get("canDeploy") is False:
            raise InfraRefused(
                f"the deployer's API key ({self.cfg.node.api_key_env}) may not deploy to infrastructure "
                f"'{self.cfg.infra}'",
                "give the key's user the deploy permission on the infrastructure, or bind the right key",
            )
        self._infra_checked = True

    def deployment_id(self) -> str | None:
        """The id of this project's deployment on the infrastructure (None: there is none yet)."""
        self._check_infra()
        published = self.deployer.published_project(self.project) or {}
        for d in published.get("deployments") or []:
            if not isinstance(d, dict) or d.get("infraId") != self.cfg.infra:
                continue
            if self.cfg.deployment in (None, d.get("id")):
                return str(d.get("id"))
        return None

    def _require_deployment(self) -> str:
        dep = self.deployment_id()
        if dep is None:
            raise DeployFailed(
                f"project {self.project} has no deployment on infrastructure '{self.cfg.infra}'",
                f"deploy a bundle to {self.name} first (`mlcd deploy --env {self.name}`)",
            )
        return dep

    def _packages(self) -> dict[str, dict[str, Any]]:
        published = self.deployer.published_project(self.project) or {}
        return {str(p.get("id")): p for p in published.get("packages") or [] if isinstance(p, dict)}

    def _publish(self, archive: Path, bundle_id: str) -> None:
        if bundle_id in self._packages():
            self.progress(f"bundle {bundle_id} is already published on the deployer")
            return
        self.progress(f"publishing bundle {bundle_id} to the Project Deployer")
        self.deployer.upload_bundle(self.project, archive)

    # -- DeploymentTarget ---------------------------------------------------------------------------
    def project_exists(self) -> bool:
        """Whether the project has a deployment on the infrastructure."""
        return self.deployment_id() is not None

    def active_bundle(self) -> str | None:
        """The bundle the deployment is set to (None: no deployment)."""
        dep = self.deployment_id()
        if dep is None:
            return None
        bid = self.deployer.settings(dep).get("bundleId")
        return str(bid) if bid else None

    def imported_bundles(self) -> dict[str, dict[str, Any]]:
        """The bundles published to the deployer for this project."""
        return self._packages()

    def connections(self) -> tuple[set[str] | None, str | None]:
        """Unknown: the deployer checks the infrastructure's connections when it updates."""
        return None, "unknown (the Project Deployer checks them at the update)"

    def remappings(self) -> dict[str, str]:
        """The deployment's connection remappings."""
        dep = self.deployment_id()
        return _remappings(self.deployer.settings(dep)) if dep else {}

    def set_remappings(self, remappings: dict[str, str]) -> bool:
        """Write remappings into the deployment's settings, then read them back (exit 8 if dropped)."""
        dep = self._require_deployment()
        settings = self.deployer.settings(dep)
        merged = {**_remappings(settings), **remappings}
        if merged == _remappings(settings):
            return False
        node: dict[str, Any] = settings
        for key in REMAP_PATH[:-1]:
            node = node.setdefault(key, {})
        node[REMAP_PATH[-1]] = [{"source": s, "target": t} for s, t in sorted(merged.items())]
        self.deployer.save_settings(dep, settings)
        kept = _remappings(self.deployer.settings(dep))
        if any(kept.get(s) != t for s, t in remappings.items()):
            raise DSSSettingsNotKept(
                None, None, None,
                f"the deployer did not keep the connection remappings of deployment {dep}",
                self.deployer.name, f"write remappings of deployment {dep}",
            )  # fmt: skip
        return True

    def create_from_bundle(self, archive: Path) -> None:
        """Publish the archive and create the deployment on it (not updated yet)."""
        bundle_id = str(bundle_manifest(archive).get("bundleId") or "")
        self._publish(archive, bundle_id)
        dep = self.cfg.deployment or f"{self.project}-on-{self.cfg.infra}"
        self.progress(f"creating deployment {dep} of {self.project} on infrastructure {self.cfg.infra}")
        self.deployer.create_deployment(dep, self.project, self.cfg.infra, bundle_id)

    def import_bundle(self, archive: Path, bundle_id: str) -> None:
        """Publish the archive to the deployer (unless it is there already)."""
        self._publish(archive, bundle_id)

    def preload(self, bundle_id: str) -> None:
        """Read back that the bundle is published (the deployer preloads during the update);
        with ``deployer.govern``, require Govern's approval (before anything is updated)."""
        if bundle_id not in self._packages():
            raise DeployFailed(
                f"bundle {bundle_id} is not published on the Project Deployer after publishing it",
                "check the deployer's published project and its logs",
            )
        if self.cfg.govern:
            self._govern_gate(self._require_deployment(), bundle_id)

    def _govern_gate(self, dep: str, bundle_id: str) -> None:
        """GovernRefused unless the governance status of ``bundle_id`` has messages and none is a
        WARNING or an ERROR (no message: the infrastructure has no Govern check, nothing approved)."""
        messages = health_messages({"healthMessages": self.deployer.governance_status(dep, bundle_id)})
        refusals = [m for m in messages if m["severity"] in ("WARNING", "ERROR")]
        for m in messages:
            self.progress(f"govern {m['severity'].lower()} {m['code']}: {m['title']} {m['message']}".rstrip())
        if messages and not refusals:
            return
        why = (
            "; ".join(f"{m['title']}: {m['message']}".strip(": ") for m in refusals)
            if refusals
            else "the deployer gave no governance status (no Govern check policy on the infrastructure?)"
        )
        raise GovernRefused(
            f"Dataiku Govern has not approved bundle {bundle_id} for deployment {dep}: {why}",
            "get the bundle approved in Dataiku Govern (or set a Govern check policy on the "
            f"infrastructure), or remove deployer.govern of environment {self.name} in mlcd.yaml",
        )

    def activate(self, bundle_id: str, scenarios_active: dict[str, bool] | None = None) -> dict[str, Any]:
        """Point the deployment at ``bundle_id`` (and its ``scenariosToActivate``), update it (deadline),
        pass its health gate, read back."""
        dep = self._require_deployment()
        settings = self.deployer.settings(dep)
        wanted_states = {**(settings.get("scenariosToActivate") or {}), **(scenarios_active or {})}
        if settings.get("bundleId") != bundle_id or (
            scenarios_active and settings.get("scenariosToActivate") != wanted_states
        ):
            settings["bundleId"] = bundle_id
            if scenarios_active:
                settings["scenariosToActivate"] = wanted_states
            self.deployer.save_settings(dep, settings)
            if self.deployer.settings(dep).get("bundleId") != bundle_id:
                raise DSSSettingsNotKept(
                    None, None, None, f"the deployer did not keep bundle {bundle_id} in deployment {dep}",
                    self.deployer.name, f"point deployment {dep} at {bundle_id}",
                )  # fmt: skip
        deadline = float(self.env.timeouts.deploy)
        self.progress(f"updating deployment {dep} to bundle {bundle_id} (deadline {deadline:g}s)")
        result = self.deployer.update(dep, deadline)
        failure = update_failure(result)
        messages = self._health_gate(dep, bundle_id, failure)
        on_node = self.direct.active_bundle()
        if on_node != bundle_id:
            raise DeploymentUnhealthy(
                f"deployment {dep} passed its health gate but the automation node of "
                f"{self.name} shows bundle {on_node or '(none)'} active, expected {bundle_id}",
                "check the deployment on the Project Deployer",
            )
        self._check_applied(dep)
        return {"messages": [m for m in messages if m["severity"] not in ("ERROR", "FATAL")]}

    def _check_applied(self, dep: str) -> None:
        """Read back on the automation node what the update was to apply; DeploymentUnhealthy if not.

        The deployer reports health, not whether it applied ``localVariables``,
        ``scenariosToActivate`` and the code-env remappings: a deployer that skips
        them would otherwise pass silently. Local variables removed from the
        deployment are removed on the node too (an update only overrides the ones it holds).
        """
        settings = self.deployer.settings(dep)
        self._remove_unset_variables()
        wrong = self._not_applied(settings)
        if wrong:
            raise DeploymentUnhealthy(
                f"after the update of deployment {dep}, the automation node of {self.name} does not show "
                f"the deployment's {', '.join(wrong)}",
                "compare the deployment's settings on the Project Deployer with the node's project",
            )

    def _remove_unset_variables(self) -> None:
        """Remove on the node the local variables the deployment no longer holds."""
        if self._unset_on_node:
            gone = self._unset_on_node & set(self.direct.local_variables())
            if gone:
                self.direct.set_local_variables({}, frozenset(gone))
                self.progress(f"removed local variable(s) {', '.join(sorted(gone))} on the automation node")
            self._unset_on_node = frozenset()

    def _not_applied(self, settings: dict[str, Any]) -> list[str]:
        """What of the deployment's variables, scenario states and code-env remappings the node lacks."""
        wrong: list[str] = []
        variables = settings.get("localVariables")
        if isinstance(variables, dict) and variables:
            got = self.direct.local_variables()
            wrong += [f"local variable {k}" for k in answers.not_kept(variables, (), got)]
        states = settings.get("scenariosToActivate")
        if isinstance(states, dict) and states:
            now = self.direct.scenario_states()
            wrong += [
                f"scenario {s} {'active' if on else 'inactive'}"
                for s, on in sorted(states.items())
                if now.get(s) is not bool(on)
            ]
        envs = answers.code_env_remappings_of(settings)
        if envs:
            have_envs = self.direct.code_env_remappings()
            wrong += [
                f"code-env remapping {s} -> {t}" for s, t in sorted(envs.items()) if have_envs.get(s) != t
            ]
        return wrong

    # -- per-environment settings: held in the deployment's settings, applied by its update ----------
    # localVariables ("override to the project local variables on the automation node"),
    # scenariosToActivate ("dict of scenario name to boolean") and
    # bundleContainerSettings.remapping.codeEnvs: confirmed (dataikuapi
    # DSSProjectDeployerDeploymentSettings.get_raw docstring, dataiku-api-client-python).
    def _setting(self, path: tuple[str, ...]) -> Any:
        dep = self.deployment_id()
        node: Any = self.deployer.settings(dep) if dep else {}
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    def _write_setting(self, path: tuple[str, ...], value: Any, what: str) -> bool:
        dep = self._require_deployment()
        settings = self.deployer.settings(dep)
        node: dict[str, Any] = settings
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if node.get(path[-1]) == value:
            return False
        node[path[-1]] = value
        self.deployer.save_settings(dep, settings)
        if self._setting(path) != value:
            raise DSSSettingsNotKept(
                None, None, None, f"the deployer did not keep the {what} of deployment {dep}",
                self.deployer.name, f"write {what} of deployment {dep}",
            )  # fmt: skip
        return True

    # Readers show what the automation node holds (plan, drift, the values recorded for a rollback);
    # writers change the deployment's settings, which its next update applies.
    def local_variables(self) -> dict[str, Any]:
        """The project's local variables on the infrastructure's automation node."""
        return self.direct.local_variables()

    def set_local_variables(self, values: dict[str, Any], remove: frozenset[str] = frozenset()) -> bool:
        """Write ``localVariables`` (applied by the next update), then read back."""
        found = self._setting(("localVariables",))
        held = dict(found) if isinstance(found, dict) else {}
        merged = {k: v for k, v in {**held, **values}.items() if k not in remove}
        self._unset_on_node |= remove
        return self._write_setting(("localVariables",), merged, "local variables")

    def scenario_states(self) -> dict[str, bool]:
        """Each scenario's active state on the automation node (set by ``scenariosToActivate``)."""
        return self.direct.scenario_states()

    def code_env_remappings(self) -> dict[str, str]:
        """The code-env remappings of the project on the automation node."""
        return self.direct.code_env_remappings()

    def set_code_env_remappings(
        self, remappings: dict[str, str], remove: frozenset[str] = frozenset()
    ) -> bool:
        """Write the deployment's code-env remappings (applied by the next update), then read back."""
        dep = self._require_deployment()
        held = answers.code_env_remappings_of(self.deployer.settings(dep))
        merged = {k: v for k, v in {**held, **remappings}.items() if k not in remove}
        value = [{"source": k, "target": v} for k, v in sorted(merged.items())]
        path = ("bundleContainerSettings", "remapping", "codeEnvs")
        return self._write_setting(path, value, "code-env remappings")

    def _health_gate(self, dep: str, bundle_id: str, failure: str | None) -> list[dict[str, Any]]:
        """Read the heavy status, report it (JUnit, stage file, progress); raise unless it passes."""
        from mlcd.release.deployer_health import write_health_report

        status = self.deployer.status(dep)
        health = str(status.get("health") or "UNKNOWN").upper()
        messages = health_messages(status)
        log_lines = _log_lines(self.deployer, dep)
        passed = failure is None and health in self.cfg.allowed_health
        gate = {
            "deploymentId": dep,
            "bundleId": bundle_id,
            "health": health,
            "allowed": list(self.cfg.allowed_health),
            "passed": passed,
            "updateFailure": failure,
            "messages": messages,
        }
        name = f"deployment-health-{bundle_id}"
        report = write_health_report(self, name, dep, bundle_id, health, messages, log_lines, failure)
        gate["report"] = str(report)
        self.health.append(gate)
        self.progress(f"deployment {dep} health: {health}")
        for m in messages:
            self.progress(f"health {m['severity'].lower()} {m['code']}: {m['title']} {m['message']}".rstrip())
        if passed:
            return messages
        why = failure or next(
            (f"{m['title']}: {m['message']}" for m in messages if m["severity"] in ("ERROR", "WARNING")),
            "no health message",
        )
        allowed = " or ".join(self.cfg.allowed_health)
        raise DeploymentUnhealthy(
            f"deployment {dep} is {health} after the update to {bundle_id} (only {allowed} passes): {why}",
            f"see {Path(str(gate['report'])).name} and the deployment on the Project Deployer",
        )

    def scenario_ids(self) -> list[str]:
        """The project's scenario ids on the infrastructure's automation node."""
        return self.direct.scenario_ids()

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
        """Run scenarios on the infrastructure's automation node with mlcd's waiter."""
        return self.direct.run_scenarios(env, ids, audit, progress, kind=kind, bundle_id=bundle_id)


def _remappings(settings: dict[str, Any]) -> dict[str, str]:
    return answers.remappings_of(settings)


def update_failure(result: Any) -> str | None:
    """Why the update's result says it failed (None: it did not say so)."""
    if not isinstance(result, dict):
        return None
    errors = [
        m for m in result.get("messages") or []
        if isinstance(m, dict) and str(m.get("severity", "")).upper() in ("ERROR", "FATAL")
    ]  # fmt: skip
    if result.get("success") is False or result.get("status") == "FAILED" or errors:
        first = errors[0] if errors else {}
        text = str(first.get("message") or first.get("title") or "the update reported a failure")
        return f"the update failed: {text}"
    return None


def _log_lines(deployer: ProjectDeployer, dep: str) -> list[str]:
    try:
        update = deployer.last_update(dep)
    except MlcdError:
        return []
    lines = (update.get("logs") or {}).get("lines") if isinstance(update.get("logs"), dict) else None
    return [str(x) for x in (lines or [])][-200:]


def deployer_target(
    ctx: StageContext, env: EnvironmentConfig, direct: AutomationNodeTarget
) -> ProjectDeployerTarget:
    """The Project Deployer target of ``env`` (which has a ``deployer`` mapping)."""
    from mlcd.config import node_for

    assert env.deployer is not None
    node = node_for(env.deployer.node, name=f"deployer ({env.name})")
    return ProjectDeployerTarget(ProjectDeployer(node), direct, env, env.deployer, ctx.out_dir, ctx.progress)
