"""An environment's project settings around a deploy: what differs, apply, read back, restore.

The settings are mlcd.yaml's ``variables``, ``scenarios`` and ``code_env_remappings``
(:mod:`mlcd.envsettings`). Order, following DSS (docs/stand-in.md): code-env
remappings are written with the connection remappings, before preload (preload
builds code environments); local variables are written before activation (they
do not travel in bundles and activation keeps them, so the flow sees the right
values from its first run) and re-checked after it; scenario states are given to
the activation itself (``scenariosActiveOnActivation``) and read back after it.
What was there before is recorded through the ledger (run.json ``settingsBefore``,
secret values never) so that a rollback puts it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlcd.dss import answers
from mlcd.envsettings import EnvSettings, shown
from mlcd.errors import ExitCode, MlcdError

if TYPE_CHECKING:
    from mlcd.release.session import Release
    from mlcd.release.target import DeploymentTarget

_ABSENT = object()


class SettingsNotApplied(MlcdError):
    """After activation the node does not show the settings mlcd.yaml asks for (rolled back)."""

    exit_code = ExitCode.ROLLED_BACK
    category = "settings_not_applied"


@dataclass
class SettingsNow:
    """What the node holds now of the settings mlcd manages there."""

    variables: dict[str, Any] = field(default_factory=dict)  # every local variable
    scenarios: dict[str, bool] = field(default_factory=dict)
    code_envs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """One setting a deploy would change: ``kind name: before -> after`` (secrets never shown)."""

    kind: str  # variable | scenario | code env remapping
    name: str
    before: str
    after: str
    compared: bool = True  # False: a secret whose value is not known here

    def drift_line(self, env_name: str) -> str:
        """The difference as drift: what the node has against what mlcd.yaml says."""
        what = f"{self.kind} {self.name}: node has {self.before}, mlcd.yaml says {self.after}"
        return f"drift on {env_name}: {what}"

    def line(self) -> str:
        """The change as a person reads it."""
        return f"{self.kind} {self.name}: {self.before} -> {self.after}"


def read_now(target: DeploymentTarget, settings: EnvSettings, exists: bool) -> SettingsNow:
    """Read what the node holds of the managed settings (nothing when none is managed or no project)."""
    if not exists or settings.empty:
        return SettingsNow()
    return SettingsNow(
        target.local_variables() if settings.variables else {},
        target.scenario_states() if settings.scenarios_active is not None else {},
        target.code_env_remappings() if settings.code_env_remappings else {},
    )


def _state(on: bool | None) -> str:
    return "(no such scenario yet)" if on is None else ("active" if on else "inactive")


def changes(settings: EnvSettings, now: SettingsNow, values: dict[str, Any]) -> list[Change]:
    """What applying ``settings`` (variables resolved to ``values``) would change on a node holding ``now``.

    A secret whose value is not known here (``values`` lacks it) is listed as not compared.
    """
    secrets = settings.secret_names()
    out: list[Change] = []
    for name in sorted(settings.variables):
        have = now.variables.get(name, _ABSENT)
        before = "(unset)" if have is _ABSENT else shown(have, name in secrets)
        if name not in values:
            after = f"{shown(None, True)} (its value is not set here: not compared)"
            out.append(Change("variable", name, before, after, compared=False))
        elif have is _ABSENT or have != values[name]:
            out.append(Change("variable", name, before, shown(values[name], name in secrets)))
    for sid, on in sorted((settings.scenarios_active or {}).items()):
        if now.scenarios.get(sid) is not on:
            out.append(Change("scenario", sid, _state(now.scenarios.get(sid)), _state(on)))
    for source, target in sorted(settings.code_env_remappings.items()):
        if now.code_envs.get(source) != target:
            out.append(Change("code env remapping", source, now.code_envs.get(source) or "(none)", target))
    return out


def values_if_known(settings: EnvSettings, env_name: str) -> dict[str, Any]:
    """The variables' values, leaving out secrets whose environment variable is not set (for plans)."""
    from mlcd.errors import InputError

    out: dict[str, Any] = {}
    for name in settings.variables:
        try:
            out[name] = EnvSettings({name: settings.variables[name]}).resolved_variables(env_name)[name]
        except InputError:
            continue
    return out


def before_record(settings: EnvSettings, now: SettingsNow) -> dict[str, Any]:
    """What to record (run.json ``settingsBefore``) to restore later; secret values are never recorded."""
    if settings.empty:
        return {}
    secrets = settings.secret_names()
    return {
        "variables": _present(settings.variables, now.variables, secrets),
        "absentVariables": sorted(k for k in settings.variables if k not in now.variables),
        "secretVariables": sorted(k for k in secrets if k in now.variables),
        "scenarios": _present(settings.scenarios_active or {}, now.scenarios),
        "codeEnvRemappings": _present(settings.code_env_remappings, now.code_envs),
        "absentCodeEnvRemappings": sorted(s for s in settings.code_env_remappings if s not in now.code_envs),
    }


def _present(keys: Iterable[str], have: Mapping[str, Any], leave_out: Iterable[str] = ()) -> dict[str, Any]:
    """``{k: have[k]}`` for the (sorted) ``keys`` found in ``have``, except ``leave_out``."""
    skip = set(leave_out)
    return {k: have[k] for k in sorted(keys) if k in have and k not in skip}


def after_record(settings: EnvSettings) -> dict[str, Any]:
    """What mlcd.yaml asks for, as recorded (run.json ``settingsApplied``; secrets shown as ``(secret)``)."""
    if settings.empty:
        return {}
    secrets = settings.secret_names()
    return {
        "variables": {
            k: shown(None, True) if k in secrets else v for k, v in sorted(settings.variables.items())
        },
        "scenarios": dict(sorted((settings.scenarios_active or {}).items())),
        "codeEnvRemappings": dict(sorted(settings.code_env_remappings.items())),
    }


def drift(target: DeploymentTarget, settings: EnvSettings, env_name: str) -> list[Change]:
    """Where the node differs from mlcd.yaml's settings (nothing when none is managed or no project)."""
    if settings.empty or not target.project_exists():
        return []
    now = read_now(target, settings, True)
    return [c for c in changes(settings, now, values_if_known(settings, env_name)) if c.compared]


# -- during a deploy -----------------------------------------------------------------------------
def write_code_envs(rel: Release, common: dict[str, Any]) -> None:
    """Write mlcd.yaml's code-env remappings into the project's activation settings (read back)."""
    remaps = rel.env.settings.code_env_remappings
    if not remaps:
        return
    with rel.audit.action("set_code_env_remappings", detail={"codeEnvRemappings": remaps}, **common) as d:
        d["written"] = written = rel.target.set_code_env_remappings(remaps)
    shown_remaps = ", ".join(f"{k} -> {v}" for k, v in sorted(remaps.items()))
    prefix = "" if written else "(already so) "
    rel.progress(f"{prefix}code-env remappings in the project's activation settings: {shown_remaps}")


def write_variables(
    rel: Release, values: dict[str, Any], before: SettingsNow, common: dict[str, Any]
) -> None:
    """Write the local variables and read them back; if DSS did not keep them, put the earlier ones back."""
    if not values:
        return
    secrets = rel.env.settings.secret_names()
    listed = {k: shown(v, k in secrets) for k, v in sorted(values.items())}
    try:
        with rel.audit.action("set_local_variables", detail={"variables": listed}, **common) as d:
            d["written"] = written = rel.target.set_local_variables(values)
    except MlcdError:
        _put_back_variables(rel, set(values), before)
        raise
    rel.progress(
        ("" if written else "(already so) ")
        + f"local variables on {rel.env.name}: "
        + ", ".join(f"{k}={v}" for k, v in listed.items())
    )


def _put_back_variables(rel: Release, names: set[str], before: SettingsNow) -> None:
    """Best effort: the managed variables as they were (this process still knows every value)."""
    try:
        rel.target.set_local_variables(
            {k: before.variables[k] for k in names if k in before.variables},
            frozenset(k for k in names if k not in before.variables),
        )
    except MlcdError:
        rel.progress(
            f"could not put the earlier local variables of {rel.env.name} back: check them on the node"
        )


def undo(rel: Release, values: dict[str, Any], before: SettingsNow) -> None:
    """Best effort, never raises: the variables and code-env remappings as they were before this deploy.

    For a deploy that ends with the environment unchanged after they were written (a failed
    preload, a refused activation): this process still knows every earlier value, secrets too.
    """
    if values:
        _put_back_variables(rel, set(values), before)
    remaps = rel.env.settings.code_env_remappings
    if remaps:
        try:
            rel.target.set_code_env_remappings(
                {s: before.code_envs[s] for s in remaps if s in before.code_envs},
                frozenset(s for s in remaps if s not in before.code_envs),
            )
        except MlcdError:
            rel.progress(f"could not put the earlier code-env remappings of {rel.env.name} back: check them")


def scenarios_on_activation(rel: Release) -> dict[str, bool] | None:
    """``scenariosActiveOnActivation`` for this environment's activation (None: keep every state)."""
    return dict(rel.env.settings.scenarios_active) if rel.env.settings.scenarios_active else None


def check_after_activation(rel: Release, values: dict[str, Any], common: dict[str, Any]) -> None:
    """Read the variables and scenario states back after activation; SettingsNotApplied if they differ.

    Local variables an activation changed are written once more (and read back): DSS keeps them
    by the evidence, but a node that resets them would otherwise pass silently.
    """
    settings = rel.env.settings
    if not values and not settings.scenarios_active:
        return
    with rel.audit.action("check_settings", **common) as detail:
        if values:
            kept = rel.target.local_variables()
            changed = answers.not_kept(values, (), kept)
            detail["variablesChangedByActivation"] = changed
            if changed:
                rel.progress(
                    f"the activation changed local variable(s) {', '.join(changed)}: writing them again"
                )
                rel.target.set_local_variables(values)
        wanted = settings.scenarios_active or {}
        if wanted:
            states = rel.target.scenario_states()
            detail["scenarios"] = {s: states.get(s) for s in sorted(wanted)}
            wrong = [
                f"{s} is {_state(states.get(s))}"
                for s, on in sorted(wanted.items())
                if states.get(s) is not on
            ]
            if wrong:
                raise SettingsNotApplied(
                    f"after activation on {rel.env.name}, {', '.join(wrong)}, but mlcd.yaml's scenarios "
                    "say otherwise (the node did not apply scenariosActiveOnActivation)",
                    f"check the scenario ids in scenarios of environment {rel.env.name} (mlcd validate) "
                    "and the node's version",
                )


def apply_without_activation(rel: Release, values: dict[str, Any], common: dict[str, Any]) -> list[str]:
    """For a bundle already active: write changed variables; lines for what only an activation applies."""
    settings = rel.env.settings
    if settings.empty:
        return []
    now = read_now(rel.target, settings, True)
    todo = changes(settings, now, values)
    # a Project Deployer applies local variables only at a deployment's update: not written here
    at_once = () if getattr(rel.target, "variables_applied_by_update", False) else ("variable",)
    if any(c.kind in at_once for c in todo):
        write_variables(rel, values, now, common)
    return [
        f"not applied ({c.line()}): takes effect with the next bundle's activation"
        for c in todo
        if c.kind not in at_once
    ]


# -- rollback --------------------------------------------------------------------------------------
def restore_before(rel: Release, bundle_id: str) -> dict[str, bool] | None:
    """Before re-activating ``bundle_id``: put back what this run's deploy changed (from run.json).

    Only when ``bundle_id`` is the bundle that was active before that deploy. Returns the
    recorded scenario states for the activation (None: none recorded). Secret variables
    are not restored (their values are never recorded): the progress says so.
    """
    entry = rel.ledger.entry
    rec = entry.get("settingsBefore")
    if not isinstance(rec, dict) or not rec or entry.get("previousBundleId") != bundle_id:
        return None
    _restore_recorded(rel, rec)
    secrets = list(rec.get("secretVariables") or ())
    note = f"; secret variable(s) {', '.join(secrets)} not restored (values are never recorded)"
    rel.progress(
        f"restored the local variables and code-env remappings of {rel.env.name} recorded before the deploy"
        + (note if secrets else "")
    )
    scenarios = rec.get("scenarios") or {}
    return {str(k): bool(v) for k, v in scenarios.items()} or None


def _restore_recorded(rel: Release, rec: dict[str, Any]) -> None:
    """Write back the recorded local variables and code-env remappings (dropping those absent before)."""
    variables, absent = dict(rec.get("variables") or {}), frozenset(rec.get("absentVariables") or ())
    if variables or absent:
        rel.target.set_local_variables(variables, absent)
    envs = dict(rec.get("codeEnvRemappings") or {})
    no_envs = frozenset(rec.get("absentCodeEnvRemappings") or ())
    if envs or no_envs:
        rel.target.set_code_env_remappings(envs, no_envs)
