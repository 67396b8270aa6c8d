"""A project's per-node settings on an automation node, each written then read back.

Local variables (GET/PUT ``/projects/{key}/variables/``, the ``local`` part: it does
not travel in bundles) and code-env remappings (in the project's settings at
``bundleContainerSettings.remapping.codeEnvs``, inferred: docs/stand-in.md). A write
DSS answers with success but does not keep raises :class:`DSSSettingsNotKept` (exit 8).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlcd.dss import answers
from mlcd.dss.answers import CODE_ENV_REMAPPING_KEY
from mlcd.dss.errors import DSSSettingsNotKept

if TYPE_CHECKING:
    from mlcd.dss.node import DSSNode


def local_variables(node: DSSNode, key: str) -> dict[str, Any]:
    """The project's local variables."""
    local = node.get_variables(key).get("local")
    return dict(local) if isinstance(local, dict) else {}


def set_local_variables(
    node: DSSNode, key: str, values: dict[str, Any], remove: frozenset[str] = frozenset()
) -> bool:
    """Set ``values`` (and delete ``remove``) in the local variables, every other variable as read.

    GET the variables, PUT them back with the change (``standard`` as read), GET again:
    :class:`DSSSettingsNotKept` naming the variables (never their values) DSS did not keep.
    False when they were already so (nothing written).
    """
    current = node.get_variables(key)
    local = dict(current.get("local") or {})
    wanted = {**{k: v for k, v in local.items() if k not in remove}, **values}
    if wanted == local:
        return False
    node.set_variables(key, {"standard": dict(current.get("standard") or {}), "local": wanted})
    kept = local_variables(node, key)
    lost = answers.not_kept(values, remove, kept)
    if lost:
        raise DSSSettingsNotKept(
            None, None, None,
            f"DSS did not keep the local variable(s) {', '.join(lost)} written to project {key} "
            "(read back after PUT /projects/{key}/variables/); nothing was activated",
            node.name, f"set local variables of project {key}",
            hint="check the API key's rights on the project's variables and what the node answers "
            "(mlcd doctor); until then set them in DSS's UI",
        )  # fmt: skip
    return True


def code_env_remappings(node: DSSNode, key: str) -> dict[str, str]:
    """Code-env remappings in the project's activation settings."""
    return answers.code_env_remappings_of(node.get_project_settings(key))


def set_code_env_remappings(
    node: DSSNode, key: str, remappings: dict[str, str], remove: frozenset[str] = frozenset()
) -> bool:
    """Write code-env remappings (drop ``remove``, others kept) and read them back; False if already so."""
    settings = node.get_project_settings(key)
    now = answers.code_env_remappings_of(settings)
    wanted = {**{s: t for s, t in now.items() if s not in remove}, **remappings}
    if wanted == now:
        return False
    node.set_project_settings(key, answers.with_code_env_remappings(settings, wanted))
    kept = code_env_remappings(node, key)
    lost = answers.not_kept(remappings, remove, kept)
    if lost:
        raise DSSSettingsNotKept(
            None, None, None,
            f"DSS did not keep the code-env remapping(s) of {', '.join(lost)} written to "
            f"{CODE_ENV_REMAPPING_KEY} of project {key} (read back: {kept or 'none'}); nothing was activated",
            node.name, f"set code-env remappings of project {key}",
            hint="check where this DSS version keeps code-env remappings (mlcd doctor); until then "
            "create same-named code environments on the node or set the remapping in DSS's UI",
        )  # fmt: skip
    return True


def scenario_states(node: DSSNode, key: str) -> dict[str, bool]:
    """Scenario id -> whether its automatic triggers are active (GET /projects/{key}/scenarios/)."""
    return {str(s.get("id")): bool(s.get("active")) for s in node.list_scenarios(key) if s.get("id")}
