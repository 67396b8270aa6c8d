"""Stand-in DSS nodes for the Groovy end-to-end test (tests/groovy/e2e/PipelineEndToEndTest.groovy).

Usage: python stand_in.py OUT_DIR

Starts a design, a test and a prod stand-in node on loopback (data under OUT_DIR/nodes), puts
examples/churn/project on the design node, writes OUT_DIR/mlcd.yaml (the example's, with the
nodes' URLs, short timeouts, rollback_on_failure on for every environment, and `signing:` with a
signing key and an approval key pair, whose public half is OUT_DIR/approval-key.pub) and prints one
JSON line: {"config": ..., "keys": {"design": ..., "signing": ..., "approval": ...}, "urls": {...}}.
Then it answers one JSON command per stdin line with one JSON line:
  {"op": "active", "env": "prod"}       -> {"bundleId": "..."}   (read from the node)
  {"op": "break_prod_smoke"}            -> {"ok": true}  prod bills in EUR, the next release drops EUR rates
  {"op": "design_variable", "name": "auc_threshold", "value": 1.01}
                                        -> {"ok": true}  sets a standard variable of the design project
  {"op": "stop"} or end of input        -> stops every node and exits 0
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

import requests
import yaml

from mlcd.signing import keygen
from mlcd.sim.launcher import SimNode

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "churn"
PROJECT = "CHURN"
CONNECTIONS = {
    "design": {"warehouse": {"type": "PostgreSQL"}},
    "test": {"warehouse_test": {"type": "PostgreSQL"}},
    "prod": {"warehouse_prod": {"type": "PostgreSQL"}},
}


def api(node: SimNode, method: str, path: str, body: Any = None) -> Any:
    """One DSS public API call on a stand-in node; the JSON answer."""
    resp = requests.request(method, node.api_url + path, json=body, auth=(node.api_key, ""), timeout=30)
    resp.raise_for_status()
    return resp.json() if resp.content else None


def active_bundle(node: SimNode) -> str | None:
    """The bundle active for the project on an automation node."""
    for project in api(node, "GET", "projects/"):
        if project.get("projectKey") == PROJECT:
            return (project.get("activeBundleState") or {}).get("bundleId")
    return None


def break_prod_smoke(nodes: dict[str, SimNode]) -> None:
    """Prod bills in EUR (a prod-only variable); the design project drops the EUR exchange rate."""
    prod = api(nodes["prod"], "GET", f"projects/{PROJECT}/variables/")
    prod.setdefault("local", {})["currency"] = "EUR"
    api(nodes["prod"], "PUT", f"projects/{PROJECT}/variables/", prod)
    design = api(nodes["design"], "GET", f"projects/{PROJECT}/variables/")
    design["standard"]["fx_rates"] = {"USD": 1.0, "GBP": 1.27}
    api(nodes["design"], "PUT", f"projects/{PROJECT}/variables/", design)


def set_design_variable(nodes: dict[str, SimNode], name: str, value: Any) -> None:
    """Set one standard variable of the design project (the next bundle carries it)."""
    design = api(nodes["design"], "GET", f"projects/{PROJECT}/variables/")
    design["standard"][name] = value
    api(nodes["design"], "PUT", f"projects/{PROJECT}/variables/", design)


def main(out: Path) -> int:
    """Start the nodes, serve commands from stdin, stop the nodes."""
    nodes: dict[str, SimNode] = {}
    keys = {name: secrets.token_urlsafe(24) for name in ("design", "test", "prod")}
    keys["signing"] = secrets.token_urlsafe(32)
    keygen(out / "approval.key", out / "approval-key.pub")
    keys["approval"] = (out / "approval.key").read_text(encoding="ascii").strip()
    (out / "approval.key").unlink()
    try:
        for name, role in (("design", "design"), ("test", "automation"), ("prod", "automation")):
            nodes[name] = SimNode.start(role=role, data_dir=out / "nodes" / name, api_key=keys[name],
                                        node_name=name, connections=CONNECTIONS[name])
        shutil.copytree(EXAMPLE / "project", out / "nodes" / "design" / "projects" / PROJECT,
                        ignore=shutil.ignore_patterns("__pycache__"))
        config = yaml.safe_load((EXAMPLE / "mlcd.yaml").read_text(encoding="utf-8"))
        config["allow_insecure_http"] = True  # the stand-in nodes listen on plain http on loopback
        config["design"]["url"] = nodes["design"].url
        for env in config["environments"]:
            env["url"] = nodes[env["name"]].url
            env["timeouts"] = {"scenario": 120, "deploy": 120, "lock": 30}
            env["rollback_on_failure"] = True
        config["bundle"]["release_notes"] = "none"
        config["signing"] = {"key_env": "MLCD_SIGNING_KEY", "approval_key_env": "MLCD_APPROVAL_KEY",
                             "approval_public_key_file": "approval-key.pub"}
        (out / "mlcd.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        print(json.dumps({"config": str(out / "mlcd.yaml"), "keys": keys,
                          "urls": {n: node.url for n, node in nodes.items()}}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "stop":
                break
            if command["op"] == "active":
                print(json.dumps({"bundleId": active_bundle(nodes[command["env"]])}), flush=True)
            elif command["op"] == "break_prod_smoke":
                break_prod_smoke(nodes)
                print(json.dumps({"ok": True}), flush=True)
            elif command["op"] == "design_variable":
                set_design_variable(nodes, command["name"], command["value"])
                print(json.dumps({"ok": True}), flush=True)
            else:
                print(json.dumps({"error": f"unknown op {command['op']}"}), flush=True)
    finally:
        for node in nodes.values():
            node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve()))
