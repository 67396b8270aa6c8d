"""Per-environment project settings in `mlcd.yaml`: local variables, scenario states, code-env remappings.

``variables``: the project's *local* variables on the node (they do not travel in
bundles). A value is written as is; ``{value_env: NAME}`` takes it from
environment variable NAME at deploy time (a secret: never in mlcd.yaml, masked in
every output and record). mlcd sets only the variables listed; other local
variables on the node are kept.

``scenarios``: ``keep`` (default: activation keeps each scenario's on/off state), or
``{active: [...], inactive: [...]}``: the automatic triggers of these scenarios are
switched on/off by the activation (``scenariosActiveOnActivation``).

``code_env_remappings``: ``{code env used by the project: code env on the node}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlcd.errors import ConfigError

if TYPE_CHECKING:
    from mlcd.configcheck import Located

SECRET_SHOWN = "(secret)"


@dataclass(frozen=True)
class SecretValue:
    """A variable whose value is read from environment variable ``env_var`` when it is needed."""

    env_var: str


@dataclass(frozen=True)
class EnvSettings:
    """The project settings mlcd keeps in shape on one environment (empty: mlcd changes none)."""

    variables: dict[str, Any] = field(default_factory=dict)  # name -> JSON value or SecretValue
    scenarios_active: dict[str, bool] | None = None  # None: keep the node's states
    code_env_remappings: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether mlcd manages none of them on this environment."""
        return not self.variables and self.scenarios_active is None and not self.code_env_remappings

    def secret_names(self) -> set[str]:
        """Names of the variables whose value is a secret."""
        return {k for k, v in self.variables.items() if isinstance(v, SecretValue)}

    def resolved_variables(self, env_name: str) -> dict[str, Any]:
        """The variables with secrets read from their environment variables (and registered for masking)."""
        from mlcd.config import read_secret

        return {
            k: read_secret(v.env_var, f"value of variable {k} of environment {env_name}")
            if isinstance(v, SecretValue)
            else v
            for k, v in self.variables.items()
        }


NO_SETTINGS = EnvSettings()


def parse_env_settings(data: dict[str, Any], index: int, loc: Located) -> EnvSettings:
    """The settings of ``environments[index]`` (already checked against the schema)."""
    variables: dict[str, Any] = {}
    for name, value in (data.get("variables") or {}).items():
        variables[str(name)] = SecretValue(str(value["value_env"])) if isinstance(value, dict) else value
    scenarios = data.get("scenarios")
    states: dict[str, bool] | None = None
    if isinstance(scenarios, dict):
        active = [str(s) for s in scenarios.get("active") or ()]
        inactive = [str(s) for s in scenarios.get("inactive") or ()]
        both = sorted(set(active) & set(inactive))
        if both:
            path = ("environments", index, "scenarios")
            raise ConfigError(
                f"{loc.where(path)}: scenario(s) {', '.join(both)} are listed both as active and inactive "
                f"in 'environments[{index}].scenarios'",
                "keep each scenario id in one of the two lists",
            )
        states = {**{s: True for s in active}, **{s: False for s in inactive}}
    remaps = {str(k): str(v) for k, v in (data.get("code_env_remappings") or {}).items()}
    return EnvSettings(variables, states, remaps)


def shown(value: Any, secret: bool) -> str:
    """A variable's value as printed and recorded: secrets never."""
    if secret:
        return SECRET_SHOWN
    import json

    return json.dumps(value, sort_keys=True) if value is not None else "(unset)"
