"""The stand-in's per-node project settings: local variables, scenario states, code-env remappings.

What DSS does, with its evidence (docs/stand-in.md):

* local variables are not part of bundles, so activation keeps them and replaces only
  ``standard`` (confirmed: dataikuapi ``DSSProject.get_variables`` docstring, "local"
  variables are not part of the bundles; DSS docs, variables in bundles). The
  ``localVariables`` switch gives the other readings: ``resetOnActivation`` (an
  activation empties them) and ``ignored`` (a node that answers the PUT but keeps nothing);
* ``scenariosActiveOnActivation`` sets each named scenario's triggers on/off and the others
  keep their state (confirmed: dataikuapi ``DSSProject.activate_bundle``; DSS docs,
  "activation keeps scenario on/off states"). ``scenarioStates: "ignored"``: a node that
  drops the option;
* code-env remappings live in ``bundleContainerSettings.remapping.codeEnvs`` of the
  project's settings (inferred from the Project Deployer's deployment settings, which hold
  ``bundleContainerSettings.remapping.codeEnvs``). ``codeEnvRemapping: "ignored"``: DSS
  drops the written key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlcd.sim.dialects import Dialect
    from mlcd.sim.store import Store


def variables_to_store(dialect: Dialect, store: Store, key: str, body: Any) -> Any:
    """The variables a PUT leaves ("ignored": the local part as it was)."""
    if dialect.local_variables != "ignored" or not isinstance(body, dict) or store.role == "design":
        return body
    return {**body, "local": store.get_variables(key)["local"]}


def _code_envs(settings: dict[str, Any] | None) -> Any:
    container = (settings or {}).get("bundleContainerSettings")
    remapping = container.get("remapping") if isinstance(container, dict) else None
    return remapping.get("codeEnvs", []) if isinstance(remapping, dict) else []


def settings_to_store(
    dialect: Dialect, before: dict[str, Any] | None, body: dict[str, Any]
) -> dict[str, Any]:
    """The settings a PUT leaves ("ignored": the code-env remappings as they were)."""
    if dialect.code_env_remapping != "ignored":
        return body
    container = dict(body.get("bundleContainerSettings") or {})
    remapping = dict(container.get("remapping") or {})
    remapping["codeEnvs"] = _code_envs(before)
    container["remapping"] = remapping
    return {**body, "bundleContainerSettings": container}


def scenarios_option(dialect: Dialect, scenarios_on: dict[str, Any]) -> dict[str, Any]:
    """``scenariosActiveOnActivation`` as this node applies it ("ignored": not at all)."""
    return {} if dialect.scenario_states == "ignored" else scenarios_on


def after_activation(dialect: Dialect, store: Store, key: str) -> None:
    """ "resetOnActivation": the activation empties the local variables."""
    if dialect.local_variables == "resetOnActivation":
        store.set_variables(key, {"standard": store.get_variables(key)["standard"], "local": {}})
