"""An API Deployer stand-in and an API node stand-in on loopback, a churn service, mlcd.yaml and keys.

Usage::

    with start_api_env(tmp_path) as api:
        proc = api.mlcd("api", "deploy", "--service", "churn", "--env", "prod", "--version", "v1")
        api.set_behaviour(latency_ms=300)    # the next packaged version is slow
        api.deployed_version()               # what the deployment maps traffic to, read from the deployer

What it sets up under ``root``: ``deployer/`` (data dir: ``apiservices/CHURN/churn.json`` with the
churn logistic regression of ``examples/churn`` and its behaviour knobs, ``infras.json`` with
infrastructure ``api-prod`` = the API node), ``apinode/``, ``churn_requests.jsonl`` (40 labelled
requests, labelled by the model), ``mlcd.yaml`` and ``env`` with a key per node.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from mlcd.sim.apinode import predict
from mlcd.sim.launcher import SimNode

CHURN_MODEL = (
    Path(__file__).resolve().parents[3] / "examples" / "churn" / "project" / "model" / "churn_model.json"
)
SERVICE, ENDPOINT, PROJECT, INFRA, DEPLOYMENT = (
    "churn",
    "predict_churn",
    "CHURN",
    "api-prod",
    "churn-on-api-prod",
)

DEFAULT_GATES: dict[str, Any] = {
    "correctness": {"requests": "churn_requests.jsonl", "threshold": 0.9, "classes": ["0", "1"]},
    "load": {"concurrency": 4, "duration_s": 0.5, "warmup_requests": 4, "p95_ms": 150, "max_error_rate": 0.0},
}


def churn_model() -> dict[str, Any]:
    """The example churn model."""
    return dict(json.loads(CHURN_MODEL.read_text()))


def labelled_requests(n: int = 40, seed: int = 3) -> list[dict[str, Any]]:
    """``n`` feature records in the model's ranges, labelled by the model itself."""
    rng = random.Random(seed)
    model = churn_model()
    out = []
    for _ in range(n):
        tenure = rng.randint(0, 72)
        monthly = round(rng.uniform(20, 120), 2)
        contract = rng.choice([(0, 0), (1, 0), (0, 1)])
        features = {
            "tenure_months": tenure, "monthly_charges_usd": monthly,
            "total_charges_usd": round(tenure * monthly, 2), "support_calls": rng.randint(0, 6),
            "num_products": rng.randint(1, 5), "paperless_billing": rng.randint(0, 1),
            "contract_one_year": contract[0], "contract_two_year": contract[1],
        }  # fmt: skip
        out.append({"features": features, "expected": predict(model, features, False)["prediction"]})
    return out


@dataclass
class ApiEnv:
    """The running stand-ins (see the module docstring)."""

    root: Path
    deployer: SimNode
    apinode: SimNode
    env: dict[str, str]

    @property
    def out_dir(self) -> Path:
        return self.root / ".mlcd"

    def mlcd(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``python -m mlcd ARGS`` with the keys in the environment (cwd = root)."""
        return subprocess.run(
            [sys.executable, "-m", "mlcd", *args], cwd=self.root, env=self.env, capture_output=True,
            text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def deploy(self, version: str) -> subprocess.CompletedProcess[str]:
        """`mlcd api deploy --service churn --env prod --version VERSION`."""
        return self.mlcd("api", "deploy", "--service", SERVICE, "--env", "prod", "--version", version)

    def set_behaviour(self, **knobs: Any) -> None:
        """The behaviour of the next version packaged (latency_ms, spike_every, error_rate, degraded...)."""
        path = self.deployer.data_dir / "apiservices" / PROJECT / f"{SERVICE}.json"
        data = json.loads(path.read_text())
        data["behaviour"] = knobs
        path.write_text(json.dumps(data))

    def deployer_get(self, path: str) -> requests.Response:
        return requests.get(
            f"{self.deployer.url}/public/api/{path}", auth=(self.deployer.api_key, ""), timeout=10
        )

    def deployed_version(self) -> str | None:
        """The version the deployment maps all traffic to, read from the API Deployer (None: none)."""
        resp = self.deployer_get(f"api-deployer/deployments/{DEPLOYMENT}/settings")
        if resp.status_code == 404:
            return None
        return str(resp.json()["generationsMapping"]["generation"])

    def predict(self, features: dict[str, Any]) -> dict[str, Any]:
        """One prediction straight from the API node."""
        url = f"{self.apinode.url}/public/api/v1/{SERVICE}/{ENDPOINT}/predict"
        resp = requests.post(url, json={"features": features}, auth=(self.apinode.api_key, ""), timeout=10)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def stage(self, action: str) -> dict[str, Any]:
        return dict(json.loads((self.out_dir / f"api-{action}-{SERVICE}-prod.json").read_text()))

    def audit(self) -> list[dict[str, Any]]:
        path = self.out_dir / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def deployment_records(self) -> list[dict[str, Any]]:
        return [r for r in self.audit() if r.get("operation") == "deployment"]


def write_config(root: Path, deployer_url: str, gates: dict[str, Any], **service: Any) -> Path:
    """mlcd.yaml with one (unused) automation environment and the churn API service."""
    svc: dict[str, Any] = {
        "id": SERVICE, "endpoints": [ENDPOINT], "api_key_env": "CHURN_API_KEY",
        "environments": {"prod": {"infra": INFRA}}, "timeouts": {"update": 30, "request": 5}, "gates": gates,
    }  # fmt: skip
    svc.update(service)
    config = {
        "project": PROJECT,
        "allow_insecure_http": True,
        "design": {"url": deployer_url, "api_key_env": "DSS_DESIGN_API_KEY"},
        "environments": [{"name": "prod", "url": "http://127.0.0.1:9", "api_key_env": "DSS_PROD_API_KEY"}],
        "api_services": {"services": [svc]},
    }
    path = root / "mlcd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextmanager
def start_api_env(
    root: Path, gates: dict[str, Any] | None = None, dialect: dict[str, str] | None = None
) -> Iterator[ApiEnv]:
    """Start the API node and the API Deployer stand-ins (``dialect``: mlcd.sim.apiroles); stop both."""
    for folder in ("apinode", "deployer"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "dialect.json").write_text(json.dumps(dialect or {}))
    node_key, deployer_key = secrets.token_hex(16), secrets.token_hex(16)
    apinode = SimNode.start("apinode", root / "apinode", api_key=node_key)
    try:
        ddir = root / "deployer"
        (ddir / "apiservices" / PROJECT).mkdir(parents=True, exist_ok=True)
        (ddir / "apiservices" / PROJECT / f"{SERVICE}.json").write_text(
            json.dumps({"endpoints": {ENDPOINT: {"model": churn_model()}}, "behaviour": {}})
        )
        infra = {
            "stage": "prod",
            "type": "STATIC",
            "apiNodes": [{"url": apinode.url, "adminAPIKey": node_key}],
        }
        (ddir / "infras.json").write_text(json.dumps({INFRA: infra}))
        deployer = SimNode.start("apideployer", ddir, api_key=deployer_key)
        try:
            (root / "churn_requests.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in labelled_requests())
            )
            write_config(root, deployer.url, DEFAULT_GATES if gates is None else gates)
            env = dict(os.environ)
            env.update(DSS_DESIGN_API_KEY=deployer_key, DSS_PROD_API_KEY="unused-" + node_key[:8],
                       CHURN_API_KEY=node_key, MLCD_CONFIG=str(root / "mlcd.yaml"),
                       MLCD_OUT_DIR=str(root / ".mlcd"))  # fmt: skip
            env.pop("BUILD_NUMBER", None)
            yield ApiEnv(root, deployer, apinode, env)
        finally:
            deployer.stop()
    finally:
        apinode.stop()
