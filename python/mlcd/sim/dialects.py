"""Dialects: one switch in ``node.json`` per DSS behaviour that public evidence does not confirm.

The stand-in follows the evidence by default (docs/stand-in.md lists each
behaviour with its source). ``node.json`` ``"dialect": {...}`` selects the other
reading of an unconfirmed behaviour, so mlcd can be tested against both::

    {"dialect": {"missingProject": "404", "activationRefusal": "report"}}

:data:`NAMED` gives each switch a short name, used by tests as a pytest parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REMAPPING_KEY = "bundleContainerSettings.remapping.connections"

_CHOICES: dict[str, tuple[str, ...]] = {
    "missingProject": ("401", "404"),
    "activationRefusal": ("error", "report"),
    "connectionsNonAdmin": ("403", "401"),
    "archiveLayout": ("mlcd", "opaque"),
    "errorBodies": ("plain", "stacktrace"),
    "remappingKey": ("bundleContainerSettings", "ignored"),
    "importedFields": ("nested", "flat"),
    "codeEnvRemapping": ("bundleContainerSettings", "ignored"),
    "localVariables": ("kept", "resetOnActivation", "ignored"),
    "scenarioStates": ("honoured", "ignored"),
}

#: name -> ``node.json`` ``dialect`` value; "evidence" is the default reading of everything.
NAMED: dict[str, dict[str, Any]] = {
    "evidence": {},
    "missing-project-404": {"missingProject": "404"},
    "activation-refusal-report": {"activationRefusal": "report"},
    "connections-non-admin-401": {"connectionsNonAdmin": "401", "apiKeyIsAdmin": False},
    "slow-preload": {"preloadSeconds": 1.5},
    "background-work": {"backgroundSeconds": 1.5},
    "archive-layout-opaque": {"archiveLayout": "opaque"},
    "error-bodies-stacktrace": {"errorBodies": "stacktrace"},
    "remapping-key-ignored": {"remappingKey": "ignored"},
    "imported-fields-flat": {"importedFields": "flat"},
    "code-env-remapping-ignored": {"codeEnvRemapping": "ignored"},
    "local-variables-reset-on-activation": {"localVariables": "resetOnActivation"},
    "local-variables-ignored": {"localVariables": "ignored"},
    "scenario-states-ignored": {"scenarioStates": "ignored"},
}

#: the switches of mlcd.yaml's per-environment settings (variables, scenarios, code-env remappings)
ENV_SETTINGS_DIALECTS = (
    "code-env-remapping-ignored",
    "local-variables-reset-on-activation",
    "local-variables-ignored",
    "scenario-states-ignored",
)


@dataclass(frozen=True)
class Dialect:
    """The readings in force on one node (see the module docstring); defaults follow the evidence."""

    missing_project: str = "401"
    activation_refusal: str = "error"
    connections_non_admin: str = "403"
    archive_layout: str = "mlcd"
    error_bodies: str = "plain"
    remapping_key: str = "bundleContainerSettings"
    imported_fields: str = "nested"
    preload_seconds: float = 0.0
    preload_fail_code_env: str | None = None
    background_seconds: float = 0.0
    api_key_is_admin: bool = True
    code_env_remapping: str = "bundleContainerSettings"
    local_variables: str = "kept"
    scenario_states: str = "honoured"

    @classmethod
    def from_node_config(cls, cfg: dict[str, Any]) -> Dialect:
        """The dialect of ``node.json`` (unknown values fall back to the evidence's reading)."""
        raw = cfg.get("dialect")
        d: dict[str, Any] = raw if isinstance(raw, dict) else {}

        def pick(name: str) -> str:
            value = str(d.get(name, _CHOICES[name][0]))
            return value if value in _CHOICES[name] else _CHOICES[name][0]

        fail = d.get("preloadFailCodeEnv")
        return cls(
            missing_project=pick("missingProject"),
            activation_refusal=pick("activationRefusal"),
            connections_non_admin=pick("connectionsNonAdmin"),
            archive_layout=pick("archiveLayout"),
            error_bodies=pick("errorBodies"),
            remapping_key=pick("remappingKey"),
            imported_fields=pick("importedFields"),
            preload_seconds=_seconds(d.get("preloadSeconds")),
            preload_fail_code_env=str(fail) if fail else None,
            background_seconds=_seconds(d.get("backgroundSeconds")),
            code_env_remapping=pick("codeEnvRemapping"),
            local_variables=pick("localVariables"),
            scenario_states=pick("scenarioStates"),
            api_key_is_admin=cfg.get("apiKeyIsAdmin", d.get("apiKeyIsAdmin", True)) is not False,
        )


def _seconds(value: Any) -> float:
    try:
        return max(0.0, min(600.0, float(value or 0)))
    except (TypeError, ValueError):
        return 0.0


JAVA_FRAMES = (
    "com.dataiku.dip.server.controllers.ProjectsController.handle(ProjectsController.java:412)",
    "com.dataiku.dip.server.DKUControllerBase.invoke(DKUControllerBase.java:97)",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
    "javax.servlet.http.HttpServlet.service(HttpServlet.java:750)",
    "org.eclipse.jetty.servlet.ServletHolder.handle(ServletHolder.java:799)",
    "org.eclipse.jetty.server.handler.ScopedHandler.handle(ScopedHandler.java:143)",
    "java.base/java.lang.Thread.run(Thread.java:840)",
)


def with_stack_trace(error_type: str, message: str, depth: int = 40) -> str:
    """``detailedMessage`` as some DSS errors carry it: the exception line, then a Java stack trace."""
    frames = [f"\tat {JAVA_FRAMES[i % len(JAVA_FRAMES)]}" for i in range(depth)]
    return "\n".join([f"{error_type}: {message}", *frames])
