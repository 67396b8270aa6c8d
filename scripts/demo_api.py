"""The API part of `make demo`: the churn model's real-time API, deployed three times (API Deployer).

Starts an API node and an API Deployer stand-in (loopback, data under demo-out/api/nodes/), writes
demo-out/api/mlcd.yaml and a labelled request file made from the churn project's hold-out data
(the real labels: the model scores about 0.77 accuracy on them), and runs the real CLI,
``mlcd api deploy``, for three versions:

1. good: the model as trained; both gates pass (exit 0);
2. slow: the same model answering 300 ms later; the load gate's p95 budget (150 ms) fails,
   mlcd reverts the deployment to version 1 and verifies it (exit 3);
3. wrong: a version that answers the other class; the correctness gate (accuracy at least 0.7)
   fails, mlcd reverts to version 1 (exit 3).

After each, the deployment's version is read back from the API Deployer.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
import yaml

from mlcd.sim.launcher import SimNode

REPO = Path(__file__).resolve().parent.parent
CHURN = REPO / "examples" / "churn" / "project"
SERVICE, ENDPOINT, INFRA = "churn", "predict_churn", "api-prod"
GATES: dict[str, Any] = {
    "correctness": {"requests": "churn_requests.jsonl", "threshold": 0.7, "classes": ["0", "1"]},
    "load": {"concurrency": 4, "duration_s": 2, "warmup_requests": 20, "p95_ms": 150, "max_error_rate": 0.01},
}
VERSIONS = [  # (version, behaviour, expected exit, what the story is)
    ("churn_api_v1_good", {}, 0, "good: the trained model, both gates pass"),
    ("churn_api_v2_slow", {"latency_ms": 300}, 3, "slow: p95 over the 150 ms budget, reverted to v1"),
    ("churn_api_v3_wrong", {"degraded": True}, 3, "wrong: accuracy under 0.7, reverted to v1"),
]


def _labelled_requests(limit: int = 300) -> str:
    """JSON lines of the hold-out customers: the model's features and the real churn label."""
    sys.path.insert(0, str(CHURN / "scripts"))
    try:
        import churn_model
    finally:
        sys.path.pop(0)
    _, rows = churn_model.read_rows(CHURN / "data" / "customers_holdout.csv")
    lines = []
    for row in rows[:limit]:
        values = churn_model.features(row)
        features = dict(zip(churn_model.FEATURES, values, strict=True))
        lines.append(json.dumps({"features": features, "expected": row["churned"]}))
    return "\n".join(lines) + "\n"


def _deployed(deployer: SimNode) -> str | None:
    url = f"{deployer.url}/public/api/api-deployer/deployments/{SERVICE}-on-{INFRA}/settings"
    resp = requests.get(url, auth=(deployer.api_key, ""), timeout=10)
    return str(resp.json()["generationsMapping"]["generation"]) if resp.status_code == 200 else None


def _set_behaviour(deployer: SimNode, project: str, behaviour: dict[str, Any]) -> None:
    path = deployer.data_dir / "apiservices" / project / f"{SERVICE}.json"
    data = json.loads(path.read_text())
    data["behaviour"] = behaviour
    path.write_text(json.dumps(data))


def run_api_demo(out: Path, project: str = "CHURN") -> bool:
    """Run the three API versions; True when each ended as its story says (checked on the deployer)."""
    root = out / "api"
    root.mkdir(parents=True, exist_ok=True)
    # keys from the environment if set (as Jenkins would bind them), else fresh random ones
    node_key = os.environ.get("CHURN_API_KEY") or secrets.token_urlsafe(24)
    deployer_key = os.environ.get("DSS_API_DEPLOYER_API_KEY") or secrets.token_urlsafe(24)
    print("\n" + "=" * 100 + "\nThe churn model's real-time API, through the API Deployer (mlcd api deploy)")
    apinode = SimNode.start("apinode", root / "nodes" / "apinode", api_key=node_key, node_name="apinode")
    deployer: SimNode | None = None
    try:
        ddir = root / "nodes" / "apideployer"
        (ddir / "apiservices" / project).mkdir(parents=True, exist_ok=True)
        model = json.loads((CHURN / "model" / "churn_model.json").read_text())
        (ddir / "apiservices" / project / f"{SERVICE}.json").write_text(
            json.dumps({"endpoints": {ENDPOINT: {"model": model}}, "behaviour": {}})
        )
        nodes = [{"url": apinode.url, "adminAPIKey": node_key}]
        (ddir / "infras.json").write_text(
            json.dumps({INFRA: {"stage": "prod", "type": "STATIC", "apiNodes": nodes}})
        )
        deployer = SimNode.start("apideployer", ddir, api_key=deployer_key, node_name="apideployer")
        print(f"  API node:     {apinode.url}\n  API Deployer: {deployer.url}")
        (root / "churn_requests.jsonl").write_text(_labelled_requests())
        config = {
            "project": project, "allow_insecure_http": True,
            "design": {"url": deployer.url, "api_key_env": "DSS_DESIGN_API_KEY"},
            "environments": [{"name": "prod", "url": "http://127.0.0.1:9",
                              "api_key_env": "DSS_PROD_API_KEY"}],
            "api_services": {"services": [{
                "id": SERVICE, "endpoints": [ENDPOINT], "api_key_env": "CHURN_API_KEY",
                "environments": {"prod": {"infra": INFRA}}, "gates": GATES,
            }]},
        }  # fmt: skip
        (root / "mlcd.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        keys = {"DSS_DESIGN_API_KEY": deployer_key, "DSS_PROD_API_KEY": "unused", "CHURN_API_KEY": node_key}
        env = dict(os.environ, **keys, MLCD_LOCK_DIR=str(root / "locks"))  # locks stay under demo-out/api/
        ok = True
        for version, behaviour, expected, story in VERSIONS:
            _set_behaviour(deployer, project, behaviour)
            print(f"\n--- API version {version} ({story})")
            proc = subprocess.run(
                [sys.executable, "-m", "mlcd", "api", "deploy", "--config", str(root / "mlcd.yaml"),
                 "--out-dir", str(root / ".mlcd"), "--service", SERVICE, "--env", "prod",
                 "--version", version],
                env=env, capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            print(proc.stdout.rstrip())
            if proc.stderr.strip():
                print(proc.stderr.rstrip())
            live = _deployed(deployer)
            good = proc.returncode == expected and live == VERSIONS[0][0]
            ok = ok and good
            print(f"--- exit {proc.returncode} (expected {expected}); deployment now serves {live}: "
                  f"{'as expected' if good else 'NOT AS EXPECTED'}")  # fmt: skip
        print(f"\n  API reports: {root / '.mlcd' / 'reports'}")
        return ok
    finally:
        if deployer is not None:
            deployer.stop()
        apinode.stop()


if __name__ == "__main__":  # pragma: no cover - `python scripts/demo_api.py [OUT]`: only the API part
    target = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "demo-out").resolve()
    sys.exit(0 if run_api_demo(target) else 1)
