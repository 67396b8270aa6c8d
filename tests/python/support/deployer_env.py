"""A pipeline whose environments are deployed through a stand-in Project Deployer.

Usage::

    from support.deployer_env import start_deployer_pipeline

    with start_deployer_pipeline(tmp_path) as dp:
        dp.pipe.mlcd("bundle", "--build-number", "1")
        dp.set_faults(unhealthyBundles=["*_b2"])

On top of :func:`support.pipeline_env.start_pipeline_env` (design + one automation
node per environment), it starts a deployer node (``mlcd sim serve --role deployer``)
whose ``node.json`` declares one infrastructure ``<env>-infra`` per environment,
pointing at that environment's automation node with its key; mlcd.yaml gets a
top-level ``deployer`` (key in ``DSS_DEPLOYER_API_KEY``) and ``deployer: {infra}``
per environment.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from mlcd.sim.launcher import SimNode
from support.pipeline_env import PipelineEnv, key_env_name, start_pipeline_env

DEPLOYER_KEY_ENV = "DSS_DEPLOYER_API_KEY"


@dataclass
class DeployerPipeline:
    """A pipeline env plus its deployer node."""

    pipe: PipelineEnv
    deployer: SimNode

    @property
    def node_json(self) -> Path:
        """The deployer's ``node.json`` (infras, fault knobs, dialect; read on every request)."""
        return self.deployer.data_dir / "node.json"

    def node_config(self) -> dict[str, Any]:
        """The deployer's ``node.json`` as a dict."""
        data: dict[str, Any] = json.loads(self.node_json.read_text())
        return data

    def write_node_config(self, data: dict[str, Any]) -> None:
        """Replace the deployer's ``node.json``."""
        self.node_json.write_text(json.dumps(data, indent=2))

    def set_faults(self, **knobs: Any) -> None:
        """Set the deployer's fault knobs (``deployerFaults``), replacing the previous ones."""
        data = self.node_config()
        data["deployerFaults"] = knobs
        self.write_node_config(data)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the deployer's public API; the JSON answer (AssertionError on an error status)."""
        resp = requests.request(
            method, f"{self.deployer.url}/public/api/{path}", auth=(self.deployer.api_key, ""), timeout=30,
            **kwargs,
        )  # fmt: skip
        assert resp.status_code < 300, (resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def deployment(self, env: str) -> dict[str, Any]:
        """The settings of the project's deployment on ``<env>-infra``."""
        published = self.api("GET", f"project-deployer/projects/{self.pipe.project_key}")
        dep = next(d for d in published["deployments"] if d["infraId"] == f"{env}-infra")
        settings: dict[str, Any] = self.api("GET", f"project-deployer/deployments/{dep['id']}/settings")
        return settings

    def stop(self) -> None:
        """Stop every node."""
        self.deployer.stop()
        self.pipe.stop()

    def __enter__(self) -> DeployerPipeline:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def infras_for(pipe: PipelineEnv) -> dict[str, dict[str, Any]]:
    """One infrastructure per environment, pointing at its automation node with its key."""
    return {
        f"{name}-infra": {
            "stage": name,
            "automationUrl": node.url,
            "automationApiKey": pipe.keys[key_env_name(name)],
            "canDeploy": True,
        }
        for name, node in pipe.automation.items()
    }


def start_deployer_pipeline(
    root: Path, envs: Sequence[str] = ("test", "prod"), **kwargs: Any
) -> DeployerPipeline:
    """Start the pipeline env, then the deployer, and switch every environment to the deployer."""
    pipe = start_pipeline_env(root, envs=envs, **kwargs)
    try:
        key = "dep-" + secrets.token_hex(16)
        data_dir = root / "deployer"
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "node.json").write_text(
            json.dumps({"nodeName": "deployer", "infras": infras_for(pipe)}, indent=2)
        )
        deployer = SimNode.start(role="deployer", data_dir=data_dir, api_key=key, node_name="deployer")
    except BaseException:
        pipe.stop()
        raise
    pipe.keys[DEPLOYER_KEY_ENV] = key
    pipe.env[DEPLOYER_KEY_ENV] = key
    pipe.config["deployer"] = {"url": deployer.url, "api_key_env": DEPLOYER_KEY_ENV}
    for name in envs:
        pipe.env_config(name)["deployer"] = {"infra": f"{name}-infra"}
    pipe.write_config()
    return DeployerPipeline(pipe, deployer)
