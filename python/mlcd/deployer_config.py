"""The Project Deployer part of `mlcd.yaml`: top-level ``deployer`` and each environment's ``deployer``.

An environment with ``deployer: {infra: ID}`` is deployed through the Project
Deployer (:mod:`mlcd.release.deployer_target`) instead of directly on its
automation node. The deployer node (``url``, ``api_key_env``, ``tls``) is given at
the top level and may be overridden per environment; the environment's own
``url``/``api_key_env`` stay the infrastructure's automation node, used to run
the test and smoke scenarios.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlcd.errors import ConfigError

if TYPE_CHECKING:
    from mlcd.config import EnvironmentConfig, NodeConfig
    from mlcd.configcheck import Located


@dataclass(frozen=True)
class DeployerConfig:
    """How one environment is deployed through the Project Deployer."""

    infra: str
    node: NodeConfig  # the deployer node (its key in ``node.api_key_env``)
    deployment: str | None = None  # deployment id; default: the project's deployment on ``infra``
    allow_warning: bool = False  # WARNING health passes too (only HEALTHY by default)
    govern: bool = False  # refuse a bundle the deployer's governance-status does not approve

    @property
    def allowed_health(self) -> tuple[str, ...]:
        """The deployment health values that pass the health gate."""
        return ("HEALTHY", "WARNING") if self.allow_warning else ("HEALTHY",)


def with_deployers(
    data: dict[str, Any], envs: tuple[EnvironmentConfig, ...], loc: Located
) -> tuple[EnvironmentConfig, ...]:
    """``envs`` with ``deployer`` set where the environment's mapping has one (merged with the top level)."""
    from mlcd.config import _node

    top = data.get("deployer") or {}
    out = []
    for index, (raw, env) in enumerate(zip(data["environments"], envs, strict=True)):
        own = raw.get("deployer")
        if own is None:
            out.append(env)
            continue
        merged = {k: v for k, v in top.items()}
        merged.update({k: v for k, v in own.items() if k in ("url", "api_key_env", "tls")})
        if "url" not in merged or "api_key_env" not in merged:
            raise ConfigError(
                f"{loc.where(('environments', index, 'deployer'))}: environment '{env.name}' deploys "
                "through the Project Deployer but no deployer url and api_key_env are given",
                "add a top-level 'deployer: {url: ..., api_key_env: ...}' or set them in the "
                "environment's deployer mapping",
            )
        _refuse_http(data, merged["url"], ("environments", index, "deployer", "url"), loc)
        deployer = DeployerConfig(
            infra=str(own["infra"]),
            node=_node(merged),
            deployment=str(own["deployment"]) if own.get("deployment") else None,
            allow_warning=bool(own.get("allow_warning", False)),
            govern=bool(own.get("govern", False)),
        )
        out.append(dataclasses.replace(env, deployer=deployer))
    return tuple(out)


def _refuse_http(data: dict[str, Any], url: Any, path: tuple[Any, ...], loc: Located) -> None:
    if data.get("allow_insecure_http") is True or not str(url).lower().startswith("http://"):
        return
    from mlcd.configcheck import path_text

    raise ConfigError(
        f"{loc.where(path)}: {path_text(path)} (the deployer) is a plain http:// URL, so its API key "
        "would travel unencrypted",
        "use https://, or set allow_insecure_http: true at the top of mlcd.yaml (loopback only)",
    )
